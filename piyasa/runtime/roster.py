"""The fleet as the planner sees it: bots, chats, who talks where; loaded from the DB.

Bots and pairs the fleet disabled (``disabled_reason``, see ``piyasa.runtime.disable``)
are loaded as such: a disabled bot is not ``enabled``, a disabled pair is left out of its
chat's members and refused by ``pair_ok``. A bot whose schedule does not validate is
loaded disabled too, with the validator's message, and listed in ``invalid`` so the
fleet records it; the rest of the roster loads as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.models import Bot, Chat
from piyasa.db.runtime_models import BotChat
from piyasa.runtime.schedule import ScheduleError, is_active, parse_active_hours, validate_schedule

__all__ = ["BotInfo", "ChatInfo", "Roster", "is_active", "load_roster", "parse_active_hours"]


@dataclass
class BotInfo:
    id: int
    telegram_id: int | None
    username: str | None
    display_name: str | None
    persona: dict[str, Any]
    active_hours: str
    timezone: str
    hourly_limit: int
    enabled: bool
    token_encrypted: str = field(repr=False, default="")
    disabled_reason: str | None = None  # set when the fleet (not an operator) disabled it
    disabled_at: datetime | None = None

    @property
    def name(self) -> str:
        return str(
            self.persona.get("name") or self.display_name or self.username or f"bot{self.id}"
        )


@dataclass
class ChatInfo:
    id: int
    telegram_id: int
    title: str | None
    kind: str
    topics: list[str]
    enabled: bool
    msg_budget: int | None = None  # fleet messages per hour here; None: no cap of its own

    @property
    def is_group(self) -> bool:
        return self.kind in ("group", "supergroup", "channel") or self.telegram_id < 0


@dataclass
class PairDisabled:
    reason: str
    at: datetime | None


@dataclass
class Roster:
    bots: dict[int, BotInfo] = field(default_factory=dict)
    chats: dict[int, ChatInfo] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # chat id -> bot ids
    disabled_pairs: dict[tuple[int, int], PairDisabled] = field(default_factory=dict)
    invalid: dict[int, str] = field(default_factory=dict)  # bot id -> why its data is bad

    def by_tg_chat(self) -> dict[int, ChatInfo]:
        return {c.telegram_id: c for c in self.chats.values()}

    def bots_in(self, chat_id: int) -> list[BotInfo]:
        return [self.bots[b] for b in self.members.get(chat_id, []) if b in self.bots]

    def pair_ok(self, bot_id: int, chat_id: int) -> bool:
        """False when the fleet disabled this bot in this chat."""
        return (bot_id, chat_id) not in self.disabled_pairs

    def disable_pair(self, bot_id: int, chat_id: int, reason: str, at: datetime | None) -> None:
        self.disabled_pairs[(bot_id, chat_id)] = PairDisabled(reason, at)
        members = self.members.get(chat_id)
        if members and bot_id in members:
            self.members[chat_id] = [b for b in members if b != bot_id]

    def disable_bot(self, bot_id: int, reason: str, at: datetime | None) -> None:
        bot = self.bots.get(bot_id)
        if bot is not None:
            bot.enabled, bot.disabled_reason, bot.disabled_at = False, reason, at


async def load_roster(sessions: async_sessionmaker[AsyncSession]) -> Roster:
    async with sessions() as session:
        bots = (await session.scalars(select(Bot))).all()
        chats = (await session.scalars(select(Chat))).all()
        links = (
            await session.execute(
                select(
                    BotChat.bot_id,
                    BotChat.chat_id,
                    BotChat.enabled,
                    BotChat.listed,
                    BotChat.disabled_reason,
                    BotChat.disabled_at,
                )
            )
        ).all()
    roster = Roster()
    for b in bots:
        info = roster.bots[b.id] = BotInfo(
            id=b.id,
            telegram_id=b.telegram_id,
            username=b.username,
            display_name=b.display_name,
            persona=dict(b.persona or {}),
            active_hours=b.active_hours or "00:00-24:00",
            timezone=b.timezone or "UTC",
            hourly_limit=int(b.hourly_limit or 0),
            enabled=bool(b.enabled),
            token_encrypted=b.token_encrypted,
            disabled_reason=b.disabled_reason,
            disabled_at=b.disabled_at,
        )
        if info.enabled:
            try:
                validate_schedule(info.active_hours, info.timezone)
            except ScheduleError as exc:
                roster.invalid[b.id] = str(exc)
                info.enabled, info.disabled_reason = False, str(exc)
    for c in chats:
        roster.chats[c.id] = ChatInfo(
            id=c.id,
            telegram_id=c.telegram_id,
            title=c.title,
            kind=c.kind or "supergroup",
            topics=list(c.topics or []),
            enabled=bool(c.enabled),
            msg_budget=c.msg_budget,
        )
    explicit: dict[int, list[int]] = {}
    for bot_id, chat_id, enabled, listed, reason, at in links:
        if listed:
            explicit.setdefault(chat_id, [])
            if enabled:
                explicit[chat_id].append(bot_id)
        if reason:
            roster.disabled_pairs[(bot_id, chat_id)] = PairDisabled(reason, at)
    all_bots = sorted(roster.bots)
    for chat_id in roster.chats:
        members = sorted(explicit[chat_id]) if chat_id in explicit else all_bots
        roster.members[chat_id] = [b for b in members if roster.pair_ok(b, chat_id)]
    return roster
