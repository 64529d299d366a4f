"""Adding a bot and rotating its token in chat, on Telegram (SQLite and PostgreSQL).

/addbot: token (private chat, the message deleted, getMe checked) -> persona from a
template or copied from another bot -> chats (Telegram must confirm the bot is in each)
-> saved disabled and previewed -> enabled. /bottoken: the old token keeps working until
Telegram accepts the new one; a refused token changes nothing. The fleet bots and the
admin bot share one sandbox Telegram (``telegram_api_url`` points at it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from piyasa.db.models import Bot
from piyasa.db.runtime_models import BotChat
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin import persona as personas
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401 (fixtures)
from tests.chatops.harness import ADMIN_GROUP, buttons
from tests.runtime.helpers import seed, token_for, with_sandbox
from tests.users.helpers import private, tap

NEW = "8222000000:TEST-addbot-dialog-new-fleet-bot-token-x"
NEW_ROTATED = "8222000000:TEST-addbot-dialog-rotated-token-of-it-x"
UNKNOWN = "8333000000:TEST-a-token-telegram-never-issued-x"


async def bot_count(services: Any) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count(Bot.id))))


async def type_secret(world: Any, role: str, text: str) -> tuple[dict, dict]:
    """``role`` types ``text`` privately: (their message, the bot's answer)."""
    me = private(role)
    mark = world.sb.mark()
    sent = await world.sb.send_user_message(me, me, text, bot_id=world.bot_id)
    reply = await world.sb.wait_for_message(chat_id=me, bot_id=world.bot_id, after=mark)
    return sent, reply


async def test_telegram_add_bot_dialog_from_token_to_enabled(tg) -> None:  # noqa: F811
    _fleet, chats = await seed(tg.services, tg.sb, bots=2, chats=2)
    me = private("operator")
    account = tg.sb.add_bot(NEW, "newcomer_bot", "Newcomer")
    tg.sb.add_member(chats[1].telegram_id, account.id)  # in Group 1, not in Group 0
    ask = await tg.say("operator", "/addbot")
    assert "Send the new bot's token from BotFather" in ask["text"]

    # a token getMe refuses: deleted, refused, nothing stored, still asking
    sent, refused = await type_secret(tg, "operator", UNKNOWN)
    assert (me, sent["message_id"]) in tg.sb.deleted
    assert "Telegram refused that token" in refused["text"] and UNKNOWN not in refused["text"]
    assert await bot_count(tg.services) == 2
    sent, refused = await type_secret(tg, "operator", "not a token")
    assert "That is not a bot token" in refused["text"]
    # a fleet bot's own token: already in the fleet
    _sent, refused = await type_secret(tg, "operator", token_for(0))
    assert "already in the fleet" in refused["text"]

    sent, persona = await type_secret(tg, "operator", NEW)
    assert (me, sent["message_id"]) in tg.sb.deleted
    assert "@newcomer_bot is ready" in persona["text"]
    assert NEW not in persona["text"]
    chat_step = await tap(tg, "operator", me, persona, "FX watcher")
    assert "Which chats will it talk in?" in chat_step["text"]

    # a chat the bot is not in: Telegram says so, nothing chosen
    not_in = await tap(tg, "operator", me, chat_step, "Group 0")
    assert "The bot is not in Group 0" in not_in["text"]
    assert "▫️ Group 0" in [label for label, _ in buttons(not_in)]
    chosen = await tap(tg, "operator", me, not_in, "Group 1")
    assert "✅ Group 1" in [label for label, _ in buttons(chosen)]
    assert await bot_count(tg.services) == 2  # nothing saved before Next

    preview = await tap(tg, "operator", me, chosen, "Next")
    assert "@newcomer_bot is saved, disabled" in preview["text"]
    assert "1. " in preview["text"]  # samples, not sent anywhere
    assert tg.sb.sent(chats[1].telegram_id, account.id) == []
    done = await tap(tg, "operator", me, preview, "Enable now")
    assert "Bot added and enabled." in done["text"] and "Status: on" in done["text"]

    async with tg.services.sessions() as session:
        row = await session.scalar(select(Bot).where(Bot.username == "newcomer_bot"))
        member_of = (
            await session.scalars(select(BotChat.chat_id).where(BotChat.bot_id == row.id))
        ).all()
    assert row.enabled and tg.services.box.decrypt(row.token_encrypted) == NEW
    want = {**personas.TEMPLATES["fx"], "name": "Newcomer"}
    assert row.persona == personas.validate_persona(want)
    assert list(member_of) == [chats[1].id]


async def test_telegram_add_bot_copies_another_bots_persona_and_stays_off(tg) -> None:  # noqa: F811
    fleet, chats = await seed(tg.services, tg.sb, bots=1, chats=1, persona={"footer": "Kopya"})
    me = private("operator")
    account = tg.sb.add_bot(NEW, "newcomer_bot", "Newcomer")
    tg.sb.add_member(chats[0].telegram_id, account.id)
    await tg.say("operator", "/addbot")
    _sent, persona = await type_secret(tg, "operator", NEW)
    chat_step = await tap(tg, "operator", me, persona, "Copy Fleet0")
    chosen = await tap(tg, "operator", me, chat_step, "Group 0")
    preview = await tap(tg, "operator", me, chosen, "Next")
    assert "Kopya" in preview["text"]  # the samples use the copied footer
    done = await tap(tg, "operator", me, preview, "Leave it disabled")
    assert "Bot added, disabled" in done["text"] and "Status: off" in done["text"]
    bot = await svc.get_bot(tg.services, "newcomer_bot")
    assert not bot.enabled
    assert bot.persona == {**fleet[0].persona, "name": "Newcomer"}


async def test_telegram_add_bot_is_refused_outside_a_private_chat(tg) -> None:  # noqa: F811
    await seed(tg.services, tg.sb, bots=1, chats=0)
    reply = await tg.say("operator", "/addbot", group=True)
    assert "Send the new bot's token" not in reply["text"]
    assert await bot_count(tg.services) == 1
    assert reply["chat"]["id"] == ADMIN_GROUP


async def test_telegram_token_rotation_keeps_the_old_token_until_the_new_works(tg) -> None:  # noqa: F811
    await seed(tg.services, tg.sb, bots=2, chats=0)
    me = private("admin")
    account = tg.sb.add_bot(NEW, "newcomer_bot", "Newcomer")
    tg.sb.add_bot(NEW_ROTATED, "newcomer_bot", "Newcomer")  # BotFather's /revoke
    from piyasa.fleetadmin import bot_changes

    bot_id = await bot_changes.add_bot(tg.services, NEW, {}, actor="t")

    async def token_now() -> str:
        return tg.services.box.decrypt((await svc.get_bot(tg.services, bot_id)).token_encrypted)

    # operators may not rotate tokens
    denied = await tg.say("operator", "/bottoken newcomer_bot")
    assert denied["text"].startswith("⛔")
    ask = await tg.say("admin", "/bottoken newcomer_bot")
    assert "the old token keeps working until Telegram accepts the new one" in ask["text"]
    for typed, says in (
        (UNKNOWN, "Telegram refused that token"),
        (token_for(1), "That token belongs to @fleet1_bot, not to this bot. The old token stays."),
        ("8222000000-nope", "That is not a bot token"),
    ):
        sent, refused = await type_secret(tg, "admin", typed)
        assert (me, sent["message_id"]) in tg.sb.deleted
        assert says in refused["text"] and typed not in refused["text"]
        assert await token_now() == NEW  # the old token stays
    sent, done = await type_secret(tg, "admin", NEW_ROTATED)
    assert (me, sent["message_id"]) in tg.sb.deleted
    assert "Token replaced: Telegram accepted the new one." in done["text"]
    assert NEW_ROTATED not in done["text"]
    assert await token_now() == NEW_ROTATED
    assert account.id == (await svc.get_bot(tg.services, bot_id)).telegram_id


# -- Slack: the same dialogs, the token typed into a modal in the app's DM ------------------------


async def test_slack_add_bot_and_rotate_its_token(slack, slack_server) -> None:  # noqa: F811
    from tests.chatops.slack_server import dm_of, slack_buttons, slack_text
    from tests.users.helpers import slack_token
    from tests.waiting import PatientSandbox

    async def slack_tap(_slack: Any, _server: Any, sid: str, message: dict, label: str) -> dict:
        """Press in the app's DM, where the dialog's buttons were shown."""
        _status, url = await slack.press(sid, slack_token(message, label), channel=dm_of(sid))
        return (await slack_server.wait_response(url))[-1]

    sb = PatientSandbox(enforce_limits=False)
    url = await sb.start("127.0.0.1", 0)
    try:
        with_sandbox(slack.services, url)
        _fleet, chats = await seed(slack.services, sb, bots=2, chats=2)
        account = sb.add_bot(NEW, "newcomer_bot", "Newcomer")
        sb.add_member(chats[1].telegram_id, account.id)
        sb.add_bot(NEW_ROTATED, "newcomer_bot", "Newcomer")
        op, dm = "U0OPERATOR", dm_of("U0OPERATOR")

        # outside the app's DM: refused, nothing asked
        _, ack, _ = await slack.slash(op, "addbot")
        assert "Send the new bot's token" not in slack_text(ack)

        _, ack, rurl = await slack.slash(op, "addbot", channel=dm)
        modal = await slack_server.wait_view(op)
        for typed, says in ((UNKNOWN, "Telegram refused that token"), ("x", "not a bot token")):
            outcome = await slack.submit(op, modal, typed)
            assert says in outcome["errors"]["answer"], outcome
            assert typed not in outcome["errors"]["answer"]
        assert await bot_count(slack.services) == 2
        outcome = await slack.submit(op, modal, NEW)
        assert not outcome["errors"]
        persona = (await slack_server.wait_response(rurl))[-1]
        assert "@newcomer_bot is ready" in slack_text(persona)
        step = await slack_tap(slack, slack_server, op, persona, "Crypto fan")
        step = await slack_tap(slack, slack_server, op, step, "Group 0")
        assert "The bot is not in Group 0" in slack_text(step)
        step = await slack_tap(slack, slack_server, op, step, "Group 1")
        assert "✅ Group 1" in [label for label, _ in slack_buttons(step)]
        preview = await slack_tap(slack, slack_server, op, step, "Next")
        assert "@newcomer_bot is saved, disabled" in slack_text(preview)
        done = await slack_tap(slack, slack_server, op, preview, "Enable now")
        assert "Bot added and enabled." in slack_text(done)
        bot = await svc.get_bot(slack.services, "newcomer_bot")
        assert bot.enabled and bot.persona["topics"] == personas.TEMPLATES["crypto"]["topics"]
        assert sb.sent(chats[1].telegram_id, account.id) == []  # the preview sent nothing

        # rotation: admins only, in the DM; a refused token keeps the old one
        _, ack, _ = await slack.slash(op, "bottoken newcomer_bot", channel=dm)
        assert "the old token keeps working" not in slack_text(ack)
        admin = "U0ADMIN"
        _, ack, rurl = await slack.slash(admin, "bottoken newcomer_bot", channel=dm_of(admin))
        modal = await slack_server.wait_view(admin)
        outcome = await slack.submit(admin, modal, token_for(0))
        assert "That token belongs to @fleet0_bot" in outcome["errors"]["answer"]
        key = (await svc.get_bot(slack.services, bot.id)).token_encrypted
        assert slack.services.box.decrypt(key) == NEW
        outcome = await slack.submit(admin, modal, NEW_ROTATED)
        assert not outcome["errors"]
        done = (await slack_server.wait_response(rurl))[-1]
        assert "Token replaced" in slack_text(done) and NEW_ROTATED not in slack_text(done)
        key = (await svc.get_bot(slack.services, bot.id)).token_encrypted
        assert slack.services.box.decrypt(key) == NEW_ROTATED
    finally:
        await sb.stop()
