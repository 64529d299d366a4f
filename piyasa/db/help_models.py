"""Self-service help tables (issue 17): where each user stands in each tutorial.

A tutorial's step also travels in its buttons, but button tokens live in the cache (lost
with an in-process cache on restart); this row lets ``/docs tutorial`` resume a tutorial
at the furthest step the reader's checks have ticked, whatever happened to the process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, UTCDateTime, utcnow


class TutorialProgress(Base):
    """User ``user_id`` reached step ``step`` (1-based) of tutorial ``tutorial``;
    ``done_at`` is set once the last step's check passed."""

    __tablename__ = "tutorial_progress"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tutorial: Mapped[str] = mapped_column(String(32), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, default=1)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
