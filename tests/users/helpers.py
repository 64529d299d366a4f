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
