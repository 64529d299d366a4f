"""The fleet runtime against Telegram's limits: delivered vs. what the limits allow.

The Telegram sandbox (enforcing 1 msg/s burst 3 per chat, 20/min per group, 30/s per bot)
and the OpenAI-compatible server (latency 50-500 ms) run in a child process, so the
fleet's process is measured alone. Each bot talks in ``--chats-per-bot`` of the groups
(bot i in groups i, i+1, ... mod --chats). The fleet-wide message cap is set far above
what Telegram allows, so the delivery gate is what limits.

Figures: ``delivered`` (accepted sendMessage calls inside the measured window),
``allowed_max`` (most sends the sandbox's limits admit for this fleet in that window,
computed by the sandbox's own ``allowed_max``), ``efficiency``, ``count_429``, ``lost``
(decided but neither delivered nor still queued), ``duplicates`` (deliveries beyond one
per decided message), ``p95_decision_to_send_ms``, ``rss_mb`` (peak RSS of the fleet's
process). The ``baseline`` is a naive sender, as the system this replaces: generate,
send at once, drop whatever Telegram refuses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

DESCRIPTION = "fleet delivery vs. Telegram's limits (sandbox + fake LLM), with a naive baseline"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bots", type=int, default=200)
    p.add_argument("--chats", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--chats-per-bot", type=int, default=1)
    p.add_argument("--workers", type=int, default=160, help="concurrent generations")
    p.add_argument("--latency", default="0.05,0.5", help="fake LLM latency range, seconds")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    p.add_argument("--redis-url", default="", help="use Redis (Lua) buckets")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--no-import-baseline",
        action="store_true",
        help="skip rss_mb_baseline_imports (a child process importing the same libraries)",
    )


def _token(n: int) -> str:
    return f"{6000000000 + n}:BENCH-fleet-bot-{n:05d}-token-do-not-use"


def _membership(bots: int, chats: int, per_bot: int) -> dict[int, list[int]]:
    """chat index -> bot indexes."""
    out: dict[int, list[int]] = {j: [] for j in range(chats)}
    for i in range(bots):
        for k in range(min(per_bot, chats)):
            out[(i + k) % chats].append(i)
    return out


def _chat_id(j: int) -> int:
    return -1004000000000 - j


# --------------------------------------------------------------------------- child process


def _child(conn: Any, bots: int, chats: int, per_bot: int, latency: tuple[float, float]) -> None:
    asyncio.run(_child_main(conn, bots, chats, per_bot, latency))


async def _child_main(
    conn: Any, bots: int, chats: int, per_bot: int, latency: tuple[float, float]
) -> None:
    from piyasa.sandbox.llm_server import FakeOpenAIServer
    from piyasa.sandbox.telegram import TelegramSandbox

    sb = TelegramSandbox()
    ids = [sb.add_bot(_token(i), f"bench{i}_bot", f"Bench {i}").id for i in range(bots)]
    for j, members in _membership(bots, chats, per_bot).items():
        sb.add_group(_chat_id(j), f"Bench {j}", members=[ids[i] for i in members])
    llm = FakeOpenAIServer(api_keys=["sk-bench"], latency=latency, record_limit=100)
    tg_url = await sb.start("127.0.0.1", 0)
    llm_url = await llm.start("127.0.0.1", 0)
    conn.send({"telegram": tg_url, "llm": llm_url})
    loop = asyncio.get_running_loop()
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd == "stop":
            break
        calls = [
            (
                c["bot_id"],
                c["params"].get("chat_id") if isinstance(c["params"], dict) else None,
                c["ok"],
                c["error_code"],
                c["time"],
            )
            for c in sb.calls("sendMessage")
        ]
        sent = [(m["chat"]["id"], m["from"]["id"], m.get("text", "")) for m in sb.sent()]
        conn.send({"calls": calls, "sent": sent})
    await llm.stop()
    await sb.stop()


class _World:
    def __init__(self, args: argparse.Namespace, latency: tuple[float, float]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=_child,
            args=(child_conn, args.bots, args.chats, args.chats_per_bot, latency),
            daemon=True,
        )
        self.proc.start()
        self.urls: dict[str, str] = {}

    async def ready(self) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        self.urls = await loop.run_in_executor(None, self.conn.recv)
        return self.urls

    async def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def _allowed(args: argparse.Namespace) -> int:
    from piyasa.sandbox.telegram import SandboxLimits, allowed_max

    per_bot = min(args.chats_per_bot, args.chats)
    chats = [(_chat_id(j), True) for j in range(per_bot)]
    return allowed_max(SandboxLimits(), chats, args.bots, args.seconds)


_IMPORTS_ONLY = """
import piyasa.runtime.fleet, piyasa.services, piyasa.runtime.llm, piyasa.bench.runtime
import openai, aiosqlite, redis.asyncio, psutil
from sqlalchemy.dialects.sqlite import aiosqlite as _d
print(psutil.Process().memory_info().rss)
"""


def _rss_of_imports() -> float:
    """RSS (MB) of a process that only imports what the fleet's process imports."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _IMPORTS_ONLY], capture_output=True, text=True, check=True
    )
    return round(int(out.stdout.split()[-1]) / 2**20, 1)


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    if len(values) < 20:
        return round(max(values), 1)
    return round(statistics.quantiles(values, n=20)[18], 1)


class _RSS:
    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- fleet run


async def _run_fleet(
    args: argparse.Namespace, urls: dict[str, str], world: _World
) -> dict[str, Any]:
    import dataclasses

    from sqlalchemy import select

    from piyasa.config import load_settings
    from piyasa.crypto import fingerprint
    from piyasa.db import migrate
    from piyasa.db.models import Bot, Chat, Message
    from piyasa.db.runtime_models import BotChat, OutboxItem
    from piyasa.runtime.fleet import Fleet
    from piyasa.runtime.llm import OpenAIProvider
    from piyasa.services import Services

    tmp = tempfile.TemporaryDirectory(prefix="piyasa-bench-")
    db_url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    settings = load_settings({"PIYASA_DATA_DIR": tmp.name, "PIYASA_DATABASE_URL": db_url})
    settings = dataclasses.replace(
        settings, telegram_api_url=urls["telegram"], redis_url=args.redis_url
    )
    services = Services.build(settings)
    try:
        await migrate.upgrade(services.engine)
        members = _membership(args.bots, args.chats, args.chats_per_bot)
        async with services.sessions() as session, session.begin():
            bots = []
            for i in range(args.bots):
                tok = _token(i)
                bots.append(
                    Bot(
                        telegram_id=int(tok.split(":")[0]),
                        token_encrypted=services.box.encrypt(tok),
                        token_fingerprint=fingerprint(tok),
                        username=f"bench{i}_bot",
                        persona={"name": f"Bench{i}", "style": "teknik", "language": "tr"},
                        hourly_limit=1_000_000,
                    )
                )
            session.add_all(bots)
            chats = [
                Chat(
                    telegram_id=_chat_id(j),
                    title=f"Bench {j}",
                    topics=["bist", "fx", "crypto", "macro"],
                )
                for j in range(args.chats)
            ]
            session.add_all(chats)
            await session.flush()
            for j, idxs in members.items():
                for i in idxs:
                    session.add(BotChat(bot_id=bots[i].id, chat_id=chats[j].id))
        if args.redis_url:
            from piyasa.runtime.buckets import RedisLimiter

            lim = RedisLimiter.from_url(args.redis_url, namespace="bench:gate:")
            await lim.clear()
            await lim.close()
        provider = OpenAIProvider("sk-bench", urls["llm"], "gpt-4o-mini", timeout=30)
        fleet = Fleet(
            services,
            receive="off",
            workers=args.workers,
            provider=provider,
            settings_overrides={
                "max_msgs_per_min": 10_000_000,
                "global_max_per_s": 100_000,
                "footer_enabled": False,
            },
            planner_tick_s=0.05,
            limiter_namespace="bench:gate:",
        )
        rss = _RSS()
        phases = {"seeded": round(rss.peak / 2**20, 1)}
        sampler = asyncio.create_task(rss.run())
        t0 = time.time()
        await fleet.start()
        start_s = time.time() - t0
        phases["started"] = round(rss.proc.memory_info().rss / 2**20, 1)
        await asyncio.sleep(args.seconds - start_s)
        await fleet.stop()
        sampler.cancel()
        stats = await world.stats()
        async with services.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        OutboxItem.state,
                        OutboxItem.decided_at,
                        OutboxItem.sent_at,
                        OutboxItem.sending_at,
                        OutboxItem.tg_chat_id,
                        Message.latency_ms,
                        Message.text,
                        Bot.telegram_id,
                    )
                    .join(Message, Message.id == OutboxItem.message_id)
                    .join(Bot, Bot.id == OutboxItem.bot_id)
                )
            ).all()
    finally:
        await services.close()
        tmp.cleanup()
    figures = _figures(args, t0, stats, rows, rss.peak)
    firsts = [t for _b, _c, ok, _e, t in stats["calls"] if ok]
    figures["fleet_start_s"] = round(start_s, 3)
    figures["rss_mb_phases"] = {**phases, "peak": figures["rss_mb"]}
    figures["first_send_s"] = round(min(firsts) - t0, 3) if firsts else None
    return figures


def _figures(
    args: argparse.Namespace, t0: float, stats: dict[str, Any], rows: list[Any], rss: int
) -> dict[str, Any]:
    end = t0 + args.seconds
    delivered = sum(1 for _b, _c, ok, _e, t in stats["calls"] if ok and t0 <= t < end)
    count_429 = sum(1 for *_x, code, _t in stats["calls"] if code == 429)
    in_sandbox = Counter((c, b, text) for c, b, text in stats["sent"])
    db_sent = Counter((r.tg_chat_id, r.telegram_id, r.text) for r in rows if r.state == "sent")
    duplicates = sum(max(0, n - db_sent.get(k, 0)) for k, n in in_sandbox.items())
    missing = sum(max(0, n - in_sandbox.get(k, 0)) for k, n in db_sent.items())
    pending = sum(1 for r in rows if r.state in ("queued", "claimed", "sending"))
    failed = sum(1 for r in rows if r.state == "failed")
    lat = [
        (r.sent_at - r.decided_at).total_seconds() * 1000
        for r in rows
        if r.state == "sent" and r.sent_at
    ]
    allowed = _allowed(args)
    sent_rows = [r for r in rows if r.state == "sent" and r.sent_at and r.sending_at]
    gen = [float(r.latency_ms) for r in sent_rows if r.latency_ms is not None]
    # where the time between decision and send goes: generation, then waiting for the gate
    gate_wait = [
        (r.sending_at - r.decided_at).total_seconds() * 1000 - (r.latency_ms or 0)
        for r in sent_rows
    ]
    return {
        "delivered": delivered,
        "allowed_max": allowed,
        "efficiency": round(delivered / allowed, 4) if allowed else None,
        "count_429": count_429,
        "lost": failed + missing,
        "duplicates": duplicates,
        "p95_decision_to_send_ms": _p95(lat),
        "p95_generation_ms": _p95(gen),
        "p95_decided_to_gate_ms_minus_generation": _p95(gate_wait),
        "rss_mb": round(rss / 2**20, 1),
        "decided": len(rows),
        "still_queued": pending,
    }


# --------------------------------------------------------------------------- naive baseline


async def _run_naive(
    args: argparse.Namespace, urls: dict[str, str], world: _World
) -> dict[str, Any]:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramAPIError

    from piyasa.runtime.llm import LLMError, OpenAIProvider, build_prompt

    provider = OpenAIProvider("sk-bench", urls["llm"], "gpt-4o-mini", timeout=30)
    session = AiohttpSession(api=TelegramAPIServer.from_base(urls["telegram"]), limit=256)
    members = _membership(args.bots, args.chats, args.chats_per_bot)
    pairs = [(i, j) for j, idxs in members.items() for i in idxs]
    bots = {i: Bot(_token(i), session=session) for i in range(args.bots)}
    sem = asyncio.Semaphore(args.workers)
    decided = delivered = dropped = 0
    lat: list[float] = []
    rss = _RSS()
    stop_at = time.monotonic() + args.seconds

    async def pair_loop(i: int, j: int) -> None:
        nonlocal decided, delivered, dropped
        persona = {"name": f"Bench{i}", "style": "teknik", "language": "tr"}
        while time.monotonic() < stop_at:
            async with sem:
                try:
                    text = (await provider.complete(build_prompt(persona, "bist", [])))[0]
                except LLMError:
                    continue
            decided += 1
            t = time.monotonic()
            try:
                await bots[i].send_message(chat_id=_chat_id(j), text=text or "…")
                delivered += 1
                lat.append((time.monotonic() - t) * 1000)
            except TelegramAPIError:
                dropped += 1  # the old system dropped what the rate limit refused

    sampler = asyncio.create_task(rss.run())
    t0 = time.time()
    tasks = [asyncio.create_task(pair_loop(i, j)) for i, j in pairs]
    await asyncio.sleep(args.seconds)
    await asyncio.wait(tasks, timeout=5)
    for t in tasks:
        t.cancel()
    sampler.cancel()
    await session.close()
    await provider.close()
    stats = await world.stats()
    end = t0 + args.seconds
    allowed = _allowed(args)
    ok_in_window = sum(1 for _b, _c, ok, _e, t in stats["calls"] if ok and t0 <= t < end)
    return {
        "delivered": ok_in_window,
        "allowed_max": allowed,
        "efficiency": round(ok_in_window / allowed, 4) if allowed else None,
        "count_429": sum(1 for *_x, code, _t in stats["calls"] if code == 429),
        "lost": dropped,
        "duplicates": 0,
        "p95_decision_to_send_ms": _p95(lat),
        "rss_mb": round(rss.peak / 2**20, 1),
        "decided": decided,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    latency = tuple(float(x) for x in args.latency.split(","))
    world = _World(args, latency)  # type: ignore[arg-type]
    try:
        urls = await world.ready()
        result = await _run_fleet(args, urls, world)
    finally:
        world.close()
    result = {
        "benchmark": "runtime",
        "bots": args.bots,
        "chats": args.chats,
        "chats_per_bot": args.chats_per_bot,
        "seconds": args.seconds,
        "limiter": "redis" if args.redis_url else "memory",
        **result,
        "rss_mb_baseline_imports": None if args.no_import_baseline else _rss_of_imports(),
    }
    if not args.no_baseline:
        world = _World(args, latency)  # type: ignore[arg-type]
        try:
            urls = await world.ready()
            result["baseline"] = await _run_naive(args, urls, world)
        finally:
            world.close()
    return result
