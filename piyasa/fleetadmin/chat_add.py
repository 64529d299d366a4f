"""Adding a chat to the fleet, checked with Telegram through the fleet bots' own tokens.

For each candidate bot: ``getChat`` (400 "chat not found" when the bot is not in the group,
403 when it was kicked or is not a member) and ``getChatMember`` for the bot itself. A bot
may post when its status is creator, administrator or member, or restricted with
``can_send_messages``; in a channel only an administrator with ``can_post_messages``
(Bot API, ChatMember). The chat is added with those bots as its listed members; when none
can post, nothing is added and the error says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from piyasa.db.models import Bot, Chat
from piyasa.db.runtime_models import BotChat
from piyasa.fleetadmin.chats import TOPICS, ChatError, ChatRow, _audit, _row, apply_now
from piyasa.services import Services

CONCURRENCY = 8
MAX_CANDIDATES = 200  # bots asked when none are named (each costs two Bot API calls)


@dataclass(frozen=True)
class Seen:
    """What one bot learnt about the chat."""

    bot_id: int
    chat: dict[str, Any] | None  # getChat's answer; None: the bot cannot see the chat
    status: str | None  # the bot's own ChatMember status
    can_post: bool
    error: str | None = None


def parse_ref(ref: str | int) -> int | str:
    """A Telegram chat id (``-100…``) or a public ``@username``; ChatError otherwise."""
    text = str(ref).strip()
    if text.startswith("@") and 5 <= len(text) <= 33 and text[1:].replace("_", "").isalnum():
        return text
    with contextlib.suppress(ValueError):
        number = int(text)
        if number != 0:
            return number
    raise ChatError("chats.err.bad_ref", f"{text[:64]!r} is not a chat id or @username")


def _can_post(member: Any, chat_type: str) -> bool:
    status = getattr(member, "status", None)
    if chat_type == "channel":
        return status == "creator" or (
            status == "administrator" and bool(getattr(member, "can_post_messages", False))
        )
    if status in ("creator", "administrator", "member"):
        return True
    return status == "restricted" and bool(getattr(member, "can_send_messages", False))


async def _ask(clients: Any, bot_id: int, tg_bot_id: int | None, ref: int | str) -> Seen:
    from aiogram.exceptions import TelegramAPIError

    bot = clients.sender(bot_id)
    try:
        chat = await bot.get_chat(ref)
    except TelegramAPIError as exc:
        return Seen(bot_id, None, None, False, type(exc).__name__)
    info = chat.model_dump(mode="json", exclude_none=True)
    try:
        me_id = tg_bot_id or (await bot.get_me()).id
        member = await bot.get_chat_member(chat.id, me_id)
    except TelegramAPIError as exc:
        return Seen(bot_id, info, None, False, type(exc).__name__)
    return Seen(bot_id, info, member.status, _can_post(member, chat.type))


async def add_chat(
    services: Services,
    ref: str | int,
    *,
    actor: str,
    bot_ids: list[int] | None = None,
    topics: list[str] | None = None,
) -> ChatRow:
    """Add the chat ``ref`` (id or @username) with the bots that are in it and may post.

    ``bot_ids`` limits which fleet bots are asked (default: the enabled ones, up to
    200). Raises ChatError ``chats.err.bad_ref``, ``exists``, ``not_member`` (no asked bot
    is in the chat), ``no_rights`` (bots are in it but none may post) or ``private``."""
    from piyasa.runtime.telegram import TelegramClients

    target = parse_ref(ref)
    async with services.sessions() as session:
        stmt = select(Bot.id, Bot.telegram_id, Bot.token_encrypted).order_by(Bot.id)
        stmt = stmt.where(Bot.id.in_(bot_ids)) if bot_ids else stmt.where(Bot.enabled.is_(True))
        candidates = (await session.execute(stmt.limit(MAX_CANDIDATES))).all()
        if isinstance(target, int):
            existing = await session.scalar(select(Chat).where(Chat.telegram_id == target))
            if existing is not None:
                raise ChatError("chats.err.exists", "already in the fleet", ref=str(target))
    if not candidates:
        raise ChatError("chats.err.no_bots", "the fleet has no bot to ask")
    clients = TelegramClients(services.settings.telegram_api_url)
    tg_ids = {}
    for bot_id, tg_id, enc in candidates:
        with contextlib.suppress(Exception):
            clients.set_token(bot_id, services.box.decrypt(enc))
            tg_ids[bot_id] = tg_id
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(bot_id: int) -> Seen:
        async with gate:
            return await _ask(clients, bot_id, tg_ids[bot_id], target)

    try:
        seen = await asyncio.gather(*(one(b) for b in tg_ids))
    finally:
        await clients.close()
    visible = [s for s in seen if s.chat is not None]
    if not visible:
        raise ChatError("chats.err.not_member", "no fleet bot is in that chat", ref=str(target))
    info = visible[0].chat or {}
    if info.get("type") == "private":
        raise ChatError("chats.err.private", "a private chat is not a group", ref=str(target))
    posting = [s.bot_id for s in visible if s.can_post]
    if not posting:
        raise ChatError("chats.err.no_rights", "no fleet bot may post there", ref=str(target))
    async with services.sessions() as session, session.begin():
        tg_id = int(info["id"])
        if await session.scalar(select(Chat.id).where(Chat.telegram_id == tg_id)):
            raise ChatError("chats.err.exists", "already in the fleet", ref=str(tg_id))
        chat = Chat(
            telegram_id=tg_id,
            title=str(info.get("title") or info.get("username") or tg_id)[:255],
            kind=str(info.get("type") or "supergroup"),
            enabled=True,
            topics=list(topics or TOPICS),
        )
        session.add(chat)
        await session.flush()
        for bot_id in posting:
            session.add(BotChat(bot_id=bot_id, chat_id=chat.id, listed=True, enabled=True))
        row = _row(chat, len(posting), 0)
    await _audit(services, actor, "chats.add", chat, bots=posting, asked=len(seen))
    await apply_now(services)
    return row
