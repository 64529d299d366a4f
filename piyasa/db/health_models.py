"""Health history: one row per component state change (uptime bars, incidents)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, BigId, UTCDateTime, utcnow

HEALTH_STATES = ("healthy", "warning", "critical", "unknown")


class HealthTransition(Base):
    """A component entered ``state`` at ``at``; it holds until the next row for it.

    Only changes are stored, so 90 days of history stay small and the uptime bars are
    computed from a few hundred rows, not from every 5-second reading.
    """

    __tablename__ = "health_transitions"
    __table_args__ = (
        CheckConstraint("state IN ('healthy', 'warning', 'critical', 'unknown')", name="state"),
        Index("ix_health_transitions_component_at", "component", "at"),
        Index("ix_health_transitions_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    component: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    previous_state: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(String(255), default="")
