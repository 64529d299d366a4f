"""Dialog answers travel through a channel that cannot collide with commands or chatter.

Slack: a step that takes text opens a modal (views.open); its answer comes back as a
view_submission, so a password starting with "users " is never run as ``/piyasa users``
(nor stored in the audit log), and a user named ``audit`` can be added. Telegram, in a
group: the prompt is a selective ForceReply and only its owner's reply to it answers;
another member's message and the owner's ordinary messages stay ordinary chat. Every
dialog expires after ``DIALOG_TTL_S`` (10 minutes, on the injectable clock).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatops import dialogs, i18n
from piyasa.admin import audit, identity, passwords
from piyasa.admin import users as svc
from piyasa.sandbox.telegram.clock import SandboxClock
from tests.chatops.harness import (
    ADMIN_GROUP,
    PEOPLE,
    audit_count,
    buttons,
    next_audit,
)
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import slack_tap, slack_token, tap
from tests.waiting import until

PASSWORD = "users list Kırmızı-balık-uçar-7"  # its first word is a command name
ADMIN_TG = PEOPLE["admin"][0]


def _expired(cmd: str) -> str:
    return i18n.t("en", "dialog.expired", minutes=dialogs.DIALOG_TTL_S // 60, cmd=cmd)


async def _audit_rows(services: Any) -> list[Any]:
    return await audit.recent(services, 500)


# -- Slack: modals -------------------------------------------------------------------------


async def _slack_to_password(slack: Any, server: Any) -> tuple[dict, str]:
    """/piyasa adduser, username ``deniz`` in the modal, role viewer: the password step
    (its message, and the response_url the next answer updates)."""
    _, ack, url = await slack.slash("U0ADMIN", "adduser")
    assert "Step 1/6" in slack_text(ack)
    modal = await server.wait_view("U0ADMIN")
    assert modal["blocks"][-1]["type"] == "input" and "Step 1/6" in str(modal["blocks"])
    outcome = await slack.submit("U0ADMIN", modal, "deniz")
    assert outcome["status"] == 200 and outcome["ack"] is None  # closed: next is a choice
    step = (await server.wait_response(url))[-1]
    assert "Step 2/6" in slack_text(step)
    _, press_url = await slack.press("U0ADMIN", slack_token(step, "viewer"))
    step = (await server.wait_response(press_url))[-1]
    assert "Step 3/6" in slack_text(step)
    return step, press_url


async def test_slack_password_starting_with_a_command_is_an_answer_never_logged(
    slack, slack_server, caplog: pytest.LogCaptureFixture
) -> None:
    step, url = await _slack_to_password(slack, slack_server)
    modal = await slack_server.wait_view("U0ADMIN", count=2)  # opened by the press
    assert "Step 3/6" in str(modal["blocks"]) and PASSWORD not in str(modal)
    mark = await audit_count(slack.services)
    with caplog.at_level(logging.DEBUG):
        outcome = await slack.submit("U0ADMIN", modal, PASSWORD)
        step = (await slack_server.wait_response(url, count=2))[-1]
    assert outcome["ack"] is None and "Step 4/6" in slack_text(step)
    row = await next_audit(slack.services, mark, action="adduser.input")
    assert row.result == "ok"
    for label in ("yes", "Later"):
        step = await slack_tap(slack, slack_server, "U0ADMIN", step, label)
    await slack_tap(slack, slack_server, "U0ADMIN", step, "Create")
    assert (await passwords.check_login(slack.services, "deniz", PASSWORD)).ok
    rows = await _audit_rows(slack.services)
    assert not [r for r in rows if r.action.startswith("users")]  # nothing ran as /users
    assert all("Kırmızı" not in f"{r.params} {r.detail} {r.target}" for r in rows)
    assert "Kırmızı" not in caplog.text
    assert all("Kırmızı" not in str(v["view"]) for v in slack_server.views.values())


async def test_slack_user_named_like_a_command_can_be_added(slack, slack_server) -> None:
    _, _ack, url = await slack.slash("U0ADMIN", "adduser")
    modal = await slack_server.wait_view("U0ADMIN")
    await slack.submit("U0ADMIN", modal, "audit")
    step = (await slack_server.wait_response(url))[-1]
    assert "Step 2/6" in slack_text(step)
    for label in ("viewer", "Generate", "yes", "Later", "Create"):
        step = await slack_tap(slack, slack_server, "U0ADMIN", step, label)
    assert (await svc.card(slack.services, "audit")).role == "viewer"
    rows = await _audit_rows(slack.services)
    assert not [r for r in rows if r.action == "audit"]  # /piyasa audit never ran


async def test_slack_bad_answer_is_shown_in_the_modal_and_changes_nothing(
    slack, slack_server, people
) -> None:
    await identity.set_language(slack.services, people["admin"], "tr")
    await slack.slash("U0ADMIN", "adduser")
    modal = await slack_server.wait_view("U0ADMIN")
    outcome = await slack.submit("U0ADMIN", modal, "Bad Name!")
    assert outcome["errors"] == {"answer": i18n.t("tr", "users.add.bad_username")}
    assert slack_server.open_views("U0ADMIN")  # still open, still the first step
    state = await _slack_state(slack)
    assert state["step"] == 0 and "username" not in state["data"]
    outcome = await slack.submit("U0ADMIN", modal, "deniz")
    assert outcome["ack"] is None and not slack_server.open_views("U0ADMIN")


async def _slack_state(slack: Any) -> dict:
    return await slack.services.cache.get("dialog:slack:U0ADMIN:C0OPS")


async def test_slack_answer_typed_after_the_command_is_neither_run_nor_stored(
    slack, slack_server
) -> None:
    await slack.slash("U0ADMIN", "adduser")
    mark = await audit_count(slack.services)
    _, ack, _ = await slack.slash("U0ADMIN", "hunter2-is-my-password")
    assert i18n.t("en", "dialog.use_form") in slack_text(ack)
    assert (await _slack_state(slack))["data"] == {}
    rows = [r for r in await _audit_rows(slack.services) if r.id > mark]
    assert all("hunter2" not in f"{r.action} {r.params}" for r in rows)
    # nor does naming the dialog's input action on the command line
    _, ack, _ = await slack.slash("U0ADMIN", "adduser.input deniz")
    assert i18n.t("en", "dialog.use_form") in slack_text(ack)
    assert (await _slack_state(slack))["data"] == {}


async def test_slack_expired_trigger_leaves_an_answer_button_that_opens_the_modal(
    slack, slack_server
) -> None:
    slack_server.trigger_ttl_s = -1  # every trigger has expired by the time it is used
    _, ack, _ = await slack.slash("U0ADMIN", "adduser")
    assert not slack_server.views
    slack_server.trigger_ttl_s = 3.0
    answer = i18n.t("en", "dialog.answer_button")
    assert answer in [label for label, _ in slack_buttons(ack)]
    await slack.press("U0ADMIN", slack_token(ack, answer))
    modal = await slack_server.wait_view("U0ADMIN")
    assert "Step 1/6" in str(modal["blocks"])


async def test_slack_modal_after_expiry_says_so_and_creates_nothing(slack, slack_server) -> None:
    clock = SandboxClock(start=2_000_000_000.0)
    slack.services.extras[dialogs.CLOCK_KEY] = clock.now
    _, _ack, url = await slack.slash("U0ADMIN", "adduser")
    modal = await slack_server.wait_view("U0ADMIN")
    clock.advance(dialogs.DIALOG_TTL_S)
    outcome = await slack.submit("U0ADMIN", modal, "deniz")
    assert outcome["ack"] is None and not slack_server.open_views("U0ADMIN")  # closed
    answer = (await slack_server.wait_response(url))[-1]
    assert _expired("/piyasa adduser") in slack_text(answer)
    # no Answer, Back or Cancel on an ended dialog: only 📘 Learn more about it (h17ctx)
    assert [b for b, _ in slack_buttons(answer)] == [i18n.t("en", "help.btn.learn")]
    assert await _slack_state(slack) is None
    assert not await svc.user_ids(slack.services, ["deniz"])


# -- Telegram: a group takes only the owner's reply to the prompt ---------------------------


async def _group_prompt(tg: Any) -> tuple[dict, dict, dict]:
    """/adduser typed by the admin in the group: (their message, the step, the prompt)."""
    mark = tg.sb.mark()
    command = await tg.sb.send_user_message(ADMIN_TG, ADMIN_GROUP, "/adduser")
    step = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    assert "Step 1/6" in step["text"]
    prompt = await tg.sb.wait_for_message(
        lambda m: m["message_id"] > step["message_id"], chat_id=ADMIN_GROUP, bot_id=tg.bot_id
    )
    await _prompt_recorded(tg, prompt)
    return command, step, prompt


async def _prompt_recorded(tg: Any, prompt: dict) -> None:
    """Wait until the bot has recorded ``prompt`` as the step's prompt: it learns the
    message id from Telegram's answer to sendMessage, which may reach it after the
    message reached the chat (a person cannot reply in that instant; a test can)."""

    async def recorded() -> bool:
        state = await tg.services.cache.get(f"dialog:telegram:{ADMIN_TG}:{ADMIN_GROUP}")
        return bool(state) and state.get("prompt", {}).get("message") == str(prompt["message_id"])

    await until(recorded, f"the bot to record prompt {prompt['message_id']}")


async def test_group_dialog_takes_only_its_owners_reply_to_the_prompt(tg) -> None:
    command, _step, prompt = await _group_prompt(tg)
    markup = tg.sb.client_markup(ADMIN_GROUP, prompt["message_id"])
    assert markup["force_reply"] is True and markup["selective"] is True
    assert prompt["reply_to_message"]["message_id"] == command["message_id"]
    mark = tg.sb.mark()
    before = await audit_count(tg.services)
    # another member answers the prompt, the owner chats without replying to it
    await tg.sb.send_user_message(PEOPLE["operator"][0], ADMIN_GROUP, "intruder")
    await tg.sb.send_user_message(
        PEOPLE["operator"][0], ADMIN_GROUP, "intruder2", reply_to_message_id=prompt["message_id"]
    )
    await tg.sb.send_user_message(ADMIN_TG, ADMIN_GROUP, "hello team")
    await tg.sb.send_user_message(
        ADMIN_TG, ADMIN_GROUP, "newbie", reply_to_message_id=prompt["message_id"]
    )
    step = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    assert "Step 2/6" in step["text"] and "newbie" in step["text"]
    state = await tg.services.cache.get(f"dialog:telegram:{ADMIN_TG}:{ADMIN_GROUP}")
    assert state["data"] == {"username": "newbie"}
    row = await next_audit(tg.services, before, action="adduser.input")
    assert row.actor == "user_admin" and row.result == "ok"
    # what the bot said after the answers: the next step only, no refusal of the chatter
    said = [m for m in tg.sb.sent(ADMIN_GROUP, tg.bot_id) if m["message_id"] > prompt["message_id"]]
    assert [m["message_id"] for m in said] == [step["message_id"]]
    inputs = [r for r in await _audit_rows(tg.services) if r.action == "adduser.input"]
    assert len(inputs) == 1


async def test_group_owner_reply_to_an_old_prompt_is_not_an_answer(tg) -> None:
    _command, _step, prompt = await _group_prompt(tg)
    await tg.sb.send_user_message(
        ADMIN_TG, ADMIN_GROUP, "Bad Name!", reply_to_message_id=prompt["message_id"]
    )
    again = await tg.sb.wait_for_message(
        lambda m: "Step 1/6" in m.get("text", ""), chat_id=ADMIN_GROUP, bot_id=tg.bot_id
    )
    assert i18n.t("en", "users.add.bad_username") in again["text"]
    newer = await tg.sb.wait_for_message(
        lambda m: m["message_id"] > again["message_id"], chat_id=ADMIN_GROUP, bot_id=tg.bot_id
    )
    assert tg.sb.client_markup(ADMIN_GROUP, newer["message_id"])["force_reply"] is True
    await _prompt_recorded(tg, newer)
    # the first prompt no longer answers; the new one does
    await tg.sb.send_user_message(
        ADMIN_TG, ADMIN_GROUP, "stale", reply_to_message_id=prompt["message_id"]
    )
    mark = tg.sb.mark()
    await tg.sb.send_user_message(
        ADMIN_TG, ADMIN_GROUP, "newbie", reply_to_message_id=newer["message_id"]
    )
    nxt = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    assert "Step 2/6" in nxt["text"]
    state = await tg.services.cache.get(f"dialog:telegram:{ADMIN_TG}:{ADMIN_GROUP}")
    assert state["data"] == {"username": "newbie"}


async def test_group_dialog_expires_after_ten_minutes_and_creates_nothing(tg) -> None:
    clock = SandboxClock(start=2_000_000_000.0)
    tg.services.extras[dialogs.CLOCK_KEY] = clock.now
    _command, step, prompt = await _group_prompt(tg)
    state = await tg.services.cache.get(f"dialog:telegram:{ADMIN_TG}:{ADMIN_GROUP}")
    assert state["expires_at"] == clock.now() + dialogs.DIALOG_TTL_S
    clock.advance(dialogs.DIALOG_TTL_S)
    users_before = [u.username for u in await svc.list_users(tg.services)]
    mark = tg.sb.mark()
    await tg.sb.send_user_message(
        ADMIN_TG, ADMIN_GROUP, "newbie", reply_to_message_id=prompt["message_id"]
    )
    reply = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    assert _expired("/adduser") in reply["text"]
    assert await tg.services.cache.get(f"dialog:telegram:{ADMIN_TG}:{ADMIN_GROUP}") is None
    # its buttons say the same, and nothing was created
    pressed = await tap(tg, "admin", ADMIN_GROUP, step, "Cancel")
    assert "cancel" in pressed["text"].lower() or "Cancelled" in pressed["text"]
    assert [u.username for u in await svc.list_users(tg.services)] == users_before


async def test_private_dialog_takes_plain_text_and_also_expires(tg) -> None:
    clock = SandboxClock(start=2_000_000_000.0)
    tg.services.extras[dialogs.CLOCK_KEY] = clock.now
    await tg.say("admin", "/adduser")
    step = await tg.say("admin", "newbie")  # no reply needed in a private chat
    assert "Step 2/6" in step["text"]
    assert not tg.sb.client_markup(ADMIN_TG, step["message_id"])  # no ForceReply there
    clock.advance(dialogs.DIALOG_TTL_S)
    mark = await audit_count(tg.services)
    pressed = await tap(tg, "admin", ADMIN_TG, step, "operator")
    assert _expired("/adduser") in pressed["text"]
    assert (await next_audit(tg.services, mark, action="adduser.choose")).result == "ok"
    reply = await tg.say("admin", "anything")
    assert i18n.t("en", "hint.commands_only") in reply["text"]
    assert "Step" not in reply["text"]
    assert buttons(reply) == []
