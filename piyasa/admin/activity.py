"""Chat activity: when each user was last seen in chat, and on how many days.

``last_login_at``/``ok_logins`` move only on ``/password``, which chat users never need, so
they said nothing about who uses the admin bot. The pipeline calls :func:`seen` for every
request of a linked user (Telegram or Slack). Writing on every request would put a
database write on every button press, so each user is written at most once per
:data:`WRITE_EVERY_S`: this process remembers when it last wrote each user, and the
``UPDATE`` itself only matches a row not written within that minute, so several
instances together still write a user at most once a minute.

``active_days`` counts the UTC days on which the user was seen: it grows when the
previous ``last_seen_at`` lies before today's midnight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.exc import SQLAlchemyError

from piyasa.db.models import User
from piyasa.services import Services

log = logging.getLogger(__name__)

WRITE_EVERY_S = 60.0
MEMO_MAX = 10_000  # users remembered per process; past it, entries older than a minute go
_EXTRAS_KEY = "activity"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Activity:
    """This process's record of when it last wrote each user's activity.

    ``clock`` returns the current UTC time (tests move it by hand); ``writes`` counts the
    writes this process attempted."""

    clock: Callable[[], datetime] = _utcnow
    every_s: float = WRITE_EVERY_S
    writes: int = 0
    _written: dict[int, datetime] = field(default_factory=dict)

    def due(self, user_id: int, now: datetime) -> bool:
        """True when ``user_id`` was not written within ``every_s`` of ``now`` (and marks
        it written: a failed write is not retried before the minute is up)."""
        last = self._written.get(user_id)
        if last is not None and (now - last).total_seconds() < self.every_s:
            return False
        if len(self._written) >= MEMO_MAX:
            horizon = now - timedelta(seconds=self.every_s)
            self._written = {k: v for k, v in self._written.items() if v > horizon}
            if len(self._written) >= MEMO_MAX:
                self._written.clear()
        self._written[user_id] = now
        return True


def tracker(services: Services) -> Activity:
    """The :class:`Activity` of this process (one per Services; a test may put its own in
    ``services.extras["activity"]`` to drive the clock)."""
    return services.extras.setdefault(_EXTRAS_KEY, Activity())


async def seen(services: Services, user_id: int | None) -> bool:
    """Record that ``user_id`` used chat now; True when a write was made.

    At most one write per user per minute (see the module docstring). ``None`` (an
    unlinked sender) does nothing. A database that is down costs one failed attempt per
    user per minute, logged at INFO, never an error for the request: read-only chat keeps
    working in degraded mode.
    """
    if user_id is None:
        return False
    activity = tracker(services)
    now = activity.clock()
    if not activity.due(user_id, now):
        return False
    activity.writes += 1
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stale = now - timedelta(seconds=activity.every_s)
    stmt = (
        update(User)
        .where(
            User.id == user_id,
            or_(User.last_seen_at.is_(None), User.last_seen_at <= stale),
        )
        .values(
            last_seen_at=now,
            active_days=case(
                (
                    or_(User.last_seen_at.is_(None), User.last_seen_at < midnight),
                    User.active_days + 1,
                ),
                else_=User.active_days,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    try:
        async with services.sessions() as session:
            await session.execute(stmt)
            await session.commit()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.info("last-seen not recorded: %s", type(exc).__name__)
        return False
    return True
