"""The fleet's chats, for chat-ops and the shell: list, card, enable/disable, title, topics,
per-chat message budget, add (checked with Telegram) and remove.

Every change is audited and reaches the running fleet of this process at once (its roster
is reloaded, the same path its periodic reload takes); other instances follow at their next
roster refresh. Bad input raises :class:`ChatError` with a catalog key
(``chats.err.<code>``) and changes nothing.

Changes (enable, title, topics, budget, remove) are in :mod:`piyasa.fleetadmin.chat_changes`.
Adding a chat (:mod:`piyasa.fleetadmin.chat_add`) asks Telegram, with the fleet bots' own tokens: ``getChat`` (a bot outside
the group gets 400 "chat not found", a kicked one 403) and ``getChatMember`` for the bot
itself, whose status must let it post (Bot API ChatMember: creator, administrator, member,
or restricted with ``can_send_messages``; in a channel only an administrator with
``can_post_messages``). The bots that may post become the chat's listed members.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_, select

from piyasa.admin import audit
from piyasa.db.models import Bot, Chat, Message
from piyasa.db.runtime_models import BotChat, OutboxItem
from piyasa.errors import UserFacingError
from piyasa.services import Services

TOPICS = ("bist", "fx", "crypto", "macro")
TOPIC_RE = re.compile(r"^[\w-]{1,32}$")
MAX_TOPICS = 12
MAX_TITLE = 255
# Telegram's Bot FAQ: at most 20 messages a minute in one group -> 1200 an hour.
MAX_BUDGET = 1200
PAGE_SIZES = (10, 25, 50)
STATUSES = ("enabled", "disabled")
CAN_POST = ("creator", "administrator", "member")


class ChatError(UserFacingError):
    """A chat request that cannot be done; ``key`` is the catalog key saying why."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class ChatRow:
    id: int
    telegram_id: int
    title: str | None
    kind: str
    enabled: bool
    topics: list[str]
    msg_budget: int | None
    bots: int
    today: int  # fleet messages since 00:00 UTC

    @property
    def name(self) -> str:
        return self.title or str(self.telegram_id)


@dataclass(frozen=True)
class ChatPage:
    rows: list[ChatRow]
    total: int
    page: int
    pages: int
    per_page: int


@dataclass(frozen=True)
class ChatBot:
    """A bot of the chat: how much it said there, and whether the fleet stopped it there."""

    id: int
    name: str
    enabled: bool
    disabled_reason: str | None
    last_24h: int
    today: int


@dataclass(frozen=True)
class ChatCard:
    chat: ChatRow
    bots: list[ChatBot] = field(default_factory=list)
    last_hour: int = 0
    pending: int = 0  # decided, not yet delivered


def _today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def _audit(services: Services, actor: str, action: str, chat: Chat, **params: Any) -> None:
    await audit.record(
        services,
        actor=actor,
        surface=actor if actor in ("cli", "system") else "chat",
        action=action,
        target=f"{chat.title or ''} ({chat.telegram_id})".strip(),
        params=params,
        result="ok",
    )


async def apply_now(services: Services) -> None:
    """Have this process's running fleet (if any) reload its roster now."""
    from piyasa.cluster.changes import announce

    fleet = services.extras.get("fleet")
    if fleet is not None and getattr(fleet, "started", False):
        with contextlib.suppress(Exception):
            await fleet.reload_roster()
    await announce(services, "roster")


def _filters(search: str, status: str | None) -> list[Any]:
    where: list[Any] = []
    text = (search or "").strip()
    if text and audit.UNSTORABLE_RE.search(text):
        where.append(false())
    elif text:
        cond = [Chat.title.ilike(f"%{text}%")] if text else []
        with contextlib.suppress(ValueError):
            cond.append(Chat.telegram_id == int(text))
        where.append(or_(*cond))
    if status == "enabled":
        where.append(Chat.enabled.is_(True))
    elif status == "disabled":
        where.append(Chat.enabled.is_(False))
    return where


async def _bot_counts(session: Any, chat_ids: list[int]) -> dict[int, int]:
    """Members per chat: its listed, enabled rows, or every bot when none is listed."""
    listed = dict(
        (
            await session.execute(
                select(BotChat.chat_id, func.count())
                .where(BotChat.chat_id.in_(chat_ids), BotChat.listed.is_(True))
                .where(BotChat.enabled.is_(True), BotChat.disabled_reason.is_(None))
                .group_by(BotChat.chat_id)
            )
        ).all()
    )
    any_listed = set(
        await session.scalars(
            select(BotChat.chat_id)
            .where(BotChat.chat_id.in_(chat_ids), BotChat.listed.is_(True))
            .distinct()
        )
    )
    everyone = int(await session.scalar(select(func.count(Bot.id))) or 0)
    return {c: int(listed.get(c, 0)) if c in any_listed else everyone for c in chat_ids}


async def _counts_since(session: Any, chat_ids: list[int], since: datetime) -> dict[int, int]:
    rows = await session.execute(
        select(Message.chat_id, func.count())
        .where(
            Message.chat_id.in_(chat_ids),
            Message.author_kind == "bot",
            Message.created_at >= since,
            Message.status != "failed",
        )
        .group_by(Message.chat_id)
    )
    return {c: int(n) for c, n in rows.all()}


def _row(chat: Chat, bots: int, today: int) -> ChatRow:
    return ChatRow(
        id=chat.id,
        telegram_id=chat.telegram_id,
        title=chat.title,
        kind=chat.kind or "supergroup",
        enabled=bool(chat.enabled),
        topics=list(chat.topics or []),
        msg_budget=chat.msg_budget,
        bots=bots,
        today=today,
    )


async def query_chats(
    services: Services,
    *,
    search: str = "",
    status: str | None = None,
    page: int = 1,
    per_page: int = 10,
) -> ChatPage:
    """One page of chats by title (search: part of the title, or the exact chat id)."""
    per_page = per_page if per_page in PAGE_SIZES else PAGE_SIZES[0]
    where = _filters(search, status)
    async with services.sessions() as session:
        total = int(await session.scalar(select(func.count(Chat.id)).where(*where)) or 0)
        pages = max(1, math.ceil(total / per_page))
        page = min(max(1, int(page)), pages)
        stmt = select(Chat).where(*where).order_by(Chat.title, Chat.id)
        chats = list(await session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
        ids = [c.id for c in chats]
        bots = await _bot_counts(session, ids) if ids else {}
        today = await _counts_since(session, ids, _today()) if ids else {}
    rows = [_row(c, bots.get(c.id, 0), today.get(c.id, 0)) for c in chats]
    return ChatPage(rows=rows, total=total, page=page, pages=pages, per_page=per_page)


async def _load(session: Any, ref: int | str) -> Chat:
    """A chat by its row id, or by its Telegram id (negative, or given as ``tg:<id>``)."""
    chat = None
    text = str(ref).strip()
    with contextlib.suppress(ValueError):
        number = int(text.removeprefix("tg:"))
        if number > 0 and not text.startswith("tg:"):
            chat = await session.get(Chat, number)
        if chat is None:
            chat = await session.scalar(select(Chat).where(Chat.telegram_id == number))
    if chat is None:
        raise ChatError("chats.err.no_chat", f"no chat {text!r} in the fleet", ref=text[:64])
    return chat


async def card(services: Services, ref: int | str) -> ChatCard:
    """The chat, its bots (how much each said there in the last 24 h and today), what it
    said in the last hour and what is still undelivered."""
    async with services.sessions() as session:
        chat = await _load(session, ref)
        listed = {
            b: (enabled, reason, is_listed)
            for b, enabled, reason, is_listed in (
                await session.execute(
                    select(
                        BotChat.bot_id, BotChat.enabled, BotChat.disabled_reason, BotChat.listed
                    ).where(BotChat.chat_id == chat.id)
                )
            ).all()
        }
        explicit = any(v[2] for v in listed.values())
        stmt = select(Bot.id, Bot.display_name, Bot.username, Bot.persona, Bot.enabled)
        if explicit:
            ids = [b for b, v in listed.items() if v[2] and v[0]]
            stmt = stmt.where(Bot.id.in_(ids))
        bots = (await session.execute(stmt.order_by(Bot.id).limit(200))).all()
        now = datetime.now(UTC)
        per_bot: dict[tuple[int, str], int] = {}
        for since, label in ((now - timedelta(hours=24), "24h"), (_today(), "today")):
            rows = await session.execute(
                select(Message.bot_id, func.count())
                .where(
                    Message.chat_id == chat.id,
                    Message.author_kind == "bot",
                    Message.created_at >= since,
                    Message.status != "failed",
                )
                .group_by(Message.bot_id)
            )
            for bot_id, n in rows.all():
                per_bot[(bot_id, label)] = int(n)
        hour = await _counts_since(session, [chat.id], now - timedelta(hours=1))
        pending = int(
            await session.scalar(
                select(func.count(OutboxItem.id)).where(
                    OutboxItem.chat_id == chat.id,
                    OutboxItem.state.in_(("queued", "claimed", "sending")),
                )
            )
            or 0
        )
        count = (await _bot_counts(session, [chat.id]))[chat.id]
        today = sum(v for (_b, label), v in per_bot.items() if label == "today")
        row = _row(chat, count, today)
    out = []
    for bot_id, display, username, persona, enabled in bots:
        reason = listed.get(bot_id, (True, None, False))[1]
        name = str((persona or {}).get("name") or display or username or f"bot{bot_id}")
        out.append(
            ChatBot(
                bot_id,
                name,
                bool(enabled) and reason is None,
                reason,
                per_bot.get((bot_id, "24h"), 0),
                per_bot.get((bot_id, "today"), 0),
            )
        )
    out.sort(key=lambda b: (-b.last_24h, b.name))
    return ChatCard(chat=row, bots=out, last_hour=hour.get(chat.id, 0), pending=pending)
