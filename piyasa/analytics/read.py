"""Reading rollups: which buckets cover a period, and sums over them (no raw rows).

A period ``[start, end)`` is covered by daily buckets for the whole UTC days inside it and
hourly buckets for the hours at its edges, so a 30-day overview reads about 30 + 48 rows per
bot whatever the traffic. An hour bucket counts when it starts inside the period (a "24h"
period ending 21:57 reads the buckets 22:00 yesterday .. 21:00 today). An edge before the
recorded compaction boundary (``hourly_before``: hourly rows before it were dropped by
``Upkeep.compact``) widens to its whole day; which buckets are read depends on what is
stored, never on today's date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.analytics import sketch
from piyasa.analytics.rollup import SUMS, Acc, floor_day, floor_hour
from piyasa.db.analytics_models import (
    AnalyticsState,
    RollupBot,
    RollupError,
    RollupFact,
    RollupFleet,
)
from piyasa.db.models import Chat

Segment = tuple[str, datetime, datetime]  # (grain, first bucket, end)
_SUMS = SUMS


def ceil_hour(at: datetime) -> datetime:
    floor = floor_hour(at)
    return floor if floor == at else floor + timedelta(hours=1)


HOURLY_BEFORE = "hourly_before"
"""``AnalyticsState`` key: hourly rollups before this instant (ISO, a UTC midnight) were
compacted away; written by ``Upkeep.compact``, absent until the first compaction."""


async def hourly_before(session: AsyncSession) -> datetime | None:
    """The compaction boundary (one primary-key read), None when nothing was compacted."""
    value = await session.scalar(
        select(AnalyticsState.value).where(AnalyticsState.key == HOURLY_BEFORE)
    )
    return datetime.fromisoformat(value) if value else None


def segments(
    start: datetime, end: datetime, hourly_before: datetime | None = None
) -> list[Segment]:
    """The buckets covering ``[start, end)``: whole days daily, edges hourly. An edge on
    a day before ``hourly_before`` (the compaction boundary, a UTC midnight: no hourly
    rows there) widens to its whole day, the first one back to midnight, the last one
    on to the next midnight."""
    s = ceil_hour(start)
    if hourly_before is not None:
        if s < hourly_before:
            s = floor_day(s)
        if floor_day(end) < hourly_before and floor_day(end) != end:
            end = floor_day(end) + timedelta(days=1)
    if s >= end:
        return []
    d0 = s if floor_day(s) == s else floor_day(s) + timedelta(days=1)
    d1 = floor_day(end)
    if d0 >= d1:
        return [("h", s, end)]
    out: list[Segment] = []
    if s < d0:
        out.append(("h", s, d0))
    out.append(("d", d0, d1))
    if d1 < end:
        out.append(("h", d1, end))
    return out


def covering(model: Any, segs: Sequence[Segment]) -> ColumnElement[bool]:
    if not segs:
        return false()
    return or_(*(and_(model.grain == g, model.bucket >= a, model.bucket < b) for g, a, b in segs))


def _bots(model: Any, bot_ids: Sequence[int] | None) -> list[ColumnElement[bool]]:
    return [model.bot_id.in_(list(bot_ids))] if bot_ids is not None else []


async def per_bot(
    session: AsyncSession, segs: Sequence[Segment], bot_ids: Sequence[int] | None = None
) -> dict[int, Acc]:
    """Measures (with the merged histogram) per bot id over the segments."""
    return (await per_bot_sets(session, [segs], bot_ids))[0]


async def per_bot_sets(
    session: AsyncSession,
    sets: Sequence[Sequence[Segment]],
    bot_ids: Sequence[int] | None = None,
    *,
    hists: bool = True,
) -> list[dict[int, Acc]]:
    """``per_bot`` for several disjoint periods in one pass: the sums summed in SQL (GROUP
    BY period, bot), then (``hists``) the histograms merged. Without ``hists`` the accs
    have no ``counts``; ``fill_hists`` adds them for the few bots that need percentiles."""
    which = _which(RollupBot, sets)
    where = [or_(*(covering(RollupBot, segs) for segs in sets)), *_bots(RollupBot, bot_ids)]
    sums = [func.coalesce(func.sum(getattr(RollupBot, n)), 0) for n in _SUMS]
    rows = await session.execute(
        select(
            which,
            RollupBot.bot_id,
            *sums,
            func.min(RollupBot.lat_min),
            func.max(RollupBot.lat_max),
        )
        .where(*where)
        .group_by(which, RollupBot.bot_id)
    )
    out: list[dict[int, Acc]] = [{} for _ in sets]
    for row in rows:
        out[row[0]][row[1]] = _acc(row[2:])
    if hists:
        await fill_hists(session, sets, out, bot_ids)
    return out


async def per_bot_cost(session: AsyncSession, segs: Sequence[Segment]) -> dict[int, Acc]:
    """Only the cost (and message count) per bot: what the overview needs of the previous
    period (the cost-spike issue), from the covering index."""
    rows = await session.execute(
        select(RollupBot.bot_id, func.sum(RollupBot.messages), func.sum(RollupBot.cost_micros))
        .where(covering(RollupBot, segs))
        .group_by(RollupBot.bot_id)
    )
    return {b: Acc(messages=int(m or 0), cost_micros=int(c or 0)) for b, m, c in rows}


def _which(model: Any, sets: Sequence[Sequence[Segment]]) -> Any:
    return case(
        *((covering(model, segs), i) for i, segs in enumerate(sets)), else_=len(sets)
    ).label("which")


def _acc(row: Sequence[Any]) -> Acc:
    """An Acc from the _SUMS then min(lat_min), max(lat_max) of a query row."""
    n = len(_SUMS)
    acc = Acc(**{name: int(v) for name, v in zip(_SUMS, row[:n], strict=True)})
    acc.lat_min, acc.lat_max = row[n], row[n + 1]
    return acc


async def fill_hists(
    session: AsyncSession,
    sets: Sequence[Sequence[Segment]],
    accs: Sequence[dict[int, Acc]],
    bot_ids: Sequence[int] | None = None,
) -> None:
    """Merge the stored histograms of ``bot_ids`` (None: every bot) over each period of
    ``sets`` into ``accs`` (as ``per_bot_sets`` returned them), with their percentiles."""
    which = _which(RollupBot, sets)
    where = [or_(*(covering(RollupBot, segs) for segs in sets)), *_bots(RollupBot, bot_ids)]
    rows = (
        await session.execute(
            select(which, RollupBot.bot_id, RollupBot.hist).where(
                *where, RollupBot.hist.is_not(None)
            )
        )
    ).all()
    # Read committed: the rollup job may have added a bucket since ``accs`` was read; its
    # histogram waits for the next read, with the totals it belongs to.
    rows = [r for r in rows if r[0] < len(accs) and r[1] in accs[r[0]]]
    _merge_into(rows, lambda w, b: accs[w][b])


def _merge_into(rows: Sequence[Any], target: Any) -> None:
    """rows of (which, key, blob): merge per (which, key) into ``target(which, key)``'s
    Acc, then compute its p50/p95/p99 (vectorised over all groups)."""
    if not rows:
        return
    slots: dict[tuple, int] = {}
    groups = [slots.setdefault((w, b), len(slots)) for w, b, _ in rows]
    merged = sketch.merge_grouped(groups, [h for _, _, h in rows], len(slots))
    lo = np.zeros(len(slots))
    hi = np.zeros(len(slots))
    for (w, b), i in slots.items():
        acc = target(w, b)
        acc.counts = merged[i]
        lo[i] = acc.lat_min if acc.lat_min is not None else 0
        hi[i] = acc.lat_max if acc.lat_max is not None else np.inf
    qs = sketch.quantiles_rows(merged, (0.5, 0.95, 0.99), lo, hi)
    for (w, b), i in slots.items():
        target(w, b).quantiles = tuple(None if np.isnan(v) else float(v) for v in qs[i])


async def fleet_sets(session: AsyncSession, sets: Sequence[Sequence[Segment]]) -> list[Acc]:
    """The whole fleet's measures (histogram and percentiles included) for each period of
    ``sets``, from ``analytics_fleet``: one row per bucket, whatever the number of bots."""
    which = _which(RollupFleet, sets)
    where = or_(*(covering(RollupFleet, segs) for segs in sets))
    sums = [func.coalesce(func.sum(getattr(RollupFleet, n)), 0) for n in _SUMS]
    rows = await session.execute(
        select(which, *sums, func.min(RollupFleet.lat_min), func.max(RollupFleet.lat_max))
        .where(where)
        .group_by(which)
    )
    out = [Acc() for _ in sets]
    for row in rows:
        if row[0] < len(sets):
            out[row[0]] = _acc(row[1:])
    hists = (
        await session.execute(
            select(which, literal(0), RollupFleet.hist).where(where, RollupFleet.hist.is_not(None))
        )
    ).all()
    _merge_into(hists, lambda w, _b: out[w])
    return out


def total(accs: Sequence[Acc]) -> Acc:
    """Sum several per-bot measures into one (histograms merged)."""
    out = Acc()
    for acc in accs:
        for n in _SUMS:
            setattr(out, n, getattr(out, n) + getattr(acc, n))
        for n, pick in (("lat_min", min), ("lat_max", max)):
            theirs, mine = getattr(acc, n), getattr(out, n)
            if theirs is not None:
                setattr(out, n, theirs if mine is None else pick(mine, theirs))
        if acc.counts is not None:
            out.counts = acc.counts.copy() if out.counts is None else out.counts + acc.counts
    return out


async def per_dimension(
    session: AsyncSession,
    segs: Sequence[Segment],
    dim: str,
    bot_ids: Sequence[int] | None = None,
) -> list[tuple[Any, int, int]]:
    """(value of ``dim`` in topic|chat_id|model, messages, cost micro-USD), most first."""
    col = getattr(RollupFact, dim)
    rows = await session.execute(
        select(col, func.sum(RollupFact.messages), func.sum(RollupFact.cost_micros))
        .where(covering(RollupFact, segs), *_bots(RollupFact, bot_ids))
        .group_by(col)
    )
    out = [(k, int(m or 0), int(c or 0)) for k, m, c in rows]
    out.sort(key=lambda r: (-r[1], str(r[0])))
    return out


async def facets(
    session: AsyncSession, segs: Sequence[Segment], bot_ids: Sequence[int] | None = None
) -> dict[str, list[tuple[Any, int, int]]]:
    """``per_dimension`` for topic, chat (its title) and model in one query."""
    rows = await session.execute(
        select(
            RollupFact.chat_id,
            Chat.title,
            RollupFact.topic,
            RollupFact.model,
            func.sum(RollupFact.messages),
            func.sum(RollupFact.cost_micros),
        )
        .outerjoin(Chat, Chat.id == RollupFact.chat_id)
        .where(covering(RollupFact, segs), *_bots(RollupFact, bot_ids))
        .group_by(RollupFact.chat_id, Chat.title, RollupFact.topic, RollupFact.model)
    )
    sums: dict[str, dict[Any, list[int]]] = {"topic": {}, "chat": {}, "model": {}}
    for chat_id, title, topic, model, m, c in rows:
        chat = title or f"#{chat_id}"
        for dim, key in (("topic", topic), ("chat", chat), ("model", model)):
            entry = sums[dim].setdefault(key, [0, 0])
            entry[0] += int(m or 0)
            entry[1] += int(c or 0)
    return {
        dim: sorted(((k, m, c) for k, (m, c) in got.items()), key=lambda r: (-r[1], str(r[0])))
        for dim, got in sums.items()
    }


async def errors(
    session: AsyncSession, segs: Sequence[Segment], bot_ids: Sequence[int] | None = None
) -> list[tuple[str, int, datetime]]:
    """(error class, count, last seen) most frequent first."""
    rows = await session.execute(
        select(
            RollupError.error_class, func.sum(RollupError.count), func.max(RollupError.last_seen)
        )
        .where(covering(RollupError, segs), *_bots(RollupError, bot_ids))
        .group_by(RollupError.error_class)
    )
    out = []
    for cls, n, seen in rows:
        if isinstance(seen, str):  # SQLite returns max() of a datetime column as text
            seen = datetime.fromisoformat(seen)
        if seen is not None and seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        out.append((cls, int(n), seen))
    out.sort(key=lambda r: (-r[1], r[0]))
    return out


async def series(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    grain: str,
    bot_ids: Sequence[int] | None = None,
) -> dict[datetime, Acc]:
    """Measures per bucket of ``grain`` (whole buckets from the one holding ``start``)."""
    first = floor_hour(start) if grain == "h" else floor_day(start)
    rows = await session.execute(
        select(RollupBot)
        .where(
            RollupBot.grain == grain,
            RollupBot.bucket >= first,
            RollupBot.bucket < end,
            *_bots(RollupBot, bot_ids),
        )
        .order_by(RollupBot.bucket)
    )
    out: dict[datetime, Acc] = {}
    for obj in rows.scalars():
        out.setdefault(obj.bucket, Acc()).add_row(obj)
    return out


def percentiles(acc: Acc) -> tuple[float | None, float | None, float | None]:
    """(p50, p95, p99) ms of ``acc`` (computed once, then kept on it)."""
    if acc.quantiles is None:
        if acc.counts is None:
            acc.quantiles = (None, None, None)
        else:
            lo = np.array([acc.lat_min if acc.lat_min is not None else 0], dtype=np.float64)
            hi = np.array([acc.lat_max if acc.lat_max is not None else np.inf])
            row = sketch.quantiles_rows(acc.counts[None, :], (0.5, 0.95, 0.99), lo, hi)[0]
            acc.quantiles = tuple(None if np.isnan(v) else float(v) for v in row)
    return acc.quantiles  # type: ignore[return-value]
