"""One-time secrets are delivered privately or not made at all (Telegram and Slack, SQLite
and PostgreSQL).

Before: pressed in the admin group by an admin who never opened a private chat with the
bot, "New API key" revoked the working key and lost the new one, "Reset password" and
/adduser lost their one-time secrets, and the audit said ``ok``. Now the private chat is
checked first (nothing changes, the admin is told how to open it), and a private message
that fails after all takes the secret back.
"""

from __future__ import annotations

from sqlalchemy import func, select

from chatops import i18n
from piyasa.admin import audit, auth, passwords
from piyasa.admin import users as svc
from piyasa.admin.health.apikeys import verify_api_key
from piyasa.db.models import OneTimeCode, User
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, audit_count, buttons, next_audit
from tests.chatops.slack_server import slack_text
from tests.users.helpers import (
    answer_in_group,
    slack_answer,
    slack_tap,
    slack_token,
    tap,
    token_for,
)

OLD_PASSWORD = "the operator's own passphrase"
NO_CHAT = i18n.t("en", "handover.no_private.telegram", bot="piyasa_test_admin_bot")
UNDELIVERED = i18n.t("en", "handover.undelivered.telegram", bot="piyasa_test_admin_bot")
BLOCKED = "Forbidden: bot was blocked by the user"


async def _operator_with_key(services) -> str:  # type: ignore[no-untyped-def]
    """The operator has a password and a working API key; the admin may step up."""
    await svc.set_password(services, svc.CLI, "user_operator", OLD_PASSWORD)
    _, key, _ = await svc.regenerate_api_key(services, svc.CLI, "user_operator")
    admin = (await svc.get_user(services, "user_admin")).id
    await auth.enroll_totp(services, admin)
    await auth.grant_elevation(services, admin)
    return key


async def _unchanged(services, key: str) -> None:  # type: ignore[no-untyped-def]
    owner = await verify_api_key(services.sessions, key)
    assert owner is not None and owner.username == "user_operator"  # the old key works
    assert len((await svc.card(services, "user_operator")).api_keys) == 1
    login = await passwords.check_login(services, "user_operator", OLD_PASSWORD)
    assert login.ok and not login.must_change  # the old password works, nothing forced


async def _outcome(services, mark: int, action: str) -> str:  # type: ignore[no-untyped-def]
    """The result of the request after ``mark`` past its confirmation (which is audited
    too, possibly late)."""
    row = await next_audit(services, mark, action=action)
    while row.result == "confirm_asked":
        row = await next_audit(services, row.id, action=action)
    return row.result


async def _users(services) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count(User.id))) or 0)


async def _codes(services) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OneTimeCode)) or 0)


def _fail_next_dm(tg) -> None:  # type: ignore[no-untyped-def]
    """The next sendMessage fails as if the admin had just blocked the bot."""
    tg.sb.inject_error(tg.surface.bot.token, "sendMessage", 403, BLOCKED)


async def _press_yes_in_group(tg, label: str, *, dm_fails: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """From the group: /users operator -> card -> ``label`` -> Yes; the bot's answer."""
    msg = await tg.say("admin", "/users operator", group=True)
    card = await tap(tg, "admin", ADMIN_GROUP, msg, "👤 user_operator")
    confirm = await tap(tg, "admin", ADMIN_GROUP, card, label)
    if dm_fails:
        _fail_next_dm(tg)
    mark = await tg.press("admin", ADMIN_GROUP, confirm, token_for(confirm, "Yes"))
    return await tg.sb.wait_for_message(
        chat_id=ADMIN_GROUP, after=mark, bot_id=tg.bot_id, edits=True
    )


async def _adduser_in_group(tg, name: str, *, dm_fails: bool = False) -> dict:  # type: ignore[no-untyped-def]
    step = await tg.say("admin", "/adduser", group=True)
    _, step = await answer_in_group(tg, "admin", name)  # a reply to the bot's prompt
    for label in ("viewer", "Generate", "yes", "Later"):
        # the step message, edited (the password step's ForceReply prompt comes beside it)
        mark = await tg.press("admin", ADMIN_GROUP, step, token_for(step, label))
        step = await tg.sb.wait_for_message(
            lambda m: "Step" in m.get("text", ""),
            chat_id=ADMIN_GROUP,
            edits=True,
            after=mark,
            bot_id=tg.bot_id,
        )
    if dm_fails:
        _fail_next_dm(tg)
    mark = await tg.press("admin", ADMIN_GROUP, step, token_for(step, "Create"))
    return await tg.sb.wait_for_message(
        chat_id=ADMIN_GROUP, after=mark, bot_id=tg.bot_id, edits=True
    )


async def test_no_private_chat_changes_nothing_telegram(tg) -> None:
    key = await _operator_with_key(tg.services)  # the admin never started the bot
    for label in ("New API key", "Reset password"):
        mark = await audit_count(tg.services)
        reply = await _press_yes_in_group(tg, label)
        assert reply["text"] == "⛔ " + NO_CHAT, label
        assert ("Open the chat with @piyasa_test_admin_bot", "") in buttons(reply)
        await _unchanged(tg.services, key)
        action = "users.apikey" if label == "New API key" else "users.reset_pw"
        assert await _outcome(tg.services, mark, action) == "refused_no_private_chat", label
    users_before = await _users(tg.services)
    reply = await _adduser_in_group(tg, "newbie")
    assert reply["text"] == "⛔ " + NO_CHAT
    assert await _users(tg.services) == users_before and await _codes(tg.services) == 0
    assert tg.sb.sent(PEOPLE["admin"][0], tg.bot_id) == []  # nothing went anywhere


async def test_a_private_message_that_fails_takes_the_secret_back_telegram(tg) -> None:
    key = await _operator_with_key(tg.services)
    await tg.say("admin", "/start")  # the private chat is open, the probe passes...
    for label, action, change in (
        ("New API key", "users.apikey", "user.api_key"),
        ("Reset password", "users.reset_pw", "user.password_reset"),
    ):
        mark = await audit_count(tg.services)
        reply = await _press_yes_in_group(tg, label, dm_fails=True)  # ...but the DM fails
        assert reply["text"] == "⛔ " + UNDELIVERED, label
        await _unchanged(tg.services, key)
        assert await _outcome(tg.services, mark, action) == "failed_undelivered"
        assert (await next_audit(tg.services, mark, action=change)).result == "ok"
        assert (await audit.recent(tg.services, 1, action=change))[0].result == "undone"
    users_before = await _users(tg.services)
    reply = await _adduser_in_group(tg, "newbie", dm_fails=True)
    assert reply["text"] == "⛔ " + UNDELIVERED
    assert await _users(tg.services) == users_before and await _codes(tg.services) == 0
    assert (await audit.recent(tg.services, 1, action="user.add"))[0].result == "undone"
    # and with the chat working, the same press hands the key over (once, privately)
    reply = await _press_yes_in_group(tg, "New API key")
    assert reply["text"] == "✅ " + i18n.t("en", "render.sent_private")
    secret = tg.sb.sent(PEOPLE["admin"][0], tg.bot_id)[-1]
    new_key = secret["text"].split("\n")[1].strip()
    assert (await verify_api_key(tg.services.sessions, new_key)) is not None
    assert await verify_api_key(tg.services.sessions, key) is None


async def _slack_card_press(slack, slack_server, label: str) -> dict:  # type: ignore[no-untyped-def]
    _, ack, _ = await slack.slash("U0ADMIN", "users operator")
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_operator")
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", card, label)
    _, url = await slack.press("U0ADMIN", slack_token(confirm, "Yes"))
    return (await slack_server.wait_response(url))[-1]


async def test_no_dm_changes_nothing_slack(slack, slack_server) -> None:
    key = await _operator_with_key(slack.services)
    slack_server.dm_refused.update(U0ADMIN="user_not_visible", U0VIEWER="user_disabled")
    no_dm = i18n.t("en", "handover.no_private.slack", bot="")
    for label, action in (("New API key", "users.apikey"), ("Reset password", "users.reset_pw")):
        mark = await audit_count(slack.services)
        reply = await _slack_card_press(slack, slack_server, label)
        assert no_dm in slack_text(reply), label
        await _unchanged(slack.services, key)
        assert await _outcome(slack.services, mark, action) == "refused_no_private_chat"
    _, ack, _ = await slack.slash("U0ADMIN", "linkcode user_viewer")
    assert no_dm in slack_text(ack) and await _codes(slack.services) == 0
    # /mfa is private-only: from a channel it is refused before any seed exists (and in
    # the app's DM the DM is there by definition)
    _, ack, _ = await slack.slash("U0VIEWER", "mfa")
    where = i18n.t("en", "refuse.private_where.slack")
    assert i18n.t("en", "refuse.private_only", where=where) in slack_text(ack)
    assert (await svc.card(slack.services, "user_viewer")).mfa == "off"  # no seed waits
    assert not [m for m in slack_server.posted if m["channel"].startswith("D")]


async def test_a_dm_that_fails_takes_the_secret_back_slack(slack, slack_server) -> None:
    key = await _operator_with_key(slack.services)
    undelivered = i18n.t("en", "handover.undelivered.slack", bot="")
    for label in ("New API key", "Reset password"):
        slack_server.fail_next["chat.postMessage"] = "channel_not_found"
        reply = await _slack_card_press(slack, slack_server, label)
        assert undelivered in slack_text(reply), label
        await _unchanged(slack.services, key)
    before = await _users(slack.services)
    _, _ack, url = await slack.slash("U0ADMIN", "adduser")
    step = await slack_answer(slack, slack_server, "U0ADMIN", "deniz", url)  # in the modal
    step = await slack_tap(slack, slack_server, "U0ADMIN", step, "viewer")
    for label in ("Generate", "yes", "Later"):
        step = await slack_tap(slack, slack_server, "U0ADMIN", step, label)
    slack_server.fail_next["chat.postMessage"] = "channel_not_found"
    mark = await audit_count(slack.services)
    done = await slack_tap(slack, slack_server, "U0ADMIN", step, "Create")
    assert undelivered in slack_text(done)
    assert await _users(slack.services) == before and await _codes(slack.services) == 0
    row = await next_audit(slack.services, mark, action="adduser.create")
    assert row.result == "failed_undelivered"
