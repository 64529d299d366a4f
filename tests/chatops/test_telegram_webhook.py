"""Webhook mode: the admin bot registers /telegram/webhook with a secret token, Telegram
delivers updates there, and a request without the right secret changes nothing."""

from __future__ import annotations

import dataclasses

import aiohttp

from chatops.startup import Surfaces
from chatops.telegram.surface import WEBHOOK_PATH
from chatops.web.server import make_web_app, start_web
from tests.chatops.harness import (
    ADMIN_BOT_TOKEN,
    ADMIN_GROUP,
    PEOPLE,
    audit_count,
    next_audit,
    with_admin_settings,
)
from tests.waiting import PatientSandbox


async def test_webhook_mode_answers_and_refuses_a_wrong_secret(services, people) -> None:  # type: ignore[no-untyped-def]
    sb = PatientSandbox(enforce_limits=False)
    bot = sb.add_bot(ADMIN_BOT_TOKEN, "piyasa_test_admin_bot", "Piyasa Admin")
    uid = PEOPLE["viewer"][0]
    sb.add_user(uid, "Viewer Person", "viewer_person", "en")
    sb.add_group(ADMIN_GROUP, "Admins", members=[bot.id, uid])
    api = await sb.start("127.0.0.1", 0)
    with_admin_settings(services, api)
    web_app = make_web_app(services)
    surfaces = Surfaces(services, web_app)
    runner, port = await start_web(web_app, "127.0.0.1", 0)
    public = f"http://127.0.0.1:{port}"
    services.settings = dataclasses.replace(
        services.settings,
        extra={**services.settings.extra, "PIYASA_TELEGRAM_WEBHOOK_URL": public},
    )
    try:
        await surfaces.start()
        assert surfaces.telegram is not None
        secret = surfaces.telegram.webhook_secret
        registered = sb.calls("setWebhook")[-1]["params"]
        assert registered["url"] == public + WEBHOOK_PATH
        assert registered["secret_token"] == secret
        assert not sb.calls("getUpdates")  # no polling in webhook mode

        mark, before = sb.mark(), await audit_count(services)
        await sb.send_private(uid, bot.id, "/whoami")
        reply = await sb.wait_for_message(chat_id=uid, bot_id=bot.id, after=mark)
        assert "user_viewer" in reply["text"]
        await next_audit(services, before, action="whoami")  # its row lands after the reply

        forged = {
            "update_id": 999_999,
            "message": {
                "message_id": 1,
                "date": 1,
                "chat": {"id": uid, "type": "private"},
                "from": {"id": uid, "is_bot": False, "first_name": "Viewer"},
                "text": "/whoami",
            },
        }
        n = await audit_count(services)
        sent_before = len(sb.calls("sendMessage"))
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(public + WEBHOOK_PATH, json=forged, headers=headers) as r:
                    assert r.status == 401
        assert len(sb.calls("sendMessage")) == sent_before
        assert await audit_count(services) == n
    finally:
        await surfaces.stop()
        await runner.cleanup()
        await sb.stop()
