"""Rollups against raw rows on SQLite and PostgreSQL: counts, success rate, cost (cached
tokens included), percentiles within 2 %, topics and errors — after incremental runs, after
a rebuild, after pruning raw rows, and after re-pricing."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from piyasa.analytics import read
from piyasa.analytics.maintenance import Upkeep
from piyasa.analytics.queries import Analytics, Period
from piyasa.analytics.rollup import floor_day, floor_hour
from piyasa.db.analytics_models import RollupBot
from piyasa.db.models import Message
from piyasa.runtime.llm import price_of
from tests.analytics.dataset import NOW, add_messages, assert_figures, exact, seed

# Hour-aligned periods mixing hourly edges and daily middles, within the hourly retention.
PERIODS = [
    Period(floor_hour(NOW) - timedelta(hours=24), floor_hour(NOW) + timedelta(hours=1), "24h"),
    Period(floor_hour(NOW) - timedelta(days=7, hours=5), NOW, "7d+"),
    Period.parse("2026-11-01..2026-11-30", NOW),
]


def _dialect(sessions) -> str:  # type: ignore[no-untyped-def]
    return sessions.kw["bind"].dialect.name


async def _check(sessions, analytics: Analytics, period: Period) -> None:  # type: ignore[no-untyped-def]
    ov = await analytics.overview(period)
    assert_figures(ov.figures, await exact(sessions, period.start, period.end))
    for bot_id in (1, 3):
        detail = await analytics.bot_detail(bot_id, period)
        ex = await exact(sessions, period.start, period.end, [bot_id])
        assert_figures(detail.row.figures, ex)
        assert {t.name: t.messages for t in detail.topics} == ex.topics
        assert sum(t.share for t in detail.topics) == pytest.approx(1.0)
        assert {e.error_class: (e.count, e.last_seen) for e in detail.errors} == ex.errors
        assert detail.cost_per_message == (ex.cost / ex.messages).quantize(Decimal("0.000001"))


@pytest.fixture
async def upkeep(sessions):  # type: ignore[no-untyped-def]
    await seed(sessions)
    job = Upkeep(sessions, _dialect(sessions))
    assert await job.catch_up(limit=400) > 0  # several batches
    return job


async def test_figures_match_raw_rows(sessions, upkeep: Upkeep) -> None:  # type: ignore[no-untyped-def]
    analytics = Analytics(sessions)
    for period in PERIODS:
        await _check(sessions, analytics, period)
    rows, total = await analytics.bots(PERIODS[2], sort="cost", page_size=2)
    assert total == 4 and len(rows) == 2
    assert rows[0].figures.cost_usd >= rows[1].figures.cost_usd
    ex = await exact(sessions, PERIODS[2].start, PERIODS[2].end)
    chats = await analytics.chats(PERIODS[2])
    assert sum(c.messages for c in chats) == ex.messages
    assert {c.name for c in chats} == {"Chat 1", "Chat 2", "Chat 3"}
    assert sum(m.cost_usd for m in await analytics.models(PERIODS[2])) == ex.cost
    hist = await analytics.latency_histogram(PERIODS[2])
    assert sum(n for _, _, n in hist) == len(ex.latencies)
    points = await analytics.series(PERIODS[0])
    assert (
        len(points) == 25
        and sum(p.messages for p in points)
        == (await exact(sessions, PERIODS[0].start, PERIODS[0].end)).messages
    )


async def test_new_messages_and_outcomes_are_counted_once(sessions, upkeep: Upkeep) -> None:  # type: ignore[no-untyped-def]
    analytics = Analytics(sessions)
    await add_messages(sessions, 300, random.Random(99), days=3)
    async with sessions() as s, s.begin():  # queued messages reach their fate later
        await s.execute(update(Message).where(Message.status == "queued").values(status="sent"))
    assert await upkeep.catch_up() > 0
    assert await upkeep.catch_up() == 0  # nothing left, nothing counted twice
    assert await upkeep.pending() == 0
    for period in PERIODS:
        await _check(sessions, analytics, period)


async def test_rebuild_and_pruning_keep_the_figures(sessions, upkeep: Upkeep) -> None:  # type: ignore[no-untyped-def]
    analytics = Analytics(sessions)
    whole = Period(NOW - timedelta(days=46), NOW, "all")
    before = (await analytics.overview(whole)).figures
    out = await upkeep.rebuild()
    assert out.messages > 0
    assert (await analytics.overview(whole)).figures == before
    for period in PERIODS:
        await _check(sessions, analytics, period)

    old = Period(NOW - timedelta(days=46), NOW - timedelta(days=10), "old")
    old_figures = (await analytics.overview(old)).figures
    detail = await analytics.bot_detail(1, old)
    pruned = await upkeep.prune(10, now=NOW)
    assert pruned.messages > 0
    async with sessions() as s:
        left = (
            await s.execute(select(Message.status).where(Message.created_at < pruned.end))
        ).scalars()
    assert set(left) == {"queued"}  # only messages still on their way stay
    assert (await analytics.overview(old)).figures == old_figures
    assert await analytics.bot_detail(1, old) == detail
    assert (await analytics.overview(whole)).figures == before
    # A rebuild after pruning stops at the cut: the pruned days' rollups survive it.
    out = await upkeep.rebuild()
    assert out.clamped_to == pruned.end
    assert (await analytics.overview(whole)).figures == before
    assert (await analytics.overview(old)).figures == old_figures


async def test_reprice_recomputes_cost_with_cached_tokens(sessions, upkeep: Upkeep) -> None:  # type: ignore[no-untyped-def]
    analytics = Analytics(sessions)
    period = PERIODS[2]
    prices = {"gpt-4o-mini": {"input": 1.0, "cached": 0.1, "output": 2.0}}
    await upkeep.reprice(period.start, period.end, prices)
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Message).where(
                    Message.author_kind == "bot",
                    Message.created_at >= period.start,
                    Message.created_at < period.end,
                    Message.tokens_in.is_not(None),
                )
            )
        ).scalars()
        want = sum(
            (price_of(r.model, r.tokens_in, r.tokens_cached, r.tokens_out, prices) for r in rows),
            Decimal(0),
        )
    got = (await analytics.overview(period)).figures.cost_usd
    assert got == want
    # Cached tokens are cheaper: the same tokens all uncached would cost more.
    async with sessions() as s:
        rows = (
            await s.execute(
                select(Message).where(
                    Message.created_at >= period.start,
                    Message.created_at < period.end,
                    Message.tokens_cached > 0,
                )
            )
        ).scalars()
        assert any(
            price_of(r.model, r.tokens_in, 0, r.tokens_out, prices) > r.cost_usd for r in rows
        )
    async with sessions() as s:
        hourly = await s.scalar(select(func.count()).select_from(RollupBot))
    assert hourly > 0


async def test_compaction_widens_only_edges_before_its_recorded_boundary(
    sessions, upkeep: Upkeep
) -> None:  # type: ignore[no-untyped-def]
    """Which buckets are read depends on what is stored, never on today's date: before a
    compaction a period starting mid-day 40 days back is exact to the hour; after it (its
    hourly rows gone) its edges widen to whole days, and recent periods stay exact."""
    analytics = Analytics(sessions)
    day = floor_day(NOW - timedelta(days=40))
    old = Period(day + timedelta(hours=12), NOW - timedelta(days=35), "old")
    assert_figures(
        (await analytics.overview(old)).figures, await exact(sessions, old.start, old.end)
    )
    widened = await exact(sessions, day, floor_day(old.end) + timedelta(days=1))
    assert widened.messages > (await exact(sessions, old.start, old.end)).messages
    assert await upkeep.compact(now=NOW) > 0
    assert_figures((await analytics.overview(old)).figures, widened)
    for period in PERIODS:
        await _check(sessions, analytics, period)
    # the boundary never moves back (a compaction with a clock behind keeps it)
    await upkeep.compact(now=NOW - timedelta(days=5))
    async with sessions() as s:
        assert await read.hourly_before(s) == floor_day(NOW - timedelta(days=30))
