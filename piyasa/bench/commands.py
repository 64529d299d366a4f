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
import statistics
from typing import Any

from piyasa.bench._common import drive, instrument, pct, throwaway_services

DESCRIPTION = "chat-ops pipeline latency for /help and /whoami vs. a bare aiogram echo"
TARGET_P95_DELTA_MS = 2.0
TOKEN = "7200000000:BENCH-admin-bot-token-for-commands-0"
USER_ID = 920001


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--updates", type=int, default=2000, help="updates per bot")
    p.add_argument("--warmup", type=int, default=200, help="untimed updates first")
    p.add_argument("--concurrency", type=int, default=1, help="updates in flight at once")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")


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
    instrument(bot, dp, samples)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=True))
    try:
        await sb.wait_for_poller(bot_id)
        await drive(sb, USER_ID, bot_id, warm, conc)
        samples.clear()
        seconds = await drive(sb, USER_ID, bot_id, texts, conc)
    finally:
        await dp.stop_polling()
        await task
    return _figures(samples, len(texts), seconds)


async def _pipeline(
    sb: Any, url: str, bot_id: int, texts: list[str], warm: list[str], conc: int, db_url: str
) -> dict:
    from chatops.telegram.surface import TelegramSurface
    from piyasa.admin.users import add_user
    from piyasa.config import Secret

    async with throwaway_services(
        db_url,
        "piyasa-bench-",
        telegram_api_url=url,
        admin_bot_token=Secret(TOKEN),
        lang="en",
    ) as services:
        await add_user(services, "bench_admin", "admin", telegram_id=USER_ID)
        surface = TelegramSurface(services)
        samples: list[float] = []
        instrument(surface.bot, surface.dp, samples)
        await surface.start(polling=True)
        try:
            await sb.wait_for_poller(bot_id)
            await drive(sb, USER_ID, bot_id, warm, conc)
            samples.clear()
            seconds = await drive(sb, USER_ID, bot_id, texts, conc)
        finally:
            await surface.stop()
    return _figures(samples, len(texts), seconds) | {"database": services.settings.database_kind}


def _figures(samples: list[float], n: int, seconds: float) -> dict:
    return {
        "updates": n,
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(pct(samples, 0.95) or 0, 3),
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
