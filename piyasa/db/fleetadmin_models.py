"""Tables of fleet administration from chat (``piyasa.fleetadmin``).

``setting_changes`` is the history of the ``settings`` table: every change made through
``piyasa.fleetadmin.settings`` (chat, shell, or the fleet's own auto-adjust) with the value
before and after, so a change can be shown, audited and undone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class SettingChange(Base):
    """One change of one fleet setting: ``old`` -> ``new`` at ``version``.

    ``old_value`` is the value in effect before (the built-in default when the table had no
    row). ``undone_by`` points at the change that reverted this one; ``undo_of`` at the
    change this one reverted.
    """

    __tablename__ = "setting_changes"
    __table_args__ = (Index("ix_setting_changes_key_id", "key", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undo_of: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("setting_changes.id", ondelete="SET NULL")
    )
    undone_by: Mapped[int | None] = mapped_column(BigId)
