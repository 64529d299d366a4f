"""A known history of bot messages, and the exact figures computed from its raw rows.

The data set spans 45 days (so some of it is older than the hourly rollups and ends up only
in daily ones), 4 bots in 3 chats, 3 topics and 2 models, with sent, failed (Telegram
errors, LLM 429 "quota" and timeouts) and still-queued messages, cached tokens and
log-normal latencies. ``exact`` recomputes every figure straight from ``messages`` rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.analytics import sketch
from piyasa.analytics.read import ceil_hour
from piyasa.db.models import Bot, Chat, Message
from piyasa.runtime.llm import price_of

NOW = datetime(2026, 11, 30, 15, 20, tzinfo=UTC)
MODELS = ("gpt-4o-mini", "gpt-4.1")
TOPICS = ("bist", "fx", "crypto")


async def seed(
    sessions: async_sessionmaker[AsyncSession], n: int = 1500, seed_: int = 15, days: int = 45
) -> None:
    rng = random.Random(seed_)
    async with sessions() as s, s.begin():
        s.add_all(
            Bot(
                id=i,
                token_encrypted="x",
                token_fingerprint=f"fp{i}",
                username=f"bot{i}",
                display_name=f"Bot {i}",
                enabled=i != 4,
            )
            for i in range(1, 5)
        )
        s.add_all(Chat(id=i, telegram_id=-1000 - i, title=f"Chat {i}") for i in range(1, 4))
    await add_messages(sessions, n, rng, days)


async def add_messages(
    sessions: async_sessionmaker[AsyncSession], n: int, rng: random.Random, days: int = 45
) -> None:
    rows = []
    for _ in range(n):
        bot = rng.choice((1, 1, 1, 2, 2, 3, 4))
        at = NOW - timedelta(seconds=rng.randrange(days * 86400))
        model = MODELS[bot % 2]
        roll = rng.random()
        if roll < 0.05:  # a failed generation: no latency, no tokens
            rows.append(
                Message(
                    chat_id=rng.randint(1, 3),
                    bot_id=bot,
                    author_kind="bot",
                    created_at=at,
                    topic=rng.choice(TOPICS),
                    model=model,
                    status="failed",
                    error_class=rng.choice(("quota", "timeout")),
                )
            )
            continue
        tin, tout = rng.randint(200, 3000), rng.randint(20, 400)
        cached = rng.choice((0, 0, tin // 2, tin))
        status = "sent" if roll < 0.9 else ("failed" if roll < 0.95 else "queued")
        rows.append(
            Message(
                chat_id=rng.randint(1, 3),
                bot_id=bot,
                author_kind="bot",
                created_at=at,
                topic=rng.choice(TOPICS),
                model=model,
                latency_ms=int(rng.lognormvariate(7 + bot * 0.3, 0.6)) + 1,
                tokens_in=tin,
                tokens_out=tout,
                tokens_cached=cached,
                cost_usd=price_of(model, tin, cached, tout, {}),
                status=status,
                error_class="telegram" if status == "failed" else None,
            )
        )
    rows.append(  # a human message: never counted
        Message(chat_id=1, author_kind="human", created_at=NOW - timedelta(hours=1), text="hi")
    )
    async with sessions() as s, s.begin():
        s.add_all(rows)


@dataclass
class Exact:
    messages: int
    sent: int
    failed: int
    rate_limited: int
    cost: Decimal
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    latencies: list[int]
    topics: dict[str, int]
    errors: dict[str, tuple[int, datetime]]


async def exact(
    sessions: async_sessionmaker[AsyncSession],
    start: datetime,
    end: datetime,
    bot_ids: list[int] | None = None,
) -> Exact:
    """Figures straight from raw rows whose hour bucket starts in ``[start, end)``."""
    lo = ceil_hour(start)
    where = [Message.author_kind == "bot", Message.created_at >= lo]
    if bot_ids:
        where.append(Message.bot_id.in_(bot_ids))
    async with sessions() as s:
        rows = (await s.execute(select(Message).where(*where))).scalars().all()
    rows = [r for r in rows if r.created_at.replace(minute=0, second=0, microsecond=0) < end]
    topics: dict[str, int] = {}
    errors: dict[str, tuple[int, datetime]] = {}
    for r in rows:
        topics[r.topic or "-"] = topics.get(r.topic or "-", 0) + 1
        if r.status == "failed":
            n, seen = errors.get(r.error_class, (0, r.created_at))
            errors[r.error_class] = (n + 1, max(seen, r.created_at))
    return Exact(
        messages=len(rows),
        sent=sum(r.status == "sent" for r in rows),
        failed=sum(r.status == "failed" for r in rows),
        rate_limited=sum(r.error_class == "quota" for r in rows),
        cost=sum((r.cost_usd or Decimal(0) for r in rows), Decimal(0)),
        tokens_in=sum(r.tokens_in or 0 for r in rows),
        tokens_out=sum(r.tokens_out or 0 for r in rows),
        tokens_cached=sum(r.tokens_cached or 0 for r in rows),
        latencies=[r.latency_ms for r in rows if r.latency_ms is not None],
        topics=topics,
        errors=errors,
    )


def assert_figures(fig, ex: Exact) -> None:  # type: ignore[no-untyped-def]
    """Counts, success rate and cost exact; percentiles within 2 %."""
    assert (fig.messages, fig.sent, fig.failed) == (ex.messages, ex.sent, ex.failed)
    assert fig.rate_limited == ex.rate_limited
    done = ex.sent + ex.failed
    assert fig.success_rate == (ex.sent / done if done else None)
    assert fig.cost_usd == ex.cost
    assert (fig.tokens_in, fig.tokens_out, fig.tokens_cached) == (
        ex.tokens_in,
        ex.tokens_out,
        ex.tokens_cached,
    )
    assert fig.min_ms == min(ex.latencies)
    assert fig.avg_ms == sum(ex.latencies) / len(ex.latencies)
    for q, got in ((0.5, fig.p50_ms), (0.95, fig.p95_ms), (0.99, fig.p99_ms)):
        want = sketch.exact_quantile(ex.latencies, q)
        assert abs(got - want) / want <= 0.02, (q, got, want)
