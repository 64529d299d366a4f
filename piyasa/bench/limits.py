"""Fleet-wide limits: what one decision costs when the limits are shared (issue 18).

A decision takes two shared steps: the planner's ledger claim (fleet budget, hourly
counts, last speaker; :mod:`piyasa.cluster.ledger`) and, when its message is sent, the
gate's bucket acquire (per chat, per group, per bot, global; Redis script or
``shared_counters`` rows). Measured per store, one caller and then ``--instances``
concurrent callers with their own connections (as instances would be):

* p50 / p95 ms of a ledger claim and of a bucket acquire, and their sum per decision;
* decisions per second with the concurrent callers, one decision per call and in batches
  of ``--batch`` (the planner confirms a tick's decisions at once, the gate acquires a
  dispatch pass at once): the ceiling the store puts on a fleet.

Baseline in the same run: memory (one process, today's single-instance path). Stores:
Redis at ``--redis-url`` and PostgreSQL at ``--postgres-url`` (a throwaway schema);
either is skipped, and said so, when not given or not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

from piyasa.bench._common import pct
from piyasa.cluster.ledger import Claim, RedisLedger, SqlLedger
from piyasa.runtime.buckets import DeliveryLimits, MemoryLimiter, RedisLimiter, SendKey

DESCRIPTION = "fleet-wide limits: per-decision cost (ms) on Redis and PostgreSQL vs memory"
# Telegram's limits spread wide enough that the measured calls are admitted, not refused
LIMITS = DeliveryLimits(global_max=1_000_000, bot_max=1_000_000)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decisions", type=int, default=400, help="timed decisions per case")
    p.add_argument("--instances", type=int, default=3, help="concurrent callers")
    p.add_argument("--batch", type=int, default=10, help="decisions per call, batched case")
    p.add_argument("--bots", type=int, default=600)
    p.add_argument("--chats", type=int, default=150)
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("PIYASA_TEST_POSTGRES_URL", ""),
        help="default: PIYASA_TEST_POSTGRES_URL",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("PIYASA_TEST_REDIS_URL", ""),
        help="default: PIYASA_TEST_REDIS_URL",
    )


def _work(args: argparse.Namespace, i: int) -> tuple[Claim, SendKey]:
    bot, chat = 1 + i % args.bots, 1 + (i * 7) % args.chats
    return Claim(bot, chat, 1_000_000, None), SendKey(bot, -chat, True)


class _Memory:
    """Today's single process: the planner's own counters and a MemoryLimiter."""

    def __init__(self) -> None:
        self.limiter = MemoryLimiter(LIMITS)
        self.last: dict[int, int] = {}

    async def claim_many(self, claims: list[Claim], _per_min: float) -> list[Any]:
        for c in claims:
            self.last[c.chat_id] = c.bot_id
        return claims


async def _case(
    args: argparse.Namespace, ledgers: list[Any], limiters: list[Any]
) -> dict[str, Any]:
    n = args.decisions
    claim_ms, acquire_ms = [], []
    for i in range(n):  # one caller: latency
        c, k = _work(args, i)
        t0 = time.perf_counter()
        await ledgers[0].claim_many([c], 1e9)
        t1 = time.perf_counter()
        await limiters[0].acquire_many([k])
        t2 = time.perf_counter()
        claim_ms.append((t1 - t0) * 1000)
        acquire_ms.append((t2 - t1) * 1000)

    async def caller(j: int) -> None:
        for i in range(j, n, len(ledgers)):
            c, k = _work(args, n + i)
            await ledgers[j].claim_many([c], 1e9)
            await limiters[j].acquire_many([k])

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(j) for j in range(len(ledgers))))
    wall = time.perf_counter() - t0

    async def batches(j: int) -> None:  # as the fleet calls them: a tick's batch at once
        b = args.batch
        for i in range(j * b, n, len(ledgers) * b):
            work = [_work(args, 2 * n + i + x) for x in range(b)]
            await ledgers[j].claim_many([c for c, _ in work], 1e9)
            await limiters[j].acquire_many([k for _, k in work])

    t0 = time.perf_counter()
    await asyncio.gather(*(batches(j) for j in range(len(ledgers))))
    wall_batched = time.perf_counter() - t0
    both = [a + b for a, b in zip(claim_ms, acquire_ms, strict=True)]

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "claim_p50_ms": r(pct(claim_ms, 0.5)),
        "claim_p95_ms": r(pct(claim_ms, 0.95)),
        "acquire_p50_ms": r(pct(acquire_ms, 0.5)),
        "acquire_p95_ms": r(pct(acquire_ms, 0.95)),
        "per_decision_p50_ms": r(pct(both, 0.5)),
        "per_decision_p95_ms": r(pct(both, 0.95)),
        "concurrent_callers": len(ledgers),
        "decisions_per_s_concurrent": round(n / wall, 1),
        "batch": args.batch,
        "decisions_per_s_concurrent_batched": round(n / wall_batched, 1),
    }


async def _redis(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as aioredis

    ns = f"bench:{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.from_url(args.redis_url) for _ in range(args.instances)]
    try:
        await clients[0].ping()
        ledgers = [RedisLedger(c, ns + "ledger:") for c in clients]
        limiters = [RedisLimiter(c, LIMITS, ns + "gate:") for c in clients]
        return await _case(args, ledgers, limiters)
    finally:
        async for key in clients[0].scan_iter(match=ns + "*", count=500):
            await clients[0].delete(key)
        for c in clients:
            await c.aclose()


async def _postgres(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from piyasa.db.counter_models import SharedCounter
    from piyasa.db.engine import create_engine
    from piyasa.runtime.sql_limiter import SqlLimiter

    base = args.postgres_url.replace("postgresql://", "postgresql+asyncpg://")
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    engines = [create_engine(f"{base}{sep}search_path={schema}") for _ in range(args.instances)]
    try:
        async with engines[0].begin() as conn:
            await conn.run_sync(SharedCounter.__table__.create)
        ledgers = [SqlLedger(e) for e in engines]
        limiters = [SqlLimiter(e, LIMITS) for e in engines]
        return await _case(args, ledgers, limiters)
    finally:
        for e in engines:
            await e.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"decisions": args.decisions, "bots": args.bots, "chats": args.chats}
    mem = _Memory()
    out["baseline_memory"] = await _case(args, [mem], [mem.limiter])
    for name, fn, url in (
        ("redis", _redis, args.redis_url),
        ("postgresql", _postgres, args.postgres_url),
    ):
        if not url:
            out[name] = {"skipped": f"no --{name.replace('postgresql', 'postgres')}-url"}
            continue
        try:
            out[name] = await fn(args)
        except OSError as exc:
            out[name] = {"skipped": f"not reachable: {type(exc).__name__}"}
    return out
