"""Driving /backup on the Telegram sandbox: press and wait for the screen that says X."""

from __future__ import annotations

from typing import Any

from tests.chatops.harness import PEOPLE, TelegramWorld
from tests.users.helpers import token_for


async def tap_until(
    tg: TelegramWorld, role: str, message: dict, label: str, needle: str
) -> dict[str, Any]:
    """``role`` presses ``label`` on ``message`` (in their private chat); the first bot
    message or edit there after the press whose text holds ``needle``."""
    chat = PEOPLE[role][0]
    mark = await tg.press(role, chat, message, token_for(message, label))
    return await wait_text(tg, chat, needle, mark)


async def type_until(tg: TelegramWorld, role: str, text: str, needle: str) -> dict[str, Any]:
    """``role`` types ``text`` privately; the first bot message or edit holding ``needle``."""
    chat = PEOPLE[role][0]
    mark = tg.sb.mark()
    await tg.sb.send_user_message(chat, chat, text, bot_id=tg.bot_id)
    return await wait_text(tg, chat, needle, mark)


async def wait_text(tg: TelegramWorld, chat: int, needle: str, mark: int) -> dict[str, Any]:
    return await tg.sb.wait_for_message(
        lambda m: needle in (m.get("text") or m.get("caption") or ""),
        chat_id=chat,
        bot_id=tg.bot_id,
        edits=True,
        after=mark,
    )


def progress_messages(tg: TelegramWorld, chat: int, title: str) -> list[dict[str, Any]]:
    """The bot's progress messages titled ``title`` in ``chat``, as they read now."""
    return [m for m in tg.sb.sent(chat, tg.bot_id) if (m.get("text") or "").startswith(title)]
