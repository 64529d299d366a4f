"""The Telegram /setup wizard end to end: a real `piyasa up` (in this process) against the
sandbox Telegram and the local OpenAI-compatible server, driven like a person would."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from piyasa.admin import audit
from piyasa.db.models import Bot, Chat, Setting, User
from piyasa.logs import RING
from tests.chatops.harness import audit_count, next_audit
from tests.setup.conftest import ADMIN_GROUP, World
from tests.setup.helpers import (
    FLEET_TOKEN,
    GROUP,
    LLM_KEY,
    NEWCOMER,
    PASSWORD,
    TURKISH,
    UNKNOWN_TOKEN,
    buttons,
)

pytestmark = pytest.mark.e2e


def secrets_nowhere(world: World, secrets: list[str], log_text: str) -> list[str]:
    """Where any of ``secrets`` appears in plain text: data dir files, audit rows, logs."""
    found = []
    for path in Path(world.data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            found += [f"{path.name}: {s[:6]}…" for s in secrets if s.encode() in blob]
    found += [f"log: {s[:6]}…" for s in secrets if s in log_text]
    return found


async def audit_text(world: World) -> str:
    rows = await audit.recent(world.services, 1000)
    return "\n".join(json.dumps([r.action, r.params, r.detail, r.target]) for r in rows)


async def test_newcomer_walks_the_whole_wizard_and_the_fleet_speaks(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sb = world.box.sb
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)

    reply = await me.say("/setup")
    assert "piyasa setup" in reply["text"] and str(NEWCOMER) in reply["text"]
    reply = await me.say("/setup ABCD-EFGH")
    assert "not valid" in reply["text"]

    # step 1: admin account and MFA
    reply = await me.say(f"/setup {code}")
    assert "Linked: this Telegram account is now admin boss" in reply["text"]
    assert "Step 1/7" in reply["text"] and "Admin account" in reply["text"]
    assert (NEWCOMER, me.sent_ids[-1]) in sb.deleted  # the code was deleted from the chat
    await me.tap("Set password")
    reply = await me.say("short")
    assert "Too short" in reply["text"]
    reply = await me.say(PASSWORD)
    assert "Password saved" in reply["text"] and "Strength:" in reply["text"]
    assert (NEWCOMER, me.sent_ids[-1]) in sb.deleted
    mark = sb.mark()
    await me.tap("Turn on two-factor", expect="6-digit code")
    photo = await sb.wait_for_message(
        lambda m: "photo" in m, chat_id=NEWCOMER, bot_id=world.box.admin_bot_id, after=mark
    )
    assert photo.get("has_protected_content")
    totp_key = photo["caption"].rsplit(" ", 1)[-1]
    reply = await me.say("000000")
    assert "does not match" in reply["text"]
    reply = await me.say(pyotp.TOTP(totp_key).now())
    assert "Two-factor codes work" in reply["text"]
    # the QR's caption held the seed: once enrolled, the message is gone from the chat
    assert (NEWCOMER, photo["message_id"]) in sb.deleted

    # step 2: LLM — other provider, a bad key (Try again), a good key, a model by button
    await me.tap("Next")
    assert "Step 2/7" in me.last["text"]
    await me.tap("Other provider")
    reply = await me.say(world.box.llm_url)
    assert "Base URL saved" in reply["text"]
    reply = await me.say("sk-this-key-is-wrong-000000")
    assert "rejected this API key (401)" in reply["text"]
    assert me.has("Try again")
    reply = await me.tap("Try again")
    assert "rejected this API key (401)" in reply["text"]
    reply = await me.say(LLM_KEY)
    assert "offers 3 models" in reply["text"]
    assert (NEWCOMER, me.sent_ids[-1]) in sb.deleted
    await me.tap("gpt-4o-mini")

    # step 3: fleet bots (getMe 401, then good) and chats (getChat not found, then good)
    assert "Step 3/7" in me.last["text"]
    reply = await me.say(UNKNOWN_TOKEN)
    assert "Telegram rejected this token (401 Unauthorized)" in reply["text"]
    assert "@BotFather" in reply["text"]
    reply = await me.say(FLEET_TOKEN)
    assert "@borsa_sohbet_bot — Borsa Sohbet" in reply["text"]
    reply = await me.say("-1007299999999")
    assert "can see chat -1007299999999" in reply["text"] and "Add a bot" in reply["text"]
    reply = await me.say(str(GROUP))
    assert "Chat added: BIST Sohbet" in reply["text"]
    await me.tap("Next")

    # step 4: database — PostgreSQL that is not there, then keep SQLite
    assert "Step 4/7" in me.last["text"]
    await me.tap("PostgreSQL")
    reply = await me.say("postgresql://nobody:pg-secret-pw-123@127.0.0.1:1/none")
    assert "Cannot reach PostgreSQL at 127.0.0.1:1/none" in reply["text"]
    assert "firewall" in reply["text"] and me.has("Try again")
    await me.tap("Keep current database")

    # step 5: advanced
    assert "Step 5/7" in me.last["text"]
    await me.tap("Weekly")
    assert "Backups: Weekly" in me.last["text"]
    await me.tap("Next")

    # step 6: the admin chat (PIYASA_ADMIN_CHAT_IDS names one here)
    assert "Step 6/7" in me.last["text"] and "Alerts go to: -1007200000900" in me.last["text"]
    await me.tap("Next")

    # step 7: summary and Start system
    text = me.last["text"]
    assert "Step 7/7" in text
    assert "LLM: ✅ gpt-4o-mini" in text and "Fleet bots: ✅ 1" in text
    assert "Chats: ✅ 1" in text and "Two-factor (TOTP): ✅" in text
    mark = sb.mark()
    reply = await me.tap("Start system")
    assert "System started: the fleet runs 1 bots in 1 chats" in reply["text"]
    assert "waiting for a restart" not in reply["text"].lower()

    # hot reload: the running fleet speaks in the group through the new LLM settings
    first = await sb.wait_for_message(chat_id=GROUP, bot_id=world.box.fleet_bot_id, after=mark)
    assert first["text"]
    assert world.box.llm.requests, "the fleet did not use the LLM configured in the wizard"
    async with world.services.sessions() as session:
        user = await session.scalar(select(User).where(User.username == "boss"))
        assert user.totp_enabled and user.password_hash
        assert (await session.scalar(select(Bot.username))) == "borsa_sohbet_bot"
        assert (await session.scalar(select(Chat.telegram_id))) == GROUP
        assert (await session.get(Setting, "backup_schedule")).value == "weekly"
        wizard_rows = (
            await session.scalars(select(Setting.key).where(Setting.key.like("setup.wizard.%")))
        ).all()
        assert not wizard_rows  # finished: the persisted state is gone
    assert (me.messages, me.taps) == (15, 13)

    # no secret typed in the wizard is anywhere in plain text
    secrets = [LLM_KEY, FLEET_TOKEN, PASSWORD, "pg-secret-pw-123", totp_key, code, UNKNOWN_TOKEN]
    log_text = "\n".join(RING.lines) + "\n" + caplog.text
    assert not secrets_nowhere(world, secrets, log_text + await audit_text(world))


async def test_bad_key_is_explained_in_turkish_and_try_again_works(world: World) -> None:
    code = await world.admin_with_code("ayse")
    ayse = world.person(TURKISH)
    reply = await ayse.say(f"/setup {code}")
    assert "Adım 1/7" in reply["text"]
    await ayse.tap("İleri")
    await ayse.tap("Başka sağlayıcı")
    await ayse.say(world.box.llm_url)
    reply = await ayse.say("sk-yanlis-anahtar-000000000")
    assert "Sağlayıcı bu API anahtarını reddetti (401)" in reply["text"]
    assert ayse.has("Tekrar dene")
    world.box.llm.api_keys.add("sk-yanlis-anahtar-000000000")  # the provider fixed the account
    reply = await ayse.tap("Tekrar dene")
    assert "Bağlantı çalışıyor" in reply["text"] and ayse.has("gpt-4o")


async def test_a_restart_mid_wizard_resumes_at_the_same_step(world: World) -> None:
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    await me.tap("Next")
    await me.tap("Later")
    await me.say(FLEET_TOKEN)
    assert "Step 3/7" in me.last["text"]

    await world.stop()  # the process goes away; the in-process cache with it
    await world.start()

    reply = await me.say("/setup")
    assert "Welcome back" in reply["text"]
    assert "Step 3/7" in reply["text"] and "@borsa_sohbet_bot" in reply["text"]
    reply = await me.say(str(GROUP))
    assert "Chat added" in reply["text"]
    await me.tap("Back")
    assert "Step 2/7" in me.last["text"]


async def test_back_and_cancel_at_every_step(world: World) -> None:
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    forward = ["Next", "Later", "Later", "Keep as is", "Next", "Next"]
    for step in range(2, 8):
        await me.tap(forward[step - 2])
        assert f"Step {step}/7" in me.last["text"]
        await me.tap("Back")
        assert f"Step {step - 1}/7" in me.last["text"]
        await me.tap(forward[step - 2])
        assert f"Step {step}/7" in me.last["text"]
    reply = await me.tap("Cancel")
    assert "Cancelled. Nothing was changed." in reply["text"]
    for step in range(1, 7):
        reply = await me.say("/setup")
        assert "Step 1/7" in reply["text"] and "Welcome back" not in reply["text"]
        for label in forward[: step - 1]:
            await me.tap(label)
        assert f"Step {step}/7" in me.last["text"]
        reply = await me.tap("Cancel")
        assert "Cancelled. Nothing was changed." in reply["text"]
    async with world.services.sessions() as session:
        assert not (await session.scalars(select(Bot.id))).all()  # nothing was applied


async def test_group_refuses_secrets_and_burns_the_code(world: World) -> None:
    code = await world.admin_with_code("boss")
    sb = world.box.sb
    mark = sb.mark()
    n = await audit_count(world.services)
    msg = await sb.send_user_message(NEWCOMER, ADMIN_GROUP, f"/setup {code}")
    reply = await sb.wait_for_message(
        chat_id=ADMIN_GROUP, bot_id=world.box.admin_bot_id, after=mark
    )
    assert "only take it in a private chat" in reply["text"]
    assert (ADMIN_GROUP, msg["message_id"]) in sb.deleted
    assert (
        any(b[0] == "Open in Telegram" for b in buttons(reply))
        or "@kurulum_admin_bot" in reply["text"]
    )
    assert (await next_audit(world.services, n, "setup")).params["outcome"] == "code_burned"
    # burned, no setup code waits: /setup is the admins' alone again, and the code links
    # nobody (the refusal is the pipeline's, for anyone not linked)
    me = world.person(NEWCOMER)
    n = await audit_count(world.services)
    reply = await me.say(f"/setup {code}")
    assert reply["text"].startswith("⛔ I don't know you yet")
    assert not re.search(r"Step \d/6", reply["text"])
    assert (await next_audit(world.services, n, "setup")).result == "denied_unlinked"


async def test_non_admins_are_refused(world: World) -> None:
    from piyasa.admin.users import add_user

    await add_user(world.services, "viewer1", "viewer", telegram_id=NEWCOMER)
    me = world.person(NEWCOMER)
    n = await audit_count(world.services)
    reply = await me.say("/setup")
    # refused by the pipeline from the declaration (role admin), like any command above you
    assert reply["text"].startswith("⛔ This command does not exist or you may not run it")
    assert not re.search(r"Step \d/\d", reply["text"])
    assert (await next_audit(world.services, n, "setup")).result == "denied_role"
