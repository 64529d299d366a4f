"""Analytics: overview and bot-detail latency over rollups at 1 M and 10 M messages.

A synthetic history (200 bots × 50 chats × 30 days by default) is loaded as raw ``messages``
rows and as the rollups those rows make (``piyasa.bench._analytics_data``). Figures, per
size: p50/p95 ms of ``Analytics.overview`` and ``Analytics.bot_detail`` for 24 h and 30 d
(the query API; the chat command's own pipeline cost is measured by ``piyasa bench
commands``), the p95/p99 relative error of the rollup percentiles against exact values from
raw rows, and the baseline in the same run: a plain SQL ``GROUP BY`` + percentile over raw
rows. Every size is loaded first, then each case is timed on all sizes in alternation, so
the 10 M / 1 M ratio measures size, not a shared machine's load at different moments. Then
the ratio, and the ingest overhead per message: the outbox path
(enqueue + sent) plus the rollup job, against the same path with rollups off (no job, no
partial index).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from piyasa.bench._analytics_ingest import ingest_overhead
from piyasa.bench._common import pct, throwaway_services

DESCRIPTION = "analytics overview/bot detail over rollups at 1M and 10M messages, vs raw SQL"
TARGET_P95_MS = 50.0
TARGET_RATIO = 1.3
TARGET_ERROR = 0.02
TARGET_INGEST_MS = 0.5
CHUNK = 100_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", default="1000000,10000000", help="history sizes, comma separated")
    p.add_argument("--bots", type=int, default=200)
    p.add_argument("--chats", type=int, default=50)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--runs", type=int, default=100, help="timed queries per case")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--baseline-runs", type=int, default=3)
    p.add_argument("--ingest", type=int, default=3000, help="messages for the ingest overhead")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    p.add_argument(
        "--raw-max",
        type=int,
        default=2_000_000,
        help="load raw rows (for the exact figures and the raw-SQL baseline) only for "
        "sizes up to this; the queries read rollups either way",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")


async def _insert(conn: Any, table: str, columns: list[str] | tuple[str, ...], rows: list) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(
            table, records=rows, columns=list(columns)
        )
        return
    marks = ", ".join("?" for _ in columns)
    await conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


async def _seed_meta(services: Any, bots: int, chats: int) -> None:
    from piyasa.db.models import Bot, Chat

    async with services.sessions() as session, session.begin():
        session.add_all(
            Bot(id=i, token_encrypted="x", token_fingerprint=f"bench{i}", display_name=f"Bench {i}")
            for i in range(1, bots + 1)
        )
        session.add_all(
            Chat(id=i, telegram_id=-100_000 - i, title=f"Chat {i}") for i in range(1, chats + 1)
        )


def _sqlite_times(columns: list[str], rows: list[tuple]) -> list[tuple]:
    idx = [i for i, c in enumerate(columns) if c in ("bucket", "last_seen")]
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    out = []
    for r in rows:
        r = list(r)
        for i in idx:
            r[i] = r[i].astimezone(UTC).strftime(fmt)
        out.append(tuple(r))
    return out


async def _load(services: Any, h: Any, bots: int, chats: int, raw: bool = True) -> dict[str, float]:
    from piyasa.bench import _analytics_data as data

    sqlite = services.engine.dialect.name == "sqlite"
    t0 = time.perf_counter()
    await _seed_meta(services, bots, chats)
    n = h.bot.size if raw else 0
    for lo in range(0, n, CHUNK):
        rows = data.raw_rows(h, lo, min(n, lo + CHUNK), sqlite)
        if not sqlite:
            rows = [(*r[:11], Decimal(str(r[11])), *r[12:]) for r in rows]
        async with services.engine.begin() as conn:
            await _insert(conn, "messages", data.COLUMNS, rows)
    t_raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    tables = (
        ("analytics_facts", ("chat", "topic", "model"), True),
        ("analytics_bots", (), True),
        ("analytics_fleet", (), False),
    )
    for table, dims, per_bot in tables:
        for grain in ("h", "d"):
            columns, rows = data.rollups(h, grain, dims, per_bot)
            if sqlite:
                rows = _sqlite_times(columns, rows)
            async with services.engine.begin() as conn:
                for i in range(0, len(rows), CHUNK):
                    await _insert(conn, table, columns, rows[i : i + CHUNK])
    for grain in ("h", "d"):
        rows = data.error_rows(h, grain)
        columns = list(rows[0]) if rows else []
        tuples = [tuple(r.values()) for r in rows]
        if sqlite:
            tuples = _sqlite_times(columns, tuples)
        async with services.engine.begin() as conn:
            await _insert(conn, "analytics_errors", columns, tuples)
    async with services.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return {"raw_rows_s": round(t_raw, 1), "rollups_s": round(time.perf_counter() - t0, 1)}


def _ctx(services: Any, **kw: Any) -> Any:
    """A chat request as the command handlers get it (English, a private Telegram chat)."""
    from chatops.context import Client, Context, Invocation

    if "params" in kw:
        kw["invocation"] = Invocation("analytics.bot", params=kw.pop("params"), is_press=True)
    return Context(
        services=services,
        registry=None,  # type: ignore[arg-type]  # the analytics handlers read none
        surface="telegram",
        client=Client("telegram", "1"),
        actor=None,
        lang="en",
        chat_id="1",
        chat_private=True,
        **kw,
    )


async def _timed(fn: Any, runs: int, warmup: int) -> dict[str, float | None]:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(pct(samples, 0.95) or 0, 2),
    }


async def _exact_percentiles(
    services: Any, since: datetime, bot_id: int | None = None
) -> tuple[int, dict[float, float]]:
    """Exact p50/p95/p99 from raw rows (rank floor(q·(n−1)), as the sketch reads)."""
    where = "author_kind = 'bot' AND latency_ms IS NOT NULL AND created_at >= :s"
    if bot_id is not None:
        where += f" AND bot_id = {int(bot_id)}"
    params = {"s": since.replace(tzinfo=None) if _sqlite(services) else since}
    out = {}
    async with services.engine.connect() as conn:
        n = (
            await conn.execute(text(f"SELECT count(*) FROM messages WHERE {where}"), params)
        ).scalar()
        for q in (0.5, 0.95, 0.99):
            k = int(q * (n - 1))
            out[q] = float(
                (
                    await conn.execute(
                        text(
                            f"SELECT latency_ms FROM messages WHERE {where} "
                            f"ORDER BY latency_ms LIMIT 1 OFFSET {k}"
                        ),
                        params,
                    )
                ).scalar()
            )
    return int(n), out


def _sqlite(services: Any) -> bool:
    return services.engine.dialect.name == "sqlite"


async def _baseline_overview(services: Any, since: datetime) -> None:
    """The plain way: GROUP BY over raw rows, then the percentiles over raw rows."""
    params = {"s": since.replace(tzinfo=None) if _sqlite(services) else since}
    where = "author_kind = 'bot' AND created_at >= :s"
    async with services.engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT bot_id, count(*), sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), "
                "sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), sum(tokens_in), "
                "sum(tokens_out), sum(tokens_cached), sum(cost_usd), avg(latency_ms), "
                f"min(latency_ms) FROM messages WHERE {where} GROUP BY bot_id"
            ),
            params,
        )
        if _sqlite(services):
            n = (
                await conn.execute(
                    text(f"SELECT count(latency_ms) FROM messages WHERE {where}"), params
                )
            ).scalar()
            for q in (0.5, 0.95, 0.99):
                await conn.execute(
                    text(
                        f"SELECT latency_ms FROM messages WHERE {where} AND latency_ms IS NOT NULL "
                        f"ORDER BY latency_ms LIMIT 1 OFFSET {int(q * max(n - 1, 0))}"
                    ),
                    params,
                )
        else:
            await conn.execute(
                text(
                    "SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                    f"(ORDER BY latency_ms) FROM messages WHERE {where}"
                ),
                params,
            )


async def _load_size(args: argparse.Namespace, n: int, services: Any, now: datetime) -> dict:
    from piyasa.bench._analytics_data import synth

    h = synth(n, args.bots, args.chats, args.days, now)
    raw = n <= args.raw_max
    return {"load": await _load(services, h, args.bots, args.chats, raw), "raw_rows_loaded": raw}


def _cases(args: argparse.Namespace, services: Any, now: datetime) -> dict[str, Any]:
    """The timed calls on one loaded history: name -> a coroutine function."""
    from chatops.commands.analytics.detail import analytics_bot
    from chatops.commands.analytics.overview import show_overview
    from piyasa.analytics.queries import Analytics, Period

    analytics = Analytics(services.sessions)
    rng = random.Random(7)
    cases: dict[str, Any] = {}
    for label in ("24h", "30d"):
        period = Period.parse(label, now)
        cases[f"command_overview_{label}"] = lambda lb=label: show_overview(
            _ctx(services, args={"period": lb})
        )
        cases[f"command_bot_detail_{label}"] = lambda lb=label: analytics_bot(
            _ctx(services, params={"id": rng.randint(1, args.bots), "p": lb})
        )
        cases[f"overview_{label}"] = lambda p=period: analytics.overview(p)
        cases[f"bot_detail_{label}"] = lambda p=period: analytics.bot_detail(
            rng.randint(1, args.bots), p
        )
    return cases


async def _timed_interleaved(
    calls: dict[int, Any], runs: int, warmup: int
) -> dict[int, dict[str, float | None]]:
    """Time the same case on every size in alternation (the order rotates each round), so
    a shared machine's load falls on every size alike and the ratio measures size."""
    sizes = list(calls)
    samples: dict[int, list[float]] = {n: [] for n in sizes}
    for i in range(warmup + runs):
        for n in sizes[i % len(sizes) :] + sizes[: i % len(sizes)]:
            t0 = time.perf_counter()
            await calls[n]()
            if i >= warmup:
                samples[n].append((time.perf_counter() - t0) * 1000)
    return {
        n: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(pct(v, 0.95) or 0, 2)}
        for n, v in samples.items()
    }


async def _exact_figures(args: argparse.Namespace, services: Any, now: datetime) -> dict:
    """Percentile error of the rollups against raw rows, and the raw-SQL baseline."""
    from piyasa.analytics.queries import Analytics, Period
    from piyasa.analytics.read import ceil_hour

    analytics = Analytics(services.sessions)
    period = Period.parse("30d", now)
    since = ceil_hour(period.start)
    ov = await analytics.overview(period)
    count, exact = await _exact_percentiles(services, since)
    detail = await analytics.bot_detail(1, period)
    _, exact_bot = await _exact_percentiles(services, since, 1)

    def err(got: float | None, want: float) -> float:
        return round(abs((got or 0) - want) / want, 4)

    return {
        "percentile_error": {
            "overview_p95": err(ov.figures.p95_ms, exact[0.95]),
            "overview_p99": err(ov.figures.p99_ms, exact[0.99]),
            "bot_p95": err(detail.row.figures.p95_ms, exact_bot[0.95]),
            "bot_p99": err(detail.row.figures.p99_ms, exact_bot[0.99]),
        },
        "latency_samples_exact": count,
        "baseline_raw_sql_overview_30d": await _timed(
            lambda: _baseline_overview(services, since), args.baseline_runs, 0
        ),
    }


async def _sizes(args: argparse.Namespace, sizes: list[int]) -> dict[str, dict[str, Any]]:
    """Load every size into its own database first, then time each case on all sizes in
    alternation (``_timed_interleaved``)."""
    from contextlib import AsyncExitStack

    now = datetime.now(UTC)
    out: dict[str, dict[str, Any]] = {}
    async with AsyncExitStack() as stack:
        worlds = {}
        for n in sizes:
            services = await stack.enter_async_context(
                throwaway_services(args.database_url, f"piyasa-bench-analytics-{n}-")
            )
            worlds[n] = services
            out[str(n)] = await _load_size(args, n, services, now)
            # Progress on stderr: a long run's loads are not lost if it is stopped later.
            print(json.dumps({str(n): out[str(n)]}), file=sys.stderr, flush=True)
        cases = {n: _cases(args, services, now) for n, services in worlds.items()}
        for name in cases[sizes[0]]:
            timed = await _timed_interleaved(
                {n: cases[n][name] for n in sizes}, args.runs, args.warmup
            )
            for n, figures in timed.items():
                out[str(n)][name] = figures
        for n, services in worlds.items():
            if out[str(n)]["raw_rows_loaded"]:
                out[str(n)].update(await _exact_figures(args, services, now))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.rows, args.bots, args.chats, args.days = "3000,6000", 5, 3, 3
        args.runs, args.warmup, args.baseline_runs, args.ingest = 5, 1, 1, 100
    sizes = [int(x) for x in str(args.rows).split(",") if x.strip()]
    result: dict[str, Any] = {
        "database": "postgresql" if args.database_url.startswith("postgres") else "sqlite",
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}",
        "history": {"bots": args.bots, "chats": args.chats, "days": args.days},
        "measured": "command_*: the /analytics handlers (query + names + localized view); "
        "overview_*/bot_detail_*: the Analytics query API",
        "sizes": {},
    }
    result["sizes"] = await _sizes(args, sizes)
    if len(sizes) >= 2:
        small, big = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
        result["ratio_big_small"] = {
            k: round(big[k]["p95_ms"] / small[k]["p95_ms"], 2)
            for k in big
            if k.startswith(("overview", "bot_detail", "command_"))
        }
    result["ingest_ms_per_message"] = await ingest_overhead(args.database_url, args.ingest)
    worst = [
        v
        for s in result["sizes"].values()
        for k, v in s.items()
        if k.startswith(("overview", "bot_detail", "command_"))
    ]
    errors = [e for s in result["sizes"].values() for e in s.get("percentile_error", {}).values()]
    result["targets"] = {
        "p95_under_50ms": all(v["p95_ms"] < TARGET_P95_MS for v in worst),
        "ratio_at_most_1_3": all(
            r <= TARGET_RATIO for r in result.get("ratio_big_small", {}).values()
        ),
        "percentile_error_at_most_2pct": all(e <= TARGET_ERROR for e in errors),
        "ingest_overhead_under_0_5ms": result["ingest_ms_per_message"]["overhead"]
        < TARGET_INGEST_MS,
    }
    return result
