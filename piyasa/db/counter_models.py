"""Fleet-wide limits shared by several instances on PostgreSQL without Redis
(``shared_counters``). Written by :mod:`piyasa.cluster.counters`; see docs/scaling.md."""

from __future__ import annotations

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base


class SharedCounter(Base):
    """One piece of shared limit state (a token bucket, a sliding window, a last speaker)
    as JSON in ``data``; read, changed and written back under the row's lock in one
    transaction. ``updated_at``: the database's clock in epoch seconds, for cleanup."""

    __tablename__ = "shared_counters"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[float] = mapped_column(Float, default=0.0, index=True)
