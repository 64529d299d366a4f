"""The ingest half of ``piyasa bench analytics``: what rollups add per message sent."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from piyasa.bench._common import throwaway_services


def _drafts(rng: random.Random, first: int, n: int) -> list[Any]:
    from piyasa.runtime.outbox import Draft

    return [
        Draft(
            idempotency_key=f"k{first + j}",
            bot_id=rng.randint(1, 20),
            chat_id=rng.randint(1, 10),
            tg_chat_id=-1,
            is_group=True,
            text="hello",
            topic="fx",
            model="gpt-4o-mini",
            latency_ms=rng.randint(300, 5000),
            tokens_in=900,
            tokens_out=80,
            tokens_cached=300,
            cost_usd=Decimal("0.000200"),
        )
        for j in range(n)
    ]


async def ingest_overhead(database_url: str, messages: int) -> dict[str, float]:
    """ms per message: the outbox path (enqueue 5 + sent) on two databases side by side,
    one with rollups off (no partial index, no job) and one with them on, batch by batch in
    alternation so both see the same machine load (medians of per-batch times); plus the
    rollup job's own time (every 500 messages) per message."""
    from contextlib import AsyncExitStack

    from piyasa.analytics.rollup import Rollups
    from piyasa.bench.analytics import _seed_meta  # the same bots and chats as the queries'
    from piyasa.runtime.outbox import OutboxStore

    async with AsyncExitStack() as stack:
        stores = []
        for on in (False, True):
            services = await stack.enter_async_context(
                throwaway_services(database_url, f"piyasa-bench-ingest-{int(on)}-")
            )
            await _seed_meta(services, 20, 10)
            if not on:
                async with services.engine.begin() as conn:
                    await conn.execute(text("DROP INDEX ix_messages_unrolled"))
            dialect = services.engine.dialect.name
            stores.append((OutboxStore(services.sessions, dialect), services, dialect))
        job = Rollups(stores[1][1].sessions, stores[1][2])
        samples: list[list[float]] = [[], []]
        job_s = 0.0
        for i in range(0, messages, 5):
            for k, (store, _s, _d) in enumerate(stores if i % 10 == 0 else stores[::-1]):
                k = k if i % 10 == 0 else 1 - k
                drafts = _drafts(random.Random(i), i, 5)
                t0 = time.perf_counter()
                items = await store.enqueue(drafts)
                at = datetime.now(UTC)
                await store.complete(sent=[(it, 1000 + it.id, at) for it in items])
                samples[k].append((time.perf_counter() - t0) * 1000 / 5)
            if (i // 5) % 100 == 99:
                t0 = time.perf_counter()
                await job.catch_up()
                job_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        await job.catch_up()
        job_s += time.perf_counter() - t0
    off, on = (statistics.median(x) for x in samples)
    job_ms = job_s * 1000 / messages
    return {
        "rollups_off_path": round(off, 3),
        "rollups_on_path": round(on, 3),
        "rollup_job": round(job_ms, 3),
        "overhead": round(max(on - off, 0) + job_ms, 3),
        "note": "outbox enqueue (5 a batch) + sent, on/off alternating; the job every 500",
    }
