"""Health: snapshot refresh time, and `/api/health` under load vs. aiohttp hello-world.

The server side (a HealthService on a fresh SQLite database, the real web app, and a
hello-world aiohttp app) runs in a child process; this process is the load generator,
so client and server do not share one event loop. Both endpoints are driven by the
same client with ``--clients`` concurrent keep-alive connections for ``--seconds``
each, alternating for ``--rounds`` rounds; figures are medians over the rounds.

Figures: ``refresh_ms`` (median and p95 of ``run_all_now()`` rounds), ``api_health`` and
``hello_world`` (requests/s, p50/p95 ms), ``ratio`` (api_health rps / hello-world rps,
target >= 0.7), and ``health_command_ms``: `/health` through the whole chat-ops pipeline
(aiogram long polling against an in-process sandbox Telegram, a linked viewer), timed
inside the bot from the update's arrival to the reply handed to the HTTP session, with
`/whoami` through the same pipeline, interleaved, as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from piyasa.bench._common import drive, instrument, pct, throwaway_services

DESCRIPTION = "health snapshot refresh time; /api/health throughput vs. aiohttp hello-world"
TARGET_RATIO = 0.7


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=50, help="concurrent clients")
    p.add_argument("--seconds", type=float, default=4.0, help="duration of each load run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per endpoint")
    p.add_argument("--refreshes", type=int, default=30, help="refresh rounds to time")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    p.add_argument("--redis-url", default="", help="probe this Redis too")
    p.add_argument("--commands", type=int, default=400, help="/health + /whoami updates")


# --------------------------------------------------------------------------- child process


def _child(conn: Any, database_url: str, redis_url: str, refreshes: int) -> None:
    asyncio.run(_child_main(conn, database_url, redis_url, refreshes))


async def _child_main(conn: Any, database_url: str, redis_url: str, refreshes: int) -> None:
    from aiohttp import web

    from chatops.web.server import make_web_app, start_web
    from piyasa.admin.health import HealthService
    from piyasa.config import load_settings
    from piyasa.db import migrate
    from piyasa.services import Services

    with tempfile.TemporaryDirectory(prefix="piyasa-bench-health-") as tmp:
        env = {"PIYASA_DATA_DIR": str(Path(tmp) / "data")}
        if database_url:
            env["PIYASA_DATABASE_URL"] = database_url
        if redis_url:
            env["PIYASA_REDIS_URL"] = redis_url
        services = Services.build(load_settings(env))
        await migrate.upgrade(services.engine)
        health = HealthService(services, record_stop=False)
        services.extras["health"] = health
        await health.start()
        times = []
        for _ in range(refreshes):
            start = time.perf_counter()
            await health.run_all_now()
            times.append((time.perf_counter() - start) * 1000)

        async def hello(_request: web.Request) -> web.Response:
            return web.Response(text="Hello, world")

        hello_app = web.Application()
        hello_app.router.add_get("/", hello)
        runner, port = await start_web(make_web_app(services), "127.0.0.1", 0)
        hello_runner, hello_port = await start_web(hello_app, "127.0.0.1", 0)
        conn.send(
            {
                "api_port": port,
                "hello_port": hello_port,
                "refresh_ms": times,
                "components": {k: v.state.value for k, v in health.snapshot().components.items()},
            }
        )
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        await hello_runner.cleanup()
        await runner.cleanup()
        await health.stop()
        await services.close()


# --------------------------------------------------------------------------- load generator


async def _load(port: int, path: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` keep-alive HTTP/1.1 connections, each sending one request at a time.

    A bare asyncio stream client rather than aiohttp's: the load generator must cost
    less than the server it measures, or both endpoints measure the client.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return head.startswith(b"HTTP/1.1 200")

    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    for reader, writer in conns:  # warm up every connection once
        await one(reader, writer)
    stop_at = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            if await one(reader, writer):
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - began
    for _, writer in conns:
        writer.close()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.5) or 0, 2),
        "p95_ms": round(pct(latencies, 0.95) or 0, 2),
        "requests": len(latencies),
        "errors": errors,
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": round(statistics.median(r["rps"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p95_ms": round(statistics.median(r["p95_ms"] for r in runs), 2),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "rounds_rps": [r["rps"] for r in runs],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_child,
        args=(child, args.database_url, args.redis_url, args.refreshes),
        daemon=True,
    )
    proc.start()
    try:
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, parent.recv)
        api_runs, hello_runs = [], []
        for _ in range(args.rounds):
            hello_runs.append(await _load(ready["hello_port"], "/", args.clients, args.seconds))
            api_runs.append(
                await _load(ready["api_port"], "/api/health", args.clients, args.seconds)
            )
        parent.send("stop")
    finally:
        await asyncio.get_running_loop().run_in_executor(None, proc.join, 15)
        if proc.is_alive():
            proc.kill()
    api, hello = _median_run(api_runs), _median_run(hello_runs)
    ratio = round(api["rps"] / hello["rps"], 3) if hello["rps"] else None
    refresh = ready["refresh_ms"]
    return {
        "refresh_ms": {
            "median": round(statistics.median(refresh), 2),
            "p95": round(pct(refresh, 0.95) or 0, 2),
            "max": round(max(refresh), 2),
            "rounds": len(refresh),
            "components": ready["components"],
        },
        "api_health": api,
        "hello_world": hello,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio is not None and ratio >= TARGET_RATIO,
        "health_command_ms": await _health_command(args.commands),
        "setup": {"clients": args.clients, "seconds_per_run": args.seconds, "rounds": args.rounds},
    }


# --------------------------------------------------------------------------- /health in chat

CMD_TOKEN = "7300000000:BENCH-admin-bot-token-for-health-00"
CMD_USER = 920001


async def _health_command(n: int) -> dict[str, Any]:
    """p50/p95 of `/health` and of `/whoami` (baseline), same pipeline, same run."""
    import logging

    from chatops.telegram.surface import TelegramSurface
    from piyasa.admin.health import HealthService
    from piyasa.admin.users import add_user
    from piyasa.config import Secret
    from piyasa.sandbox.telegram import TelegramSandbox

    logging.getLogger("aiogram").setLevel(logging.WARNING)
    sb = TelegramSandbox(enforce_limits=False)
    bot = sb.add_bot(CMD_TOKEN, "bench_health_bot", "Bench Health")
    sb.add_user(CMD_USER, "Bench", "bench_viewer", "en")
    url = await sb.start("127.0.0.1", 0)
    async with throwaway_services(
        "",
        "piyasa-bench-hcmd-",
        telegram_api_url=url,
        admin_bot_token=Secret(CMD_TOKEN),
        lang="en",
    ) as services:
        await add_user(services, "bench_viewer", "viewer", telegram_id=CMD_USER)
        health = HealthService(services, record_stop=False)
        services.extras["health"] = health
        await health.start()
        surface = TelegramSurface(services)
        samples: list[float] = []
        instrument(surface.bot, surface.dp, samples)
        await surface.start(polling=True)
        try:
            await sb.wait_for_poller(bot.id)
            await drive(sb, CMD_USER, bot.id, ["/health", "/whoami"] * 25, 1)  # warm-up
            health_ms: list[float] = []
            whoami_ms: list[float] = []
            for i in range(n):
                samples.clear()
                await drive(sb, CMD_USER, bot.id, ["/health" if i % 2 == 0 else "/whoami"], 1)
                (health_ms if i % 2 == 0 else whoami_ms).extend(samples[:1])
        finally:
            await surface.stop()
            await health.stop()
            await sb.stop()

    def fig(values: list[float]) -> dict[str, Any]:
        return {
            "p50": round(statistics.median(values), 3),
            "p95": round(pct(values, 0.95) or 0, 3),
            "n": len(values),
        }

    out = {"health": fig(health_ms), "whoami_baseline": fig(whoami_ms)}
    out["p95_delta_ms"] = round(out["health"]["p95"] - out["whoami_baseline"]["p95"], 3)
    return out
