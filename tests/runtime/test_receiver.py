"""Receiving: humans stored once, replies first end to end, 409 conflicts, webhook secrets."""

from __future__ import annotations

import aiohttp
from aiogram.types import Update
from aiohttp import web
from sqlalchemy import func, select

from piyasa.cache import MemoryCache
from piyasa.db.models import Message
from piyasa.db.runtime_models import OutboxItem, ReplyRequest
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.receiver import WEBHOOK_SECRET_HEADER, Ingest, webhook_secret
from piyasa.runtime.roster import load_roster
from piyasa.services import Services
from tests.runtime.helpers import namespace, seed, until, with_sandbox

HUMAN = 5_000_001


def fleet_for(services, sandbox, receive="polling", **overrides) -> Fleet:
    with_sandbox(services, sandbox.base_url)
    return Fleet(
        services,
        receive=receive,
        settings_overrides={"max_msgs_per_min": 0, **overrides},
        limiter_namespace=namespace(),
    )


def human_in(sandbox, chat_id: int) -> None:
    sandbox.add_user(HUMAN, "Ayşe", "ayse")
    sandbox.add_member(chat_id, HUMAN)


async def human_rows(services) -> list[Message]:
    async with services.sessions() as session:
        return list(
            (await session.scalars(select(Message).where(Message.author_kind == "human"))).all()
        )


async def test_a_human_message_seen_by_several_fleet_bots_is_stored_once(services, sandbox):
    bots, chats = await seed(services, sandbox, bots=3, chats=1)
    chat = chats[0].telegram_id
    human_in(sandbox, chat)
    fleet = fleet_for(services, sandbox)
    await fleet.start()
    try:
        for b in bots:
            await sandbox.wait_for_poller(b.telegram_id)
        msg = await sandbox.send_user_message(HUMAN, chat, "bugün borsa nasıl?")
        await until(lambda: fleet.ingest.stored + fleet.ingest.duplicates >= 3, "3 updates")
        # Another process (its own memo) sees the same update: the database refuses it.
        other = Ingest(
            services.sessions,
            services.engine.dialect.name,
            lambda: fleet.roster,
            lambda *_: None,
            lambda _r: None,
        )
        update = Update.model_validate({"update_id": 1, "message": msg})
        stored_again = await other.handle(update)
    finally:
        await fleet.stop()
    rows = await human_rows(services)
    assert len(rows) == 1, [(r.chat_id, r.telegram_message_id, r.text, r.created_at) for r in rows]
    assert stored_again is False
    assert rows[0].telegram_message_id == msg["message_id"]
    assert rows[0].text == "bugün borsa nasıl?" and rows[0].human_name == "Ayşe"
    assert fleet.ingest.stored == 1 and fleet.ingest.duplicates == 2


async def test_a_mention_is_answered_before_new_chatter_end_to_end(services, sandbox):
    bots, chats = await seed(services, sandbox, bots=3, chats=1)
    chat = chats[0].telegram_id
    human_in(sandbox, chat)
    fleet = fleet_for(services, sandbox, max_msgs_per_min=600)
    await fleet.start()
    try:
        for b in bots:
            await sandbox.wait_for_poller(b.telegram_id)
        await until(lambda: len(sandbox.sent()) >= 6, "chatter going")
        question = await sandbox.send_user_message(HUMAN, chat, "@fleet1_bot dolar ne olur?")
        reply = await sandbox.wait_for_message(
            lambda m: (m.get("reply_to_message") or {}).get("message_id") == question["message_id"],
            chat_id=chat,
        )
        assert reply["from"]["id"] == bots[1].telegram_id  # the addressed bot answers
    finally:
        await fleet.stop()
    async with services.sessions() as session:
        request = (await session.scalars(select(ReplyRequest))).one()
        rows = (
            await session.execute(
                select(OutboxItem.decided_at, OutboxItem.reply_to_tg_message_id).order_by(
                    OutboxItem.decided_at
                )
            )
        ).all()
    assert request.answered_at is not None and request.target_bot_id == bots[1].id
    after = [r for r in rows if r.decided_at >= request.created_at]
    # The first decision after the question is the answer: no chatter jumped ahead of it.
    assert after and after[0].reply_to_tg_message_id == question["message_id"]


async def test_two_pollers_on_one_token_name_the_other_instance(services, sandbox):
    """Two instances on one database, each with its own in-process cache (no Redis)."""
    bots, _chats = await seed(services, sandbox, bots=1, chats=1)
    fleet = fleet_for(services, sandbox)
    other_services = Services(
        services.settings, services.engine, services.sessions, MemoryCache(), services.box
    )
    other = fleet_for(other_services, sandbox)
    await fleet.start()
    try:
        await sandbox.wait_for_poller(bots[0].telegram_id)
        await other.start()
        ours, theirs = fleet.pollers[bots[0].id], other.pollers[bots[0].id]
        await until(lambda: ours.conflicts >= 1 and theirs.conflicts >= 1, "both pollers see a 409")
        text = fleet.snapshot()["pollers"][str(bots[0].id)]["last_conflict"]
        assert "409" in text and "@fleet0_bot" in text
        assert f"instance {other.instance} is polling it too" in text
        assert "Stop the other instance" in text
        assert f"instance {fleet.instance} is polling it too" in theirs.last_conflict
        assert any(e["error"] == text for e in fleet.snapshot()["recent_errors"])
        calls = sandbox.calls("getUpdates", bot_id=bots[0].telegram_id)
        assert any(
            c["error_code"] == 409
            and c["description"]
            == "Conflict: terminated by other getUpdates request; "
            "make sure that only one bot instance is running"
            for c in calls
        )
    finally:
        await other.stop()
        await fleet.stop()
    # A poller that is not a Piyasa instance on this database cannot be named.
    lone = fleet.pollers.get(bots[0].id) or ours
    assert "another process (not a Piyasa instance on this database)" in lone.conflict_message(None)


async def test_webhook_mode_checks_the_secret_token(services, sandbox):
    bots, chats = await seed(services, sandbox, bots=2, chats=1)
    chat = chats[0].telegram_id
    human_in(sandbox, chat)
    holder: dict[str, Fleet] = {}

    async def route(request: web.Request) -> web.Response:
        return await holder["fleet"].webhook_handler(request)

    app = web.Application()
    app.router.add_post("/telegram/webhook/{bot_id}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    fleet = holder["fleet"] = fleet_for(
        services, sandbox, receive="webhook", fleet_webhook_url=base
    )
    await fleet.start()
    try:
        hooks = [sandbox.world.bots[b.telegram_id].webhook for b in bots]
        assert all(h is not None and h.secret_token for h in hooks)
        assert hooks[0].secret_token != hooks[1].secret_token  # one secret per bot
        await sandbox.send_user_message(HUMAN, chat, "selam")  # delivered with the secret
        await until(lambda: fleet.ingest.stored == 1, "the update stored")
        roster = await load_roster(services.sessions)
        update = {
            "update_id": 99,
            "message": {
                "message_id": 777,
                "date": 1,
                "chat": {"id": chat, "type": "supergroup", "title": "Group 0"},
                "from": {"id": HUMAN, "is_bot": False, "first_name": "Mallory"},
                "text": "forged",
            },
        }
        url = f"{base}/telegram/webhook/{bots[0].id}"
        good = webhook_secret(services.settings.secret_key.reveal(), bots[0].id)
        other = webhook_secret(services.settings.secret_key.reveal(), bots[1].id)
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {WEBHOOK_SECRET_HEADER: "wrong"}, {WEBHOOK_SECRET_HEADER: other}):
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status in (401, 403)
            assert fleet.ingest.stored == 1
            async with http.post(
                url, data=b"not json", headers={WEBHOOK_SECRET_HEADER: good}
            ) as resp:
                assert resp.status == 400
            async with http.post(url, json=update, headers={WEBHOOK_SECRET_HEADER: good}) as resp:
                assert resp.status == 200
        assert roster.bots and fleet.ingest.stored == 2
    finally:
        await fleet.stop()
        await runner.cleanup()
    texts = sorted(m.text for m in await human_rows(services))
    assert texts == ["forged", "selam"]  # the refused requests stored nothing
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 2
