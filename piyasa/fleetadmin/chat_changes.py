"""Changes to the fleet's chats: enable/disable, title, topics, per-chat budget, remove.

Each one is validated first (:class:`~piyasa.fleetadmin.chats.ChatError` with a catalog key,
nothing changed), audited, and reaches this process's running fleet at once
(:func:`~piyasa.fleetadmin.chats.apply_now`). Reading (list, card) is in
:mod:`piyasa.fleetadmin.chats`, adding in :mod:`piyasa.fleetadmin.chat_add`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, select

from piyasa.db.models import Chat
from piyasa.db.runtime_models import OutboxItem
from piyasa.fleetadmin.chats import (
    MAX_BUDGET,
    MAX_TITLE,
    MAX_TOPICS,
    TOPIC_RE,
    ChatError,
    ChatRow,
    _audit,
    _load,
    _row,
    apply_now,
)
from piyasa.services import Services


async def _change(
    services: Services, ref: int | str, actor: str, action: str, edit: Any, **params: Any
) -> ChatRow:
    async with services.sessions() as session, session.begin():
        chat = await _load(session, ref)
        before = edit(chat)
        await session.flush()
        row = _row(chat, 0, 0)
    await _audit(services, actor, action, chat, before=before, **params)
    await apply_now(services)
    return row


async def set_enabled(services: Services, ref: int | str, on: bool, *, actor: str) -> ChatRow:
    """Let the fleet talk in the chat (``on``) or stop it there; queued messages stay."""

    def edit(chat: Chat) -> bool:
        before, chat.enabled = bool(chat.enabled), bool(on)
        return before

    return await _change(services, ref, actor, "chats.enable", edit, enabled=bool(on))


def clean_title(raw: str) -> str:
    title = " ".join(str(raw or "").split())
    if not title:
        raise ChatError("chats.err.title_empty", "the title is empty")
    if len(title) > MAX_TITLE:
        raise ChatError("chats.err.title_long", f"at most {MAX_TITLE} characters", max=MAX_TITLE)
    return title


async def set_title(services: Services, ref: int | str, raw: str, *, actor: str) -> ChatRow:
    """The name the fleet shows for the chat (Telegram's own title is not changed)."""
    title = clean_title(raw)

    def edit(chat: Chat) -> str | None:
        before, chat.title = chat.title, title
        return before

    return await _change(services, ref, actor, "chats.title", edit, title=title)


def clean_topics(raw: str | list[str]) -> list[str]:
    """``raw`` (a list, or text separated by commas or spaces) as a topic list: lowercase,
    each ``[\\w-]{1,32}``, no repeats, 1..12 of them. ChatError otherwise."""
    items = raw if isinstance(raw, list) else re.split(r"[,\s]+", str(raw or ""))
    topics: list[str] = []
    for item in items:
        topic = str(item).strip().lower().lstrip("#")
        if not topic:
            continue
        if not TOPIC_RE.match(topic):
            raise ChatError("chats.err.topic_bad", f"{topic!r} is not a topic", topic=topic[:32])
        if topic not in topics:
            topics.append(topic)
    if not topics:
        raise ChatError("chats.err.topics_empty", "a chat needs at least one topic")
    if len(topics) > MAX_TOPICS:
        raise ChatError("chats.err.topics_many", f"at most {MAX_TOPICS} topics", max=MAX_TOPICS)
    return topics


async def set_topics(
    services: Services, ref: int | str, raw: str | list[str], *, actor: str
) -> ChatRow:
    """What the fleet talks about there (BIST, FX, crypto, macro, or custom ones)."""
    topics = clean_topics(raw)

    def edit(chat: Chat) -> list[str]:
        before, chat.topics = list(chat.topics or []), topics
        return before

    return await _change(services, ref, actor, "chats.topics", edit, topics=topics)


async def toggle_topic(services: Services, ref: int | str, topic: str, *, actor: str) -> ChatRow:
    """Add ``topic`` to the chat's topics, or take it out (never the last one)."""
    async with services.sessions() as session:
        chat = await _load(session, ref)
        topics = list(chat.topics or [])
    topic = topic.strip().lower()
    topics = [t for t in topics if t != topic] if topic in topics else [*topics, topic]
    return await set_topics(services, ref, topics, actor=actor)


def clean_budget(raw: Any) -> int | None:
    """Messages per hour, 1..1200; ``off``/``none``/empty: no budget of its own."""
    text = str(raw if raw is not None else "").strip().lower()
    if text in ("", "off", "none", "-", "yok", "kapalı", "kapali"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise ChatError("chats.err.budget", "a whole number", max=MAX_BUDGET) from None
    if not 1 <= value <= MAX_BUDGET:
        raise ChatError("chats.err.budget", f"1 to {MAX_BUDGET} an hour", max=MAX_BUDGET)
    return value


async def set_budget(services: Services, ref: int | str, raw: Any, *, actor: str) -> ChatRow:
    """The chat's own cap on fleet messages per hour (None: the fleet's budget only)."""
    budget = clean_budget(raw)

    def edit(chat: Chat) -> int | None:
        before, chat.msg_budget = chat.msg_budget, budget
        return before

    return await _change(services, ref, actor, "chats.budget", edit, budget=budget)


async def remove_chat(services: Services, ref: int | str, *, actor: str) -> str:
    """Take the chat out of the fleet with its history. Refused while it is enabled or has
    undelivered messages (disable it, let them go out, then remove): nothing decided is
    dropped. Returns the chat's name."""
    async with services.sessions() as session, session.begin():
        chat = await _load(session, ref)
        if chat.enabled:
            raise ChatError("chats.err.remove_enabled", "disable the chat first")
        pending = int(
            await session.scalar(
                select(func.count(OutboxItem.id)).where(
                    OutboxItem.chat_id == chat.id,
                    OutboxItem.state.in_(("queued", "claimed", "sending")),
                )
            )
            or 0
        )
        if pending:
            raise ChatError("chats.err.remove_pending", f"{pending} undelivered", n=pending)
        name = chat.title or str(chat.telegram_id)
        await session.execute(delete(Chat).where(Chat.id == chat.id))
    await _audit(services, actor, "chats.remove", chat)
    await apply_now(services)
    return name
