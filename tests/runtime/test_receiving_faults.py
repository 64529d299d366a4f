"""Receiving when parts fail: a database fault while a human writes, a leftover webhook, a
second poller on the token. Nothing a human wrote is lost; each 409 is told for what it is.

The database faults are real: on SQLite another connection holds the write lock (the
fleet's writes get "database is locked"); on PostgreSQL another connection holds an
ACCESS EXCLUSIVE lock on ``messages`` and the test kills the fleet's waiting backend with
``pg_terminate_backend``, like a failover would.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, select, text

from piyasa.db.models import Message
from piyasa.db.runtime_models import OutboxItem, ReplyRequest, WorkerEvent
from piyasa.runtime.fleet import Fleet
from piyasa.services import Services
from tests.runtime.helpers import namespace, seed, until, with_sandbox
from tests.waiting import HANG_S as CEILING_S  # only catches hangs

HUMAN = 5_000_002


def polling_fleet(services: Services, sandbox: Any) -> Fleet:
    with_sandbox(services, sandbox.base_url)
    return Fleet(
        services,
        receive="polling",
        settings_overrides={"max_msgs_per_min": 0},  # no chatter: only answers
        limiter_namespace=namespace(),
    )


@contextlib.asynccontextmanager
async def database_fault(services: Services) -> AsyncIterator[Any]:
    """Hold the database away from the fleet's writes until the block exits."""
    if services.engine.dialect.name == "sqlite":
        path = services.engine.url.database

        def lock() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            return conn

        conn = await asyncio.to_thread(lock)
        try:
            yield None
        finally:
            await asyncio.to_thread(conn.rollback)
            await asyncio.to_thread(conn.close)
        return
    async with services.engine.connect() as conn:
        await conn.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
        me = await conn.scalar(text("SELECT pg_backend_pid()"))

        async def kill_waiting() -> int:
            """Terminate the fleet's backends stuck behind our lock; how many."""
            pids = (
                await conn.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE :me = ANY(pg_blocking_pids(pid))"),
                    {"me": me},
                )
            ).all()
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            return len(pids)

        try:
            yield kill_waiting
        finally:
            await conn.rollback()


def store_failures(fleet: Fleet) -> list[dict[str, Any]]:
    return [
        e
        for e in fleet.recent_errors
        if e["where"].startswith("poll bot=") and "storing update" in e["error"]
    ]


async def test_a_database_fault_while_a_human_writes_loses_nothing(services, sandbox) -> None:
    bots, chats = await seed(services, sandbox, bots=2, chats=1)
    chat = chats[0].telegram_id
    sandbox.add_user(HUMAN, "Ayşe", "ayse")
    sandbox.add_member(chat, HUMAN)
    fleet = polling_fleet(services, sandbox)
    await fleet.start()
    try:
        for b in bots:
            await sandbox.wait_for_poller(b.telegram_id)
        async with database_fault(services) as kill_waiting:
            question = await sandbox.send_user_message(HUMAN, chat, "@fleet1_bot dolar ne olur?")
            if kill_waiting is not None:  # PostgreSQL: the connection dies under the insert
                await until(kill_waiting, "the fleet's insert waiting on the lock")
            await until(lambda: store_failures(fleet), "a failed store reported")
            assert fleet.ingest.stored == 0
        # The database is back: the update comes again, is stored once and answered once.
        reply = await sandbox.wait_for_message(
            lambda m: (m.get("reply_to_message") or {}).get("message_id") == question["message_id"],
            chat_id=chat,
            timeout=CEILING_S,
        )
        assert reply["from"]["id"] == bots[1].telegram_id
        await until(lambda: not fleet.planner.replies, "no reply left to decide")
    finally:
        await fleet.stop()
    async with services.sessions() as session:
        humans = (
            await session.scalars(select(Message).where(Message.author_kind == "human"))
        ).all()
        requests = (await session.scalars(select(ReplyRequest))).all()
        answers = await session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.reply_to_tg_message_id == question["message_id"])
        )
    assert [(m.telegram_message_id, m.text) for m in humans] == [
        (question["message_id"], "@fleet1_bot dolar ne olur?")
    ]
    assert len(requests) == 1 and requests[0].answered_at is not None
    assert answers == 1
    replies = [
        m
        for m in sandbox.sent(chat_id=chat)
        if (m.get("reply_to_message") or {}).get("message_id") == question["message_id"]
    ]
    assert len(replies) == 1


async def test_a_leftover_webhook_is_removed_in_polling_mode_and_nothing_pending_is_lost(
    services, sandbox
) -> None:
    bots, chats = await seed(services, sandbox, bots=1, chats=1)
    chat = chats[0].telegram_id
    sandbox.add_user(HUMAN, "Ayşe", "ayse")
    sandbox.add_member(chat, HUMAN)
    token = sandbox.world.bots[bots[0].telegram_id].token
    api = TelegramAPIServer.from_base(sandbox.base_url)
    other = Bot(token, session=AiohttpSession(api=api))
    try:  # left by webhook mode, or by another deployment of the same token
        await other.set_webhook("http://127.0.0.1:9/telegram/webhook/1")  # nobody listens
    finally:
        await other.session.close()
    pending = await sandbox.send_user_message(HUMAN, chat, "webhook açıkken yazdım")
    fleet = polling_fleet(services, sandbox)
    await fleet.start()
    try:
        await until(lambda: fleet.ingest.stored == 1, "the pending message stored")
        poller = fleet.pollers[bots[0].id]
        assert poller.conflicts == 0 and poller.last_conflict is None  # no "another process"
        assert poller.webhooks_removed == 1
        assert sandbox.world.bots[bots[0].telegram_id].webhook is None
        calls = sandbox.calls("getUpdates", bot_id=bots[0].telegram_id)
        assert any(
            c["error_code"] == 409
            and c["description"]
            == "Conflict: can't use getUpdates method while webhook is active; use "
            "deleteWebhook to delete the webhook first"
            for c in calls
        )
        deleted = sandbox.calls("deleteWebhook", bot_id=bots[0].telegram_id)
        assert len(deleted) == 1 and deleted[0]["ok"]
        assert str(deleted[0]["params"].get("drop_pending_updates", "false")).lower() in (
            "false",
            "0",
        )

        async def event() -> list[WorkerEvent]:
            async with services.sessions() as session:
                return list(
                    (
                        await session.scalars(
                            select(WorkerEvent).where(WorkerEvent.kind == "webhook_removed")
                        )
                    ).all()
                )

        rows = await until(event, "the event row")
        assert "@fleet0_bot still had a webhook set" in (rows[0].detail or "")
    finally:
        await fleet.stop()
    async with services.sessions() as session:
        texts = (
            await session.scalars(select(Message.text).where(Message.author_kind == "human"))
        ).all()
    assert texts == [pending["text"]]
