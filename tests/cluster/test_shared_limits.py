"""Fleet-wide limits shared by several instances, on real PostgreSQL and Redis: concurrent
callers from three "instances" (own engines / own Redis connections) never exceed a cap.

The planner's ledger (budget, hourly counts, last speaker) on both stores, the gate's
buckets on PostgreSQL (``SqlLimiter``; the Redis limiter has its own tests), and two
planners confirming their decisions against one ledger."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from piyasa.cache import RedisCache
from piyasa.cluster.ledger import (
    BOT_HOURLY,
    BUDGET,
    LAST_SPEAKER,
    Claim,
    RedisLedger,
    SqlLedger,
    budget_shape,
)
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.runtime.buckets import DeliveryLimits, SendKey
from piyasa.runtime.planner import Planner
from piyasa.runtime.planner_shared import confirm
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster
from piyasa.runtime.sql_limiter import SqlLimiter
from tests.conftest import (
    REDIS_URL,
    SKIP_POSTGRES,
    SKIP_REDIS,
    _drop_pg_schema,
    _make_pg_schema,
    _postgres_up,
    _redis_up,
    postgres_schema_url,
    skip_or_fail,
)

N = 3  # instances


@contextlib.asynccontextmanager
async def _pg() -> AsyncIterator[list[Any]]:
    """N engines on one fresh schema (N instances' connections)."""
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    schema = "t_" + uuid.uuid4().hex[:12]
    await _make_pg_schema(schema)
    engines = [create_engine(postgres_schema_url(schema)) for _ in range(N)]
    async with engines[0].begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engines
    finally:
        for e in engines:
            await e.dispose()
        await _drop_pg_schema(schema)


@pytest.fixture
async def pg_engines() -> AsyncIterator[list[Any]]:
    async with _pg() as engines:
        yield engines


@pytest.fixture(params=["postgres", "redis"])
async def ledgers(request: pytest.FixtureRequest) -> AsyncIterator[list[Any]]:
    """Three ledgers on one shared store, as three instances would have."""
    if request.param == "postgres":
        async with _pg() as engines:
            yield [SqlLedger(e) for e in engines]
        return
    if not _redis_up():
        skip_or_fail(SKIP_REDIS)
    ns = f"test:{uuid.uuid4().hex[:8]}:"
    caches = [RedisCache(REDIS_URL, namespace=ns) for _ in range(N)]
    try:
        yield [RedisLedger(c.client, ns + "ledger:") for c in caches]
    finally:
        await RedisLedger(caches[0].client, ns).clear()
        for c in caches:
            await c.close()


async def _storm(ledgers: list[Any], claims: list[Claim], per_min: float) -> list[bool]:
    """Every claim sent at once, spread over the instances, one per call."""

    async def one(i: int, c: Claim) -> bool:
        (v,) = await ledgers[i % len(ledgers)].claim_many([c], per_min)
        return v.ok

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(claims))))


async def test_bot_hourly_limit_holds_across_instances(ledgers: list[Any]) -> None:
    claims = [Claim(7, chat, 4, None) for chat in range(1, 31)]  # 30 chats, limit 4/h
    ok = await _storm(ledgers, claims, per_min=60_000)
    assert sum(ok) == 4
    (v,) = await ledgers[1].claim_many([Claim(7, 99, 4, None)], 60_000)
    assert v.reason == BOT_HOURLY
    (v,) = await ledgers[2].claim_many([Claim(8, 99, 4, None)], 60_000)  # another bot: fine
    assert v.ok


async def test_chat_budget_and_last_speaker_hold_across_instances(ledgers: list[Any]) -> None:
    # one chat with its own budget of 5 an hour, 40 bots asking at once
    ok = await _storm(ledgers, [Claim(b, 3, 100, 5) for b in range(1, 41)], per_min=60_000)
    assert sum(ok) == 5
    # no bot twice in a row in a chat, whoever asks
    ok = await _storm(ledgers, [Claim(1, 4, 100, None) for _ in range(12)], per_min=60_000)
    assert sum(ok) == 1
    (v,) = await ledgers[0].claim_many([Claim(1, 4, 100, None)], 60_000)
    assert (v.reason, v.last) == (LAST_SPEAKER, 1)
    await ledgers[2].note_human(4)  # a person spoke: bot 1 may answer
    (v,) = await ledgers[1].claim_many([Claim(1, 4, 100, None)], 60_000)
    assert v.ok


async def test_fleet_budget_holds_across_instances(ledgers: list[Any]) -> None:
    per_min = 60.0  # 1 a second, a bucket of 5
    rate, burst = budget_shape(per_min)
    t0 = time.monotonic()
    ok = await _storm(ledgers, [Claim(b, b, 100, None) for b in range(1, 61)], per_min)
    elapsed = time.monotonic() - t0
    assert 1 <= sum(ok) <= burst + rate * elapsed
    # a reply may borrow a little beyond an empty budget; chatter may not
    (v,) = await ledgers[0].claim_many([Claim(500, 500, 100, None)], per_min)
    (r,) = await ledgers[1].claim_many([Claim(501, 501, 100, None, debt=5)], per_min)
    assert v.reason == BUDGET or v.tokens < 1
    assert r.ok


async def test_batch_is_atomic_and_in_order(ledgers: list[Any]) -> None:
    out = await ledgers[0].claim_many(
        [Claim(1, 1, 2, None), Claim(1, 2, 2, None), Claim(1, 3, 2, None), Claim(2, 1, 2, None)],
        60_000,
    )
    assert [v.ok for v in out] == [True, True, False, True]
    assert out[2].reason == BOT_HOURLY


# ---- the gate's buckets on PostgreSQL


async def test_sql_limiter_group_window_and_global_cap(pg_engines: list[Any]) -> None:
    lim = DeliveryLimits(chat_rate=1000, chat_burst=1000, group_max=5, global_max=9)
    lim = DeliveryLimits(**{**lim.__dict__, "global_window": 60.0})
    limiters = [SqlLimiter(e, lim) for e in pg_engines]
    group = SendKey(1, -100, True)

    async def send(i: int, key: SendKey) -> bool:
        (w,) = await limiters[i % N].acquire_many([key])
        return w == 0.0

    ok = await asyncio.gather(*(send(i, group) for i in range(30)))
    assert sum(ok) == 5  # 20/min per group in production; 5 here
    waits = await limiters[2].peek_many([group])
    assert waits[0] > 0
    # the global cap across distinct pairs and bots: 9 in the window, 5 already used
    ok = await asyncio.gather(*(send(i, SendKey(100 + i, i, False)) for i in range(20)))
    assert sum(ok) == 4


async def test_sql_limiter_retry_after_block_reaches_every_instance(
    pg_engines: list[Any],
) -> None:
    a, b = SqlLimiter(pg_engines[0]), SqlLimiter(pg_engines[1])
    key = SendKey(3, 33, False)
    assert await a.acquire_many([key]) == [0.0]
    await a.block(3, None, 30.0)  # a 429 on instance a blocks the bot on instance b
    (w,) = await b.acquire_many([SendKey(3, 44, False)])
    assert 25 < w <= 30
    assert (await b.tokens_many([key]))[0] < 3


# ---- planners on two instances, one ledger


def _roster(bots: int, chats: int, hourly: int) -> Roster:
    r = Roster()
    for b in range(1, bots + 1):
        r.bots[b] = BotInfo(b, None, None, f"b{b}", {}, "00:00-24:00", "UTC", hourly, True)
    for c in range(1, chats + 1):
        r.chats[c] = ChatInfo(c, -c, f"c{c}", "group", ["fx"], True)
        r.members[c] = list(range(1, bots + 1))
    return r


async def test_two_planners_together_honour_the_fleet_caps(ledgers: list[Any]) -> None:
    roster = _roster(bots=4, chats=6, hourly=3)
    planners = [Planner(roster, lead_s=0.0) for _ in range(2)]
    kept: list[list[Any]] = [[], []]
    for p in planners:
        p.shared = True
    for _ in range(4):
        for i, p in enumerate(planners):
            decisions = p.plan(6000, 1.0, room=2)
            kept[i] += await confirm(p, ledgers[i], decisions, 6000)
    every = kept[0] + kept[1]
    per_bot: dict[int, int] = {}
    for d in every:
        per_bot[d.bot.id] = per_bot.get(d.bot.id, 0) + 1
    assert kept[0] and kept[1]  # both instances decide
    assert max(per_bot.values()) <= 3  # each bot's hourly limit, fleet-wide
    by_chat: dict[int, list[int]] = {}
    for d in sorted(every, key=lambda d: d.decided_at):
        by_chat.setdefault(d.chat.id, []).append(d.bot.id)
    for seq in by_chat.values():  # no bot twice in a row in a chat, across instances
        assert all(a != b for a, b in itertools.pairwise(seq))
    for i, p in enumerate(planners):  # refusals were undone: only the kept are pending
        assert p.outstanding == len(kept[i])
        assert not p._undo
        # and each chat's kept decisions are numbered 0, 1, 2 … with no gap (the fleet
        # commits a chat's drafts in that order: a gap would hold the chat forever)
        for chat_id in {d.chat.id for d in kept[i]}:
            seqs = [d.seq for d in kept[i] if d.chat.id == chat_id]
            assert seqs == list(range(len(seqs))), (chat_id, seqs)
            assert p._seq[chat_id] == len(seqs)
