"""A poller handed to another instance opens no new long poll, even when it is told to
finish while its heartbeat write waits on a busy database (seen with 600 bots on one
instance: the heartbeat queued behind the pool, the poller then opened one more 20 s poll,
the graceful hand-over ran out of time and that poll was cut: Telegram answered it 409 when
the next owner polled). The heartbeat is stalled for real: another
connection holds the bot's ``fleet_pollers`` row lock (PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot as AioBot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import text

from piyasa.runtime.intake import Poller, PollerRegistry
from piyasa.services import Services
from tests.runtime.helpers import seed
from tests.waiting import finishes, until


async def _nothing(_update: object) -> None:  # no update arrives in this test
    return None


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # a row lock: PostgreSQL's
async def test_a_poller_told_to_finish_during_its_heartbeat_opens_no_new_poll(
    services: Services, sandbox
) -> None:
    bots, _ = await seed(services, sandbox, bots=1, chats=1)
    bot_row = bots[0]
    registry = PollerRegistry(services.sessions, "postgresql")
    await registry.beat(bot_row.id, "an-earlier-owner")  # the row the lock will hold
    token = services.box.decrypt(bot_row.token_encrypted)
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url))
    client = AioBot(token, session=session)
    errors: list[str] = []
    poller = Poller(
        bot_row.id,
        bot_row.username,
        lambda: client,
        _nothing,  # type: ignore[arg-type]
        registry,
        "this-instance",
        on_error=lambda _w, e: errors.append(e),
        timeout=1,
    )
    async with services.engine.connect() as locker:
        tx = await locker.begin()
        await locker.execute(
            text("SELECT 1 FROM fleet_pollers WHERE bot_id = :b FOR UPDATE"), {"b": bot_row.id}
        )
        task = asyncio.create_task(poller.run())

        async def heartbeat_waits() -> bool:
            async with services.engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%fleet_pollers%'"
                    )
                )
                return bool(rows.scalar_one())

        await until(heartbeat_waits, "the poller's heartbeat to wait on the row lock")
        finishing = asyncio.create_task(poller.finish())
        await asyncio.sleep(0)  # finish() has set the flag
        assert poller.finishing
        await tx.rollback()
    await finishes(finishing, "the poller to finish without a new long poll")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await session.close()
    assert sandbox.calls("getUpdates", bot_row.telegram_id) == []
    assert errors == []
