"""Driving /users and friends on the Telegram sandbox and the local Slack."""

from __future__ import annotations

from typing import Any

from tests.chatops.harness import PEOPLE, TelegramWorld, buttons
from tests.chatops.slack_server import slack_buttons
from tests.waiting import until


def token_for(message: dict, label: str) -> str:
    found = [data for text, data in buttons(message) if label in text]
    assert found, f"no button {label!r} in {[t for t, _ in buttons(message)]}"
    return found[0]


async def tap(tg: TelegramWorld, role: str, chat: int, message: dict, label: str) -> dict:
    """Press the button labelled ``label``; the bot's next message or edit in that chat."""
    mark = await tg.press(role, chat, message, token_for(message, label))
    return await tg.sb.wait_for_message(chat_id=chat, edits=True, after=mark, bot_id=tg.bot_id)


async def tap_new(tg: TelegramWorld, role: str, chat: int, message: dict, label: str) -> dict:
    """Press and wait for a new message (not an edit) in ``chat``."""
    mark = await tg.press(role, chat, message, token_for(message, label))
    return await tg.sb.wait_for_message(chat_id=chat, after=mark, bot_id=tg.bot_id)


def private(role: str) -> int:
    return PEOPLE[role][0]


def slack_token(message: dict, label: str) -> str:
    found = [value for text, value in slack_buttons(message) if label in text]
    assert found, f"no button {label!r} in {[t for t, _ in slack_buttons(message)]}"
    return found[0]


async def slack_tap(slack: Any, server: Any, sid: str, message: dict, label: str) -> dict:
    _status, url = await slack.press(sid, slack_token(message, label))
    return (await server.wait_response(url))[-1]


async def slack_upload(server: Any, suffix: str) -> dict:
    """The completed upload whose filename ends with ``suffix`` (uploads follow the ack)."""

    def done() -> dict | None:
        found = [
            u for u in server.uploads if str(u.get("filename")).endswith(suffix) and "channel" in u
        ]
        return found[-1] if found else None

    return await until(done, f"a completed upload of *{suffix}", interval=0.005)


async def group_prompt(tg: TelegramWorld, role: str, after: int = 0) -> dict:
    """The newest ForceReply prompt the bot sent ``role`` in the admin group (after
    message id ``after``): in a group a dialog takes only its owner's reply to it."""
    from tests.chatops.harness import ADMIN_GROUP

    uid = PEOPLE[role][0]

    def prompt() -> dict | None:
        found = [
            m
            for m in tg.sb.sent(ADMIN_GROUP, tg.bot_id)
            if m["message_id"] > after
            and (tg.sb.client_markup(ADMIN_GROUP, m["message_id"]) or {}).get("force_reply")
            and any(e.get("user", {}).get("id") == uid for e in m.get("entities") or [])
        ]
        return found[-1] if found else None

    return await until(prompt, f"a dialog prompt for {role} in the admin group", interval=0.005)


async def answer_in_group(
    tg: TelegramWorld, role: str, text: str, *, after: int = 0
) -> tuple[dict, dict]:
    """``role`` replies ``text`` to their dialog's prompt in the admin group: (their
    message, the bot's next message there)."""
    from tests.chatops.harness import ADMIN_GROUP

    prompt = await group_prompt(tg, role, after)
    mark = tg.sb.mark()
    sent = await tg.sb.send_user_message(
        PEOPLE[role][0], ADMIN_GROUP, text, reply_to_message_id=prompt["message_id"]
    )
    reply = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, bot_id=tg.bot_id, after=mark)
    return sent, reply


async def slack_answer(slack: Any, server: Any, sid: str, text: str, url: str) -> dict:
    """``sid`` types ``text`` into the dialog's open modal and submits it: the message
    that then shows the dialog (posted to ``url``, the response_url it answers through),
    or, when Slack keeps the modal open with errors, {"errors": {...}}."""
    modal = await server.wait_view(sid)
    before = len(server.responses[url.rsplit("/", 1)[1]])
    outcome = await slack.submit(sid, modal, text)
    if outcome["errors"]:
        return {"errors": outcome["errors"]}
    return (await server.wait_response(url, count=before + 1))[-1]
