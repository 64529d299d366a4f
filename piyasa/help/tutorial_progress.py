"""Where each user stands in each tutorial (``tutorial_progress``), so ``/docs tutorial``
resumes a tutorial at the furthest step its checks ticked, after any restart.

Only a passed check writes here (:func:`reach`); opening a step or going back reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from piyasa.db.base import utcnow
from piyasa.db.help_models import TutorialProgress

if TYPE_CHECKING:
    from piyasa.services import Services


@dataclass(frozen=True)
class Progress:
    """Step ``step`` (1-based) reached; ``done`` once the last check passed."""

    step: int
    done: bool
    updated_at: datetime


async def of_user(services: Services, user_id: int) -> dict[str, Progress]:
    """Every tutorial ``user_id`` has started: tutorial id -> :class:`Progress`."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(TutorialProgress).where(TutorialProgress.user_id == user_id)
        )
        return {r.tutorial: Progress(r.step, r.done_at is not None, r.updated_at) for r in rows}


async def reach(services: Services, user_id: int, tutorial: str, step: int, *, done: bool) -> None:
    """Record that ``user_id`` reached ``step`` of ``tutorial`` (never moves back: a
    check passed again on an earlier step keeps the furthest one); ``done`` marks the end."""
    async with services.sessions() as session, session.begin():
        row = await session.get(TutorialProgress, (user_id, tutorial))
        now = utcnow()
        if row is None:
            row = TutorialProgress(user_id=user_id, tutorial=tutorial, step=step)
            session.add(row)
        row.step = max(row.step or 1, step)
        row.updated_at = now
        if done and row.done_at is None:
            row.done_at = now
