"""The fleet as the planner sees it: bots, chats, who talks where; loaded from the DB."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.models import Bot, Chat
from piyasa.db.runtime_models import BotChat


def parse_active_hours(spec: str) -> list[tuple[time, time | None]]:
    """ "09:00-18:00", "22:00-02:00" (wraps midnight), "00:00-24:00", comma separated."""
    out: list[tuple[time, time | None]] = []
    for part in (spec or "00:00-24:00").split(","):
        part = part.strip()
        if not part:
            continue
        start_s, _, end_s = part.partition("-")
        sh, sm = (int(x) for x in start_s.strip().split(":"))
        eh, em = (int(x) for x in end_s.strip().split(":"))
        out.append((time(sh, sm), None if eh >= 24 else time(eh, em)))
    return out or [(time(0, 0), None)]


def is_active(spec: str, tz: str, now_utc: datetime) -> bool:
    """Is ``now_utc`` inside the bot's active hours in its own timezone?"""
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now_utc.astimezone(zone).time().replace(tzinfo=None)
    for start, end in parse_active_hours(spec):
        if end is None:
            if local >= start:
                return True
        elif start <= end:
            if start <= local < end:
                return True
        elif local >= start or local < end:  # wraps midnight
            return True
    return False


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

    @property
    def is_group(self) -> bool:
        return self.kind in ("group", "supergroup", "channel") or self.telegram_id < 0


@dataclass
class Roster:
    bots: dict[int, BotInfo] = field(default_factory=dict)
    chats: dict[int, ChatInfo] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # chat id -> bot ids

    def by_tg_chat(self) -> dict[int, ChatInfo]:
        return {c.telegram_id: c for c in self.chats.values()}

    def bots_in(self, chat_id: int) -> list[BotInfo]:
        return [self.bots[b] for b in self.members.get(chat_id, []) if b in self.bots]


async def load_roster(sessions: async_sessionmaker[AsyncSession]) -> Roster:
    async with sessions() as session:
        bots = (await session.scalars(select(Bot))).all()
        chats = (await session.scalars(select(Chat))).all()
        links = (
            await session.execute(select(BotChat.bot_id, BotChat.chat_id, BotChat.enabled))
        ).all()
    roster = Roster()
    for b in bots:
        roster.bots[b.id] = BotInfo(
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
        )
    for c in chats:
        roster.chats[c.id] = ChatInfo(
            id=c.id,
            telegram_id=c.telegram_id,
            title=c.title,
            kind=c.kind or "supergroup",
            topics=list(c.topics or []),
            enabled=bool(c.enabled),
        )
    explicit: dict[int, list[int]] = {}
    for bot_id, chat_id, enabled in links:
        explicit.setdefault(chat_id, [])
        if enabled:
            explicit[chat_id].append(bot_id)
    all_bots = sorted(roster.bots)
    for chat_id in roster.chats:
        roster.members[chat_id] = sorted(explicit[chat_id]) if chat_id in explicit else all_bots
    return roster
