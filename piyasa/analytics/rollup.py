"""The rollup job: folds bot messages into ``analytics_*`` rollups, each exactly once.

Idempotent and incremental: ``messages.rolled`` is each row's high-water mark (0 nothing
counted, 1 its decision counted, 2 its outcome counted too) and is advanced in the same
transaction that adds the row to the rollups, so a crash, a re-run or a second instance can
neither skip nor double-count a message. The runtime's own transactions (outbox enqueue,
send outcome) are untouched: the ingest cost on the message path is nil, and the job's cost
per message is measured by ``piyasa bench analytics``.

One job at a time: on PostgreSQL a transaction-scoped advisory lock, on SQLite the database
write lock, taken before reading. ``Rollups.run_once`` handles one batch (oldest first);
``catch_up`` loops until nothing is left; ``piyasa up`` runs it every few seconds
(``piyasa.analytics.background``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.analytics import sketch
from piyasa.db.analytics_models import (
    MEASURES,
    RollupBot,
    RollupError,
    RollupFact,
    RollupFleet,
)
from piyasa.db.models import Message

BATCH = 5000
LOCK_ID = 715015  # pg advisory lock: "issue 15"
#: Error classes that mean "rate limited" (429): the LLM provider's quota answer.
RATE_LIMITED = frozenset({"quota", "rate_limited", "429"})
_CHUNK = 500
#: The summed measures (everything but lat_min, lat_max and hist).
SUMS = MEASURES[:11]


def floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def micros(usd: Decimal | float | int | None) -> int:
    """USD -> integer micro-dollars (exact for ``Numeric(12, 6)`` values)."""
    if not usd:
        return 0
    if not isinstance(usd, Decimal):
        usd = Decimal(str(usd))
    return int(usd.scaleb(6).to_integral_value())


@dataclass
class Acc:
    """Measures being summed for one rollup key (see ``piyasa.db.analytics_models``)."""

    messages: int = 0
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_micros: int = 0
    lat_count: int = 0
    lat_sum: int = 0
    lat_slow: int = 0
    lat_min: int | None = None
    lat_max: int | None = None
    counts: np.ndarray | None = field(default=None, repr=False)
    quantiles: tuple[float | None, ...] | None = field(default=None, repr=False)

    def latency(self, ms: int, b: int) -> None:
        """Count one latency ``ms`` whose histogram bin is ``b`` (``sketch.bin_of``)."""
        self.lat_count += 1
        self.lat_sum += ms
        self.lat_slow += b >= sketch.SLOW_BIN
        self.lat_min = ms if self.lat_min is None or ms < self.lat_min else self.lat_min
        self.lat_max = ms if self.lat_max is None or ms > self.lat_max else self.lat_max
        if self.counts is None:
            self.counts = sketch.empty()
        self.counts[b] += 1

    def add_row(self, row: Any) -> None:
        """Merge a stored rollup row (an ORM object or a Row with the MEASURES)."""
        for name in SUMS:
            setattr(self, name, getattr(self, name) + (getattr(row, name) or 0))
        for name, pick in (("lat_min", min), ("lat_max", max)):
            theirs = getattr(row, name)
            if theirs is not None:
                mine = getattr(self, name)
                setattr(self, name, theirs if mine is None else pick(mine, theirs))
        if row.hist:
            if self.counts is None:
                self.counts = sketch.empty()
            sketch.add_into(self.counts, row.hist)

    def merge(self, other: Acc) -> None:
        """Add another Acc's measures (histogram included) into this one (unrolled: the
        job calls this five times per key and batch)."""
        self.messages += other.messages
        self.sent += other.sent
        self.failed += other.failed
        self.rate_limited += other.rate_limited
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.tokens_cached += other.tokens_cached
        self.cost_micros += other.cost_micros
        self.lat_count += other.lat_count
        self.lat_sum += other.lat_sum
        self.lat_slow += other.lat_slow
        if other.lat_min is not None and (self.lat_min is None or other.lat_min < self.lat_min):
            self.lat_min = other.lat_min
        if other.lat_max is not None and (self.lat_max is None or other.lat_max > self.lat_max):
            self.lat_max = other.lat_max
        if other.counts is not None:
            self.counts = other.counts.copy() if self.counts is None else self.counts + other.counts

    def values(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in MEASURES[:-1]}
        out["hist"] = sketch.encode(self.counts) if self.counts is not None else None
        return out


@dataclass
class Batch:
    """One batch's additions, keyed like the rollup tables' primary keys."""

    facts: dict[tuple, Acc] = field(default_factory=dict)
    bots: dict[tuple, Acc] = field(default_factory=dict)
    fleet: dict[tuple, Acc] = field(default_factory=dict)
    errors: dict[tuple, list] = field(default_factory=dict)  # key -> [count, last_seen]

    def add(self, row: Any, decide: bool, final: bool) -> None:
        """Count one message into its hourly fact (``finish`` derives the other keys)."""
        bot = row.bot_id or 0
        at = row.created_at
        hour = at.replace(minute=0, second=0, microsecond=0)
        fkey = ("h", hour, bot, row.chat_id, row.topic or "", row.model or "")
        acc = self.facts.get(fkey) or self.facts.setdefault(fkey, Acc())
        if final and row.status == "failed":
            for grain, bucket in (("h", hour), ("d", hour.replace(hour=0))):
                ekey = (grain, bucket, bot, (row.error_class or "unknown")[:32])
                entry = self.errors.setdefault(ekey, [0, at])
                entry[0] += 1
                entry[1] = max(entry[1], at)
        if decide:
            tin, tout = row.tokens_in or 0, row.tokens_out or 0
            acc.messages += 1
            acc.tokens_in += tin
            acc.tokens_out += tout
            acc.tokens_cached += min(row.tokens_cached or 0, tin)
            acc.cost_micros += micros(row.cost_usd)
            ms = row.latency_ms
            if ms is not None:
                acc.latency(ms, sketch.bin_of(ms))
        if final:
            if row.status == "sent":
                acc.sent += 1
            else:
                acc.failed += 1
                acc.rate_limited += (row.error_class or "") in RATE_LIMITED

    def finish(self) -> None:
        """Derive the daily facts and the per-bot and fleet rows (both grains) from the
        hourly facts: one merge per key, not one update per message and key."""
        for (_g, hour, bot, chat, topic, model), acc in list(self.facts.items()):
            day = hour.replace(hour=0)
            for table, key in (
                (self.facts, ("d", day, bot, chat, topic, model)),
                (self.bots, ("h", hour, bot)),
                (self.bots, ("d", day, bot)),
                (self.fleet, ("h", hour)),
                (self.fleet, ("d", day)),
            ):
                target = table.get(key) or table.setdefault(key, Acc())
                target.merge(acc)


def _insert(dialect: str):  # type: ignore[no-untyped-def]
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def lock(session: AsyncSession, dialect: str) -> None:
    """Serialise rollup writers: advisory lock (PostgreSQL) or the write lock (SQLite)."""
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_ID})
    else:
        await session.execute(text("UPDATE analytics_state SET value = value WHERE 0"))


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def merge_measures(
    session: AsyncSession, dialect: str, model: type, adds: dict[tuple, Acc]
) -> None:
    """Add ``adds`` into the rollup table of ``model`` (read, merge, upsert).

    Existing rows are read by bucket and bot (indexed), a superset of the keys; the caller
    holds the rollup lock, so nothing changes them in between."""
    if not adds:
        return
    table = model.__table__
    pk = [c.name for c in table.primary_key.columns]
    buckets = sorted({k[1] for k in adds})
    cols = [table.c[n] for n in pk] + [table.c[m] for m in MEASURES]
    grains = table.c.grain.in_(sorted({k[0] for k in adds}))
    if "bot_id" in pk:
        wheres = [
            [grains, table.c.bucket.in_(buckets), table.c.bot_id.in_(list(part))]
            for part in _chunks(sorted({k[2] for k in adds}))
        ]
    else:
        wheres = [[grains, table.c.bucket.in_(buckets)]]
    for where in wheres:
        rows = await session.execute(select(*cols).where(*where))
        for row in rows:
            key = (row[0], row[1].astimezone(UTC), *row[2 : len(pk)])
            acc = adds.get(key)
            if acc is not None:
                acc.add_row(row)
    ins = _insert(dialect)(table)
    stmt = ins.on_conflict_do_update(index_elements=pk, set_={m: ins.excluded[m] for m in MEASURES})
    payload = [{**dict(zip(pk, key, strict=True)), **acc.values()} for key, acc in adds.items()]
    for part in _chunks(payload, 2000):
        await session.execute(stmt, list(part))


async def merge_errors(session: AsyncSession, dialect: str, adds: dict[tuple, list]) -> None:
    if not adds:
        return
    ins = _insert(dialect)(RollupError.__table__)
    stmt = ins.on_conflict_do_update(
        index_elements=["grain", "bucket", "bot_id", "error_class"],
        set_={
            "count": RollupError.__table__.c.count + ins.excluded.count,
            "last_seen": ins.excluded.last_seen,
        },
    )
    payload = [
        {
            "grain": g,
            "bucket": b,
            "bot_id": bot,
            "error_class": cls,
            "count": n,
            "last_seen": seen,
        }
        for (g, b, bot, cls), (n, seen) in adds.items()
    ]
    for part in _chunks(payload, 2000):
        await session.execute(stmt, list(part))


_FIELDS = (
    Message.id,
    Message.bot_id,
    Message.chat_id,
    Message.topic,
    Message.model,
    Message.created_at,
    Message.latency_ms,
    Message.tokens_in,
    Message.tokens_out,
    Message.tokens_cached,
    Message.cost_usd,
    Message.status,
    Message.error_class,
    Message.rolled,
)
PENDING = and_(
    Message.author_kind == "bot",
    Message.rolled < 2,
    or_(Message.rolled == 0, Message.status.in_(("sent", "failed"))),
)


class Rollups:
    """Runs the rollup job over ``sessions`` (``dialect`` "sqlite" or "postgresql")."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self.sessions = sessions
        self.dialect = dialect
        self._local = asyncio.Lock()

    async def run_once(self, limit: int = BATCH) -> int:
        """Roll up to ``limit`` pending messages; returns how many moved forward."""
        async with self._local, self.sessions() as session, session.begin():
            await lock(session, self.dialect)
            rows = (
                await session.execute(
                    select(*_FIELDS).where(PENDING).order_by(Message.id).limit(limit)
                )
            ).all()
            if not rows:
                return 0
            batch = Batch()
            to1: list[int] = []
            to2: list[int] = []
            for row in rows:
                final = row.status in ("sent", "failed")
                batch.add(row, decide=row.rolled == 0, final=final)
                (to2 if final else to1).append(row.id)
            batch.finish()
            await merge_measures(session, self.dialect, RollupFact, batch.facts)
            await merge_measures(session, self.dialect, RollupBot, batch.bots)
            await merge_measures(session, self.dialect, RollupFleet, batch.fleet)
            await merge_errors(session, self.dialect, batch.errors)
            for ids, mark in ((to1, 1), (to2, 2)):
                for part in _chunks(ids, 2000):
                    await session.execute(
                        update(Message)
                        .where(Message.id.in_(list(part)))
                        .values(rolled=mark)
                        .execution_options(synchronize_session=False)
                    )
            return len(rows)

    async def catch_up(self, limit: int = BATCH) -> int:
        total = 0
        while n := await self.run_once(limit):
            total += n
        return total
