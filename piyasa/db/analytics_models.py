"""Analytics rollups (issue 15): what analytics read instead of raw ``messages`` rows.

Every bot message is rolled in twice by ``piyasa.analytics.rollup`` (an idempotent job that
marks each row's progress in ``messages.rolled``, so nothing is counted twice): once when it
is decided (count, tokens, cost, latency) and once when its fate is final (sent or failed,
error class). Both go to the bucket of the message's ``created_at``.

Grains: ``"h"`` buckets start on the hour, ``"d"`` at midnight UTC. Hourly rows are kept for
``HOURLY_KEEP_DAYS`` and then dropped; daily rows stay (they are what analytics read for
whole days anyway). Tables:

- ``analytics_facts``: per (grain, bucket, bot, chat, topic, model), the full measures.
- ``analytics_bots``: per (grain, bucket, bot), the same measures summed over chat, topic and
  model, so the overview and the per-bot table read one row per bot and bucket.
- ``analytics_fleet``: per (grain, bucket), the same measures summed over every bot, so the
  overview's totals and fleet p95 read one row per bucket.
- ``analytics_errors``: failures per (grain, bucket, bot, error class), with the last one seen.
- ``analytics_state``: key/value marks (``pruned_before``: raw rows older are gone).

No foreign keys: rollups outlive the bots and chats they describe (``bot_id`` 0 = a deleted
bot). Costs are integer micro-dollars so sums are exact on SQLite too. ``hist`` is the
mergeable latency histogram of ``piyasa.analytics.sketch`` (NULL when no latency);
``lat_slow`` counts the latencies whose bin reads above ``sketch.SLOW_MS``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, UTCDateTime

HOURLY_KEEP_DAYS = 30


class _Measures:
    messages: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_cached: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    lat_count: Mapped[int] = mapped_column(Integer, default=0)
    lat_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    lat_slow: Mapped[int] = mapped_column(Integer, default=0)
    lat_min: Mapped[int | None] = mapped_column(Integer)
    lat_max: Mapped[int | None] = mapped_column(Integer)
    hist: Mapped[bytes | None] = mapped_column(LargeBinary)


MEASURES = (
    "messages",
    "sent",
    "failed",
    "rate_limited",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "cost_micros",
    "lat_count",
    "lat_sum",
    "lat_slow",
    "lat_min",
    "lat_max",
    "hist",
)


class RollupFact(_Measures, Base):
    __tablename__ = "analytics_facts"
    __table_args__ = (Index("ix_analytics_facts_bot", "grain", "bot_id", "bucket"),)

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    bot_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)


#: Covering index of the per-bot sums (everything but ``hist``): the overview's GROUP BY bot
#: reads the index alone instead of rows that carry a histogram blob each.
SUMS_INDEX = (
    "grain",
    "bucket",
    "bot_id",
    *(m for m in MEASURES if m != "hist"),
)


class RollupBot(_Measures, Base):
    __tablename__ = "analytics_bots"
    __table_args__ = (Index("ix_analytics_bots_sums", *SUMS_INDEX),)

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    bot_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class RollupFleet(_Measures, Base):
    """The whole fleet per (grain, bucket): what the overview's totals and p95 read."""

    __tablename__ = "analytics_fleet"

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class RollupError(Base):
    __tablename__ = "analytics_errors"
    __table_args__ = (Index("ix_analytics_errors_bot", "grain", "bot_id", "bucket"),)

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    bot_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    error_class: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class AnalyticsState(Base):
    __tablename__ = "analytics_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
