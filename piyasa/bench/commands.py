"""Commands: /help and /whoami through the whole chat-ops pipeline vs. a bare aiogram echo.

Both bots run in this process with real aiogram long polling against an in-process sandbox
Telegram (limits off), fed the same stream of private-chat updates by a linked admin. The
server-side latency is measured inside the bot: from the moment the dispatcher receives
the update (outermost update middleware) to the moment the reply request is handed to
the HTTP session (a request middleware), so the sandbox and polling delays are excluded.
Figures: p50/p95 ms and updates/s for each, and the p95 difference (target <= 2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import dataclasses
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DESCRIPTION = "chat-ops pipeline latency for /help and /whoami vs. a bare aiogram echo"
TARGET_P95_DELTA_MS = 2.0
TOKEN = "7200000000:BENCH-admin-bot-token-for-commands-0"
USER_ID = 920001

_received: contextvars.ContextVar[float | None] = contextvars.ContextVar("received", default=None)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--updates", type=int, default=2000, help="updates per bot")
    p.add_argument("--warmup", type=int, default=200, help="untimed updates first")
    p.add_argument("--concurrency", type=int, default=1, help="updates in flight at once")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _instrument(bot: Any, dp: Any, samples: list[float]) -> None:
    from aiogram.client.session.middlewares.base import BaseRequestMiddleware
    from aiogram.methods import EditMessageText, SendMessage

    class Stamp:
        async def __call__(self, handler: Any, event: Any, data: dict[str, Any]) -> Any:
            _received.set(time.perf_counter())
            return await handler(event, data)

    class Measure(BaseRequestMiddleware):
        async def __call__(self, make_request: Any, b: Any, method: Any) -> Any:
            t0 = _received.get()
            if t0 is not None and isinstance(method, SendMessage | EditMessageText):
                samples.append((time.perf_counter() - t0) * 1000)
            return await make_request(b, method)

    dp.update.outer_middleware(Stamp())
    bot.session.middleware(Measure())


async def _drive(sb: Any, bot_id: int, texts: list[str], concurrency: int) -> float:
    """Send ``texts`` keeping ``concurrency`` unanswered; returns seconds for all replies."""
    log = sb.world.sent_log  # only this bot sends: its length counts the replies, O(1)
    start = time.perf_counter()
    sent = 0
    base = len(log)
    while sent < len(texts):
        while sent < len(texts) and sent - (len(log) - base) < concurrency:
            await sb.send_private(USER_ID, bot_id, texts[sent])
            sent += 1
        waiter = sb.world.notifier.waiter()
        if len(log) - base < sent:
            await asyncio.wait_for(waiter.wait(), 10)
    while len(log) - base < len(texts):
        waiter = sb.world.notifier.waiter()
        await asyncio.wait_for(waiter.wait(), 10)
    return time.perf_counter() - start


async def _echo(
    sb: Any, url: str, bot_id: int, texts: list[str], warm: list[str], conc: int
) -> dict:
    from aiogram import Bot, Dispatcher, F
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    dp = Dispatcher()

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    samples: list[float] = []
    _instrument(bot, dp, samples)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=True))
    try:
        await sb.wait_for_poller(bot_id)
        await _drive(sb, bot_id, warm, conc)
        samples.clear()
        seconds = await _drive(sb, bot_id, texts, conc)
    finally:
        await dp.stop_polling()
        await task
    return _figures(samples, len(texts), seconds)


async def _pipeline(
    sb: Any, url: str, bot_id: int, texts: list[str], warm: list[str], conc: int, db_url: str
) -> dict:
    from chatops.telegram.surface import TelegramSurface
    from piyasa.admin.users import add_user
    from piyasa.config import Secret, load_settings
    from piyasa.db import all_models  # noqa: F401
    from piyasa.db.base import Base
    from piyasa.services import Services

    tmp = Path(tempfile.mkdtemp(prefix="piyasa-bench-"))
    schema = ""
    if db_url.startswith("postgres"):  # never touch the given database's own tables
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        await _pg_schema(db_url, f'CREATE SCHEMA "{schema}"')
        db_url += ("&" if "?" in db_url else "?") + f"search_path={schema}"
    settings = load_settings(
        {"PIYASA_DATA_DIR": str(tmp), **({"PIYASA_DATABASE_URL": db_url} if db_url else {})}
    )
    settings = dataclasses.replace(
        settings, telegram_api_url=url, admin_bot_token=Secret(TOKEN), lang="en"
    )
    services = Services.build(settings)
    async with services.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await add_user(services, "bench_admin", "admin", telegram_id=USER_ID)
    surface = TelegramSurface(services)
    samples: list[float] = []
    _instrument(surface.bot, surface.dp, samples)
    await surface.start(polling=True)
    try:
        await sb.wait_for_poller(bot_id)
        await _drive(sb, bot_id, warm, conc)
        samples.clear()
        seconds = await _drive(sb, bot_id, texts, conc)
    finally:
        await surface.stop()
        await services.close()
        if schema:
            await _pg_schema(db_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return _figures(samples, len(texts), seconds) | {"database": services.settings.database_kind}


async def _pg_schema(db_url: str, statement: str) -> None:
    from sqlalchemy import text

    from piyasa.config import _db_url
    from piyasa.db.engine import create_engine

    engine = create_engine(_db_url("--database-url", db_url.split("?")[0]))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _figures(samples: list[float], n: int, seconds: float) -> dict:
    return {
        "updates": n,
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(_pct(samples, 0.95), 3),
        "updates_per_s": round(n / seconds, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from piyasa.sandbox.telegram import TelegramSandbox

    logging.getLogger("aiogram").setLevel(logging.WARNING)
    sb = TelegramSandbox(enforce_limits=False)
    bot = sb.add_bot(TOKEN, "bench_admin_bot", "Bench Admin")
    sb.add_user(USER_ID, "Bench", "bench_user", "en")
    url = await sb.start("127.0.0.1", 0)
    texts = ["/help" if i % 2 == 0 else "/whoami" for i in range(args.updates)]
    warm = texts[: args.warmup]
    try:
        echo = await _echo(sb, url, bot.id, texts, warm, args.concurrency)
        pipe = await _pipeline(sb, url, bot.id, texts, warm, args.concurrency, args.database_url)
    finally:
        await sb.stop()
    delta = round(pipe["p95_ms"] - echo["p95_ms"], 3)
    return {
        "pipeline": pipe,
        "echo_baseline": echo,
        "p95_delta_ms": delta,
        "target_p95_delta_ms": TARGET_P95_DELTA_MS,
        "within_target": delta <= TARGET_P95_DELTA_MS,
    }
