"""Rollup upkeep: rebuild from raw rows, re-price a period, prune raw rows, compact hours.

- ``rebuild(since, until)`` deletes the rollups of ``[since, until)`` (whole UTC days) and
  rolls the raw rows of that range up again. It never reaches before ``pruned_before``:
  the rollups of pruned days are all that is left of them, so they are kept.
- ``reprice(start, end, prices)`` recomputes each raw row's cost from its tokens with the
  price table given (``piyasa.runtime.llm.price_of``: cached tokens at the cached rate) and
  rebuilds those days; days whose raw rows are pruned are re-priced from their rollups'
  token sums (same formula, rounded once per rollup row instead of once per message).
- ``prune(older_than_days)`` rolls everything up first, then deletes raw message rows older
  than that many whole days (bot rows only once fully rolled up) and records the cut-off.
- ``compact()`` drops hourly rollups older than ``HOURLY_KEEP_DAYS``; daily ones stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from piyasa.analytics.read import HOURLY_BEFORE
from piyasa.analytics.rollup import Rollups, floor_day, lock, micros
from piyasa.db.analytics_models import (
    HOURLY_KEEP_DAYS,
    AnalyticsState,
    RollupBot,
    RollupError,
    RollupFact,
    RollupFleet,
)
from piyasa.db.models import Message, Setting
from piyasa.runtime.llm import price_of

PRUNED_BEFORE = "pruned_before"


def ceil_day(at: datetime) -> datetime:
    floor = floor_day(at)
    return floor if floor == at else floor + timedelta(days=1)


async def _advance(session: Any, key: str, cut: datetime) -> None:
    """Set the ``AnalyticsState`` instant ``key`` to ``cut`` unless it is already later
    (a cut-off never moves back)."""
    mark = await session.get(AnalyticsState, key)
    if mark is None:
        session.add(AnalyticsState(key=key, value=cut.isoformat()))
    elif datetime.fromisoformat(mark.value) < cut:
        mark.value = cut.isoformat()


@dataclass(frozen=True)
class Outcome:
    """What an upkeep command did (the CLI prints it, ``--json`` as is)."""

    start: datetime | None
    end: datetime | None
    messages: int = 0
    rollup_rows: int = 0
    clamped_to: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "messages": self.messages,
            "rollup_rows": self.rollup_rows,
            "clamped_to": iso(self.clamped_to),
        }


class Upkeep(Rollups):
    """The rollup job plus its maintenance commands."""

    async def pruned_before(self) -> datetime | None:
        async with self.sessions() as session:
            value = await session.scalar(
                select(AnalyticsState.value).where(AnalyticsState.key == PRUNED_BEFORE)
            )
        return datetime.fromisoformat(value) if value else None

    async def rebuild(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Outcome:
        """Recompute the rollups of ``[since, until)`` (whole days; None = all) from raw rows."""
        start = floor_day(since) if since else None
        end = ceil_day(until) if until else None
        cut = await self.pruned_before()
        clamped = None
        if cut and (start is None or start < cut):
            start, clamped = cut, cut
        if start and end and start >= end:
            return Outcome(start, end, clamped_to=clamped)
        async with self._local, self.sessions() as session, session.begin():
            await lock(session, self.dialect)
            deleted = 0
            for model in (RollupFact, RollupBot, RollupFleet, RollupError):
                where = []
                if start:
                    where.append(model.bucket >= start)
                if end:
                    where.append(model.bucket < end)
                result = await session.execute(delete(model).where(*where))
                deleted += int(result.rowcount or 0)
            where = [Message.author_kind == "bot"]
            if start:
                where.append(Message.created_at >= start)
            if end:
                where.append(Message.created_at < end)
            await session.execute(
                update(Message)
                .where(*where)
                .values(rolled=0)
                .execution_options(synchronize_session=False)
            )
        rolled = await self.catch_up()
        return Outcome(start, end, messages=rolled, rollup_rows=deleted, clamped_to=clamped)

    async def current_prices(self) -> dict[str, Any]:
        """The fleet's price overrides (setting ``llm_prices``), merged over the defaults
        by ``price_of``."""
        async with self.sessions() as session:
            value = await session.scalar(select(Setting.value).where(Setting.key == "llm_prices"))
        return dict(value or {})

    async def reprice(
        self, start: datetime, end: datetime, prices: Mapping[str, Any] | None = None
    ) -> Outcome:
        """Re-price ``[start, end)`` (widened to whole days) with ``prices`` (default: the
        current table)."""
        table = dict(prices) if prices is not None else await self.current_prices()
        start, end = floor_day(start), ceil_day(end)
        cut = await self.pruned_before()
        changed = 0
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        Message.id,
                        Message.model,
                        Message.tokens_in,
                        Message.tokens_cached,
                        Message.tokens_out,
                    ).where(
                        Message.author_kind == "bot",
                        Message.model.is_not(None),
                        Message.created_at >= start,
                        Message.created_at < end,
                    )
                )
            ).all()
            payload = [
                {
                    "id": r.id,
                    "cost_usd": price_of(
                        r.model, r.tokens_in or 0, r.tokens_cached or 0, r.tokens_out or 0, table
                    ),
                }
                for r in rows
            ]
            for i in range(0, len(payload), 2000):
                await session.execute(update(Message), payload[i : i + 2000])
            changed = len(payload)
        if cut and start < cut:
            await self._reprice_rollups(start, min(cut, end), table)
        out = await self.rebuild(max(start, cut) if cut else start, end)
        return Outcome(start, end, messages=changed, rollup_rows=out.rollup_rows, clamped_to=cut)

    async def _reprice_rollups(
        self, start: datetime, end: datetime, table: Mapping[str, Any]
    ) -> None:
        """Pruned days: cost from each fact row's token sums, then bot rows re-summed."""
        async with self._local, self.sessions() as session, session.begin():
            await lock(session, self.dialect)
            facts = (
                (
                    await session.execute(
                        select(RollupFact).where(
                            RollupFact.bucket >= start, RollupFact.bucket < end
                        )
                    )
                )
                .scalars()
                .all()
            )
            sums: dict[tuple, int] = {}
            fleet: dict[tuple, int] = {}
            for f in facts:
                if f.model:
                    cost = price_of(f.model, f.tokens_in, f.tokens_cached, f.tokens_out, table)
                    f.cost_micros = micros(cost)
                key = (f.grain, f.bucket, f.bot_id)
                sums[key] = sums.get(key, 0) + f.cost_micros
                fleet[key[:2]] = fleet.get(key[:2], 0) + f.cost_micros
            await session.flush()
            for (grain, bucket, bot_id), cost in sums.items():
                await session.execute(
                    update(RollupBot)
                    .where(
                        RollupBot.grain == grain,
                        RollupBot.bucket == bucket,
                        RollupBot.bot_id == bot_id,
                    )
                    .values(cost_micros=cost)
                )
            for (grain, bucket), cost in fleet.items():
                await session.execute(
                    update(RollupFleet)
                    .where(RollupFleet.grain == grain, RollupFleet.bucket == bucket)
                    .values(cost_micros=cost)
                )

    async def prune(self, older_than_days: int, now: datetime | None = None) -> Outcome:
        """Delete raw message rows older than ``older_than_days`` whole days (>= 1)."""
        if older_than_days < 1:
            raise ValueError("older_than_days must be at least 1")
        now = now or datetime.now(UTC)
        cut = floor_day(now - timedelta(days=older_than_days))
        await self.catch_up()
        async with self._local, self.sessions() as session, session.begin():
            await lock(session, self.dialect)
            result = await session.execute(
                delete(Message).where(
                    Message.created_at < cut,
                    or_(Message.author_kind == "human", Message.rolled == 2),
                )
            )
            await _advance(session, PRUNED_BEFORE, cut)
        compacted = await self.compact(now)
        return Outcome(None, cut, messages=int(result.rowcount or 0), rollup_rows=compacted)

    async def compact(self, now: datetime | None = None) -> int:
        """Drop hourly rollups older than HOURLY_KEEP_DAYS (the daily ones cover them) and
        record the boundary (``read.HOURLY_BEFORE``, never moved back) so reads widen
        edges before it to whole days; returns the rows dropped."""
        cut = floor_day((now or datetime.now(UTC)) - timedelta(days=HOURLY_KEEP_DAYS))
        removed = 0
        async with self._local, self.sessions() as session, session.begin():
            await lock(session, self.dialect)
            for model in (RollupFact, RollupBot, RollupFleet, RollupError):
                result = await session.execute(
                    delete(model).where(model.grain == "h", model.bucket < cut)
                )
                removed += int(result.rowcount or 0)
            await _advance(session, HOURLY_BEFORE, cut)
        return removed

    async def pending(self) -> int:
        """Bot messages not fully rolled up yet (queued ones included)."""
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.author_kind == "bot", Message.rolled < 2)
                )
                or 0
            )
