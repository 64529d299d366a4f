"""LLM calls made for previews (`/preview`), kept apart from fleet traffic.

A preview generates through the fleet's provider but sends nothing, so it has no place
in ``messages`` (the conversation record analytics read as fleet traffic). Its cost is
still real money: each sample is one row here, with who asked and the generation facts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, BigId, UTCDateTime, utcnow


class PreviewCost(Base):
    __tablename__ = "preview_costs"
    __table_args__ = (Index("ix_preview_costs_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id", ondelete="SET NULL"))
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    proposed: Mapped[bool] = mapped_column(default=False)  # an unsaved persona
    topic: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    tokens_cached: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
