"""The fleet's bots as operators see them: the list with live status, and one bot's card.

Reads only; changes are in :mod:`piyasa.fleetadmin.bot_changes`. Every function takes the
service container and returns dataclasses, for chat (``chatops/commands/bots.py``) and the
shell (``piyasa bot``) alike. Status figures come from the database (messages, outbox) so
every instance shows the same; the breaker state comes from the fleet running in this
process (``services.extras["fleet"]``), when there is one.

Membership follows the fleet's own rule (``piyasa.runtime.roster.load_roster``): a chat
without listed rows has every bot, otherwise its listed, enabled rows; pairs the fleet
disabled are left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from piyasa.db.models import Bot, Message
from piyasa.db.runtime_models import OutboxItem
from piyasa.runtime.roster import load_roster
from piyasa.runtime.schedule import ScheduleError, is_active
from piyasa.services import Services

STATUSES = ("enabled", "disabled", "system", "active_now", "inactive_now")
"""List filters: enabled; disabled (by anyone); disabled by the system (kicked, token
revoked, bad schedule); inside its active hours now; outside them."""
PAGE_SIZE = 8
SPEED_PROFILES: dict[str, int] = {"slow": 10, "normal": 30, "fast": 60}
"""Speed profile -> messages per hour at most (``bots.hourly_limit``); a limit set by
hand makes the profile ``custom``."""
HOURLY_LIMIT_RANGE = (1, 1000)


class BotError(ValueError):
    """A refusal with a catalog key (``bots.err.*``) and its parameters; nothing changed.

    ``str(error)`` is an English sentence for the shell and logs, never with a secret.
    """

    def __init__(self, key: str, message: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(message)


@dataclass(frozen=True)
class BotRow:
    """One line of the list."""

    id: int
    username: str | None
    name: str
    enabled: bool
    active_now: bool | None  # None: its schedule does not validate
    last_message_at: datetime | None
    messages_today: int  # sent since 00:00 UTC
    errors_1h: int  # messages that failed in the last hour
    r429_1h: int  # its messages that met a 429 in the last hour and wait for a retry
    breaker: str | None  # closed | open | half_open; None without a fleet in this process
    disabled_reason: str | None  # set when the system (not an operator) disabled it

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_message_at"] = self.last_message_at.isoformat() if self.last_message_at else None
        return out


@dataclass(frozen=True)
class BotPage:
    rows: list[BotRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class ChatLink:
    id: int
    telegram_id: int
    title: str
    member: bool
    disabled_reason: str | None = None  # the fleet stopped this bot in this chat


@dataclass(frozen=True)
class BotCard:
    row: BotRow
    telegram_id: int | None
    display_name: str | None
    persona: dict[str, Any]
    active_hours: str
    timezone: str
    speed_profile: str
    hourly_limit: int
    token_hint: str  # the public bot-id part of the token only: "123456:…"
    created_at: datetime | None
    chats: list[ChatLink] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.row.as_json(),
            "telegram_id": self.telegram_id,
            "display_name": self.display_name,
            "persona": self.persona,
            "active_hours": self.active_hours,
            "timezone": self.timezone,
            "speed_profile": self.speed_profile,
            "hourly_limit": self.hourly_limit,
            "token": self.token_hint,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "chats": [asdict(c) for c in self.chats],
        }


def bot_name(bot: Bot) -> str:
    persona = bot.persona or {}
    return str(persona.get("name") or bot.display_name or bot.username or f"bot{bot.id}")


def _active(bot: Bot, now: datetime) -> bool | None:
    try:
        return is_active(bot.active_hours or "", bot.timezone or "UTC", now)
    except ScheduleError:
        return None


def _breakers(services: Services) -> dict[int, str]:
    fleet = services.extras.get("fleet")
    board = getattr(fleet, "bot_breakers", None)
    if board is None:
        return {}
    return {int(k): str(b.state) for k, b in board.items()}


async def _stats(
    services: Services, ids: list[int], now: datetime
) -> dict[int, tuple[datetime | None, int, int, int]]:
    """bot id -> (last sent, sent today, failed in the last hour, 429s waiting)."""
    if not ids:
        return {}
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour_ago = now - timedelta(hours=1)
    sent = Message.status == "sent"
    async with services.sessions() as session:
        last = dict(
            (
                await session.execute(
                    select(Message.bot_id, func.max(Message.sent_at))
                    .where(Message.bot_id.in_(ids), sent)
                    .group_by(Message.bot_id)
                )
            ).all()
        )
        today = dict(
            (
                await session.execute(
                    select(Message.bot_id, func.count())
                    .where(Message.bot_id.in_(ids), sent, Message.sent_at >= midnight)
                    .group_by(Message.bot_id)
                )
            ).all()
        )
        failed = dict(
            (
                await session.execute(
                    select(Message.bot_id, func.count())
                    .where(
                        Message.bot_id.in_(ids),
                        Message.status == "failed",
                        Message.created_at >= hour_ago,
                    )
                    .group_by(Message.bot_id)
                )
            ).all()
        )
        limited = dict(
            (
                await session.execute(
                    select(OutboxItem.bot_id, func.count())
                    .where(
                        OutboxItem.bot_id.in_(ids),
                        OutboxItem.last_error.like("429%"),
                        OutboxItem.decided_at >= hour_ago,
                    )
                    .group_by(OutboxItem.bot_id)
                )
            ).all()
        )
    return {
        i: (last.get(i), int(today.get(i, 0)), int(failed.get(i, 0)), int(limited.get(i, 0)))
        for i in ids
    }


def _matches(bot: Bot, search: str, status: str | None, now: datetime) -> bool:
    if search:
        hay = " ".join(
            str(x or "") for x in (bot.username, bot.display_name, (bot.persona or {}).get("name"))
        ).lower()
        if search.lower().lstrip("@") not in hay and search != str(bot.id):
            return False
    if status == "enabled":
        return bool(bot.enabled)
    if status == "disabled":
        return not bot.enabled
    if status == "system":
        return not bot.enabled and bool(bot.disabled_reason)
    if status in ("active_now", "inactive_now"):
        return bool(bot.enabled) and (_active(bot, now) is True) == (status == "active_now")
    return True


def _row(bot: Bot, stats: tuple[Any, int, int, int], breakers: dict[int, str], now: datetime):
    last, today, failed, limited = stats
    return BotRow(
        id=bot.id,
        username=bot.username,
        name=bot_name(bot),
        enabled=bool(bot.enabled),
        active_now=_active(bot, now),
        last_message_at=last,
        messages_today=today,
        errors_1h=failed,
        r429_1h=limited,
        breaker=breakers.get(bot.id),
        disabled_reason=bot.disabled_reason,
    )


async def list_bots(
    services: Services,
    *,
    search: str = "",
    status: str | None = None,
    page: int = 1,
    per_page: int = PAGE_SIZE,
    now: datetime | None = None,
) -> BotPage:
    """One page of bots sorted by name, filtered by ``search`` (username, name or id) and
    ``status`` (one of :data:`STATUSES`); a page past the end shows the last one."""
    now = now or datetime.now(UTC)
    async with services.sessions() as session:
        bots = (await session.scalars(select(Bot))).all()
    chosen = sorted(
        (b for b in bots if _matches(b, search.strip(), status, now)),
        key=lambda b: (bot_name(b).lower(), b.id),
    )
    pages = max(1, math.ceil(len(chosen) / per_page))
    page = min(max(1, page), pages)
    shown = chosen[(page - 1) * per_page : page * per_page]
    stats = await _stats(services, [b.id for b in shown], now)
    breakers = _breakers(services)
    rows = [_row(b, stats[b.id], breakers, now) for b in shown]
    return BotPage(rows=rows, total=len(chosen), page=page, pages=pages)


async def get_bot(services: Services, ref: int | str) -> Bot:
    """The bot ``ref`` names: its id, ``@username`` or username; BotError ``no_bot``."""
    text = str(ref).strip()
    async with services.sessions() as session:
        bot = None
        if text.isdigit():
            bot = await session.get(Bot, int(text))
        if bot is None and text:
            name = text.lstrip("@").lower()
            bot = await session.scalar(select(Bot).where(func.lower(Bot.username) == name))
    if bot is None:
        raise BotError("bots.err.no_bot", f"no fleet bot {text!r}", ref=text)
    return bot


async def card(services: Services, ref: int | str, now: datetime | None = None) -> BotCard:
    """Everything about one bot (its token only as the public bot-id part)."""
    now = now or datetime.now(UTC)
    bot = await get_bot(services, ref)
    stats = await _stats(services, [bot.id], now)
    roster = await load_roster(services.sessions)
    chats = []
    for chat in sorted(roster.chats.values(), key=lambda c: (c.title or "", c.id)):
        pair = roster.disabled_pairs.get((bot.id, chat.id))
        chats.append(
            ChatLink(
                id=chat.id,
                telegram_id=chat.telegram_id,
                title=chat.title or str(chat.telegram_id),
                member=bot.id in roster.members.get(chat.id, []) or pair is not None,
                disabled_reason=pair.reason if pair else None,
            )
        )
    return BotCard(
        row=_row(bot, stats[bot.id], _breakers(services), now),
        telegram_id=bot.telegram_id,
        display_name=bot.display_name,
        persona=dict(bot.persona or {}),
        active_hours=bot.active_hours,
        timezone=bot.timezone,
        speed_profile=bot.speed_profile or "normal",
        hourly_limit=int(bot.hourly_limit or 0),
        token_hint=f"{bot.telegram_id}:…" if bot.telegram_id else "…",
        created_at=bot.created_at,
        chats=chats,
    )
