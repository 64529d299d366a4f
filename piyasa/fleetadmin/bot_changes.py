"""Changes to fleet bots: enable/disable, rename, persona, schedule, speed, chats, token,
add and remove — each validated first (a refusal changes nothing) and applied to the fleet
running in this process at once (``services.extras["fleet"]``: the roster is reloaded;
other instances pick it up at their next roster refresh, ``Fleet.roster_refresh_s``).

Refusals are :class:`~piyasa.fleetadmin.bots.BotError` or
:class:`~piyasa.fleetadmin.persona.PersonaError`, each with a catalog key. Tokens are
checked with getMe (``piyasa.admin.setup.verify``), sealed with ``services.box`` at once and
never returned, logged or put in an error. Auditing is the caller's: the chat pipeline
writes one row per command and press, the shell its own (actor ``cli``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from piyasa.admin.setup import verify
from piyasa.config import TELEGRAM_TOKEN_RE
from piyasa.crypto import fingerprint
from piyasa.db.models import Bot, Chat
from piyasa.db.runtime_models import BotChat
from piyasa.fleetadmin import persona as personas
from piyasa.fleetadmin.bots import (
    HOURLY_LIMIT_RANGE,
    SPEED_PROFILES,
    BotError,
    bot_name,
    get_bot,
)
from piyasa.runtime.schedule import ScheduleError, validate_active_hours, validate_timezone
from piyasa.services import Services

TOKEN_REVOKED_PREFIX = "Telegram refused its token"  # piyasa.runtime.disable's wording


@dataclass(frozen=True)
class BotChange:
    """What changed: ``field`` went from ``old`` to ``new`` on bot ``bot_id``."""

    bot_id: int
    name: str
    field: str
    old: Any
    new: Any


async def apply_now(services: Services, *, quiesce: bool = False) -> None:
    """The fleet of this process re-reads its roster now; ``quiesce`` also waits out the
    sends already under way, so after a disable nothing more of the bot goes out."""
    from piyasa.cluster.changes import announce

    await announce(services, "roster")
    fleet = services.extras.get("fleet")
    if fleet is None or not getattr(fleet, "started", False):
        return
    await fleet.reload_roster()
    if quiesce and fleet.gate is not None:
        await fleet.gate.quiesce()


async def _update(services: Services, ref: int | str, field: str, **values: Any) -> BotChange:
    """Write ``values`` to the bot's row; the change of ``field`` (old, new) is returned."""
    bot = await get_bot(services, ref)
    async with services.sessions() as session, session.begin():
        row = await session.get(Bot, bot.id)
        if row is None:
            raise BotError("bots.err.no_bot", f"no fleet bot {ref!r}", ref=str(ref))
        old = getattr(row, field)
        old = dict(old) if isinstance(old, dict) else old
        for key, value in values.items():
            setattr(row, key, value)
        new, name = getattr(row, field), bot_name(row)
    await apply_now(services)
    return BotChange(bot.id, name, field, old, new)


# -- enable / disable ---------------------------------------------------------------------


async def set_enabled(
    services: Services, ref: int | str, enabled: bool, *, actor: str
) -> BotChange:
    """Enable (clearing a system reason: kicked, token revoked…) or disable a bot.

    A disabled bot is no longer chosen by the planner, stops polling, and its messages not
    yet sent are failed with the reason instead of going out (``Disabler.why``); when this
    returns, no send of it is under way in this process.
    """
    bot = await get_bot(services, ref)
    old = bool(bot.enabled)
    fleet = services.extras.get("fleet")
    if enabled and fleet is not None and getattr(fleet, "started", False):
        await fleet.control.enable(bot.id, actor=actor)  # writes, events, reloads
    elif enabled:
        await _update(
            services, bot.id, "enabled", enabled=True, disabled_reason=None, disabled_at=None
        )
    else:
        await _update(
            services,
            bot.id,
            "enabled",
            enabled=False,
            disabled_reason=None,
            disabled_at=datetime.now(UTC),
        )
        await apply_now(services, quiesce=True)
    return BotChange(bot.id, bot_name(bot), "enabled", old, bool(enabled))


# -- names, persona -------------------------------------------------------------------------


async def rename(services: Services, ref: int | str, name: str, *, actor: str) -> BotChange:
    """The bot's name (persona ``name`` and display name); validated as a persona name."""
    clean = personas.validate_field("name", name)
    if not clean:
        raise personas.PersonaError("name", "bots.err.persona.empty")
    bot = await get_bot(services, ref)
    persona = {**(bot.persona or {}), "name": clean}
    await _update(services, bot.id, "display_name", display_name=clean, persona=persona)
    return BotChange(bot.id, clean, "name", bot_name(bot), clean)


async def set_persona(
    services: Services, ref: int | str, persona: dict[str, Any], *, actor: str
) -> BotChange:
    """Store a whole persona (validated by :func:`~piyasa.fleetadmin.persona.validate_persona`)."""
    clean = personas.validate_persona(persona)
    return await _update(services, ref, "persona", persona=clean)


async def set_persona_field(
    services: Services, ref: int | str, field: str, text: str, *, actor: str
) -> BotChange:
    """One persona field from typed text (:func:`~piyasa.fleetadmin.persona.parse_field`);
    an empty optional field is removed."""
    value = personas.parse_field(field, text)
    bot = await get_bot(services, ref)
    persona = dict(bot.persona or {})
    old = persona.get(field)
    if value in ("", [], {}):
        persona.pop(field, None)
    else:
        persona[field] = value
    await set_persona(services, bot.id, persona, actor=actor)
    return BotChange(bot.id, bot_name(bot), f"persona.{field}", old, value)


# -- schedule and speed ---------------------------------------------------------------------


async def set_active_hours(
    services: Services, ref: int | str, spec: str, *, actor: str
) -> BotChange:
    """``HH:MM-HH:MM`` ranges, comma separated, in the bot's time zone; BotError
    ``bad_hours`` for "9-18", "25:00-26:00" and the like."""
    try:
        clean = validate_active_hours((spec or "").strip())
    except ScheduleError as exc:
        raise BotError("bots.err.bad_hours", str(exc), value=spec) from None
    return await _update(services, ref, "active_hours", active_hours=clean)


async def set_timezone(services: Services, ref: int | str, name: str, *, actor: str) -> BotChange:
    """An IANA zone name (``Europe/Istanbul``); BotError ``bad_timezone`` otherwise."""
    try:
        clean = validate_timezone((name or "").strip())
    except ScheduleError as exc:
        raise BotError("bots.err.bad_timezone", str(exc), value=name) from None
    return await _update(services, ref, "timezone", timezone=clean)


async def set_speed(services: Services, ref: int | str, profile: str, *, actor: str) -> BotChange:
    """A speed profile of :data:`~piyasa.fleetadmin.bots.SPEED_PROFILES` (sets the hourly
    limit to the profile's)."""
    if profile not in SPEED_PROFILES:
        raise BotError(
            "bots.err.bad_speed",
            f"speed must be one of {', '.join(SPEED_PROFILES)}",
            choices=", ".join(SPEED_PROFILES),
        )
    return await _update(
        services, ref, "speed_profile", speed_profile=profile, hourly_limit=SPEED_PROFILES[profile]
    )


async def set_hourly_limit(
    services: Services, ref: int | str, value: str | int, *, actor: str
) -> BotChange:
    """Messages per hour at most, 1 to 1000 (profile becomes ``custom``)."""
    low, high = HOURLY_LIMIT_RANGE
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if n is None or not low <= n <= high:
        raise BotError(
            "bots.err.bad_limit",
            f"the hourly limit must be a whole number from {low} to {high}",
            value=str(value),
            low=low,
            high=high,
        )
    return await _update(services, ref, "hourly_limit", hourly_limit=n, speed_profile="custom")


# -- chats ----------------------------------------------------------------------------------


async def _check_in_chat(services: Services, bot: Bot, chat: Chat) -> None:
    """getChat with the bot's own token: Telegram answers only for chats it is in."""
    token = services.box.decrypt(bot.token_encrypted)
    got = await verify.telegram_get_chat(
        services.settings.telegram_api_url, token, chat.telegram_id
    )
    if not got.ok:
        raise BotError(
            "bots.err.not_in_chat",
            f"the bot is not in chat {chat.title or chat.telegram_id} ({got.problem}); "
            "add it to the group first",
            chat=chat.title or str(chat.telegram_id),
        )


async def set_member(
    services: Services,
    ref: int | str,
    chat_id: int,
    member: bool,
    *,
    actor: str,
    check: bool = True,
) -> BotChange:
    """Put the bot in chat ``chat_id`` (a ``chats.id``; Telegram must confirm it is there
    when ``check``) or take it out. A chat where every bot talked becomes a list of its
    current bots first, so taking one out leaves the others in."""
    bot = await get_bot(services, ref)
    async with services.sessions() as session:
        chat = await session.get(Chat, chat_id)
    if chat is None:
        raise BotError("bots.err.no_chat", f"no fleet chat {chat_id}", ref=str(chat_id))
    if member and check:
        await _check_in_chat(services, bot, chat)
    async with services.sessions() as session, session.begin():
        rows = {
            r.bot_id: r
            for r in (
                await session.scalars(select(BotChat).where(BotChat.chat_id == chat_id))
            ).all()
        }
        listed = any(r.listed for r in rows.values())
        if not listed:  # everyone talks here: write the list out before changing it
            old = True
            for other in (await session.scalars(select(Bot.id))).all():
                row = rows.get(other)
                if row is None:
                    row = rows[other] = BotChat(bot_id=other, chat_id=chat_id, enabled=True)
                    session.add(row)
                row.listed, row.enabled = True, True
        else:
            mine = rows.get(bot.id)
            old = bool(mine and mine.listed and mine.enabled)
        row = rows.get(bot.id)
        if row is None:
            row = BotChat(bot_id=bot.id, chat_id=chat_id)
            session.add(row)
        row.listed, row.enabled = True, bool(member)
        if member:
            row.disabled_reason, row.disabled_at = None, None
    await apply_now(services)
    return BotChange(bot.id, bot_name(bot), f"chat.{chat.title or chat.telegram_id}", old, member)


# -- tokens: add, rotate ------------------------------------------------------------------------


async def check_token(services: Services, token: str) -> dict[str, Any]:
    """getMe with ``token``: ``{"id", "username", "first_name"}``, or BotError
    (``bad_token_format``, ``token_refused``, ``telegram_unreachable``, ``is_admin_bot``)."""
    token = (token or "").strip()
    if not TELEGRAM_TOKEN_RE.match(token):
        raise BotError(
            "bots.err.bad_token_format",
            "that is not a bot token; BotFather gives one like 123456789:AA…",
        )
    me = await verify.telegram_get_me(services.settings.telegram_api_url, token)
    if not me.ok:
        if me.problem in ("unreachable", "timeout"):
            raise BotError("bots.err.telegram_unreachable", "Telegram cannot be reached; try again")
        raise BotError(
            "bots.err.token_refused",
            f"Telegram refused the token ({me.detail or me.problem}); nothing was changed",
            detail=me.detail or me.problem,
        )
    admin = services.settings.admin_bot_token.reveal()
    if admin and admin.split(":", 1)[0] == str(me.data["id"]):
        raise BotError("bots.err.is_admin_bot", "that is the admin bot's token, not a fleet bot's")
    return me.data


async def add_bot(
    services: Services,
    token: str,
    persona: dict[str, Any],
    *,
    actor: str,
    enabled: bool = False,
    me: dict[str, Any] | None = None,
) -> int:
    """A new fleet bot (getMe checked unless ``me`` is its answer); its id. Added
    ``enabled`` False by default: the Add bot dialog enables it after the preview."""
    me = me or await check_token(services, token)
    clean = personas.validate_persona(
        {"name": me.get("first_name") or me.get("username") or "bot", **persona}
    )
    async with services.sessions() as session, session.begin():
        clash = await session.scalar(
            select(Bot.id).where(
                (Bot.token_fingerprint == fingerprint(token.strip()))
                | (Bot.telegram_id == int(me["id"]))
            )
        )
        if clash is not None:
            raise BotError(
                "bots.err.already_fleet", "that bot is already in the fleet", ref=str(clash)
            )
        row = Bot(
            telegram_id=int(me["id"]),
            token_encrypted=services.box.encrypt(token.strip()),
            token_fingerprint=fingerprint(token.strip()),
            username=me.get("username") or None,
            display_name=clean["name"],
            persona=clean,
            enabled=enabled,
        )
        session.add(row)
        await session.flush()
        new_id = int(row.id)
    await apply_now(services)
    return new_id


async def rotate_token(services: Services, ref: int | str, token: str, *, actor: str) -> BotChange:
    """Replace the bot's token once the new one works: getMe must accept it and name the
    same bot; until then the old token stays. A bot the system disabled because Telegram
    refused its old token is enabled again."""
    bot = await get_bot(services, ref)
    me = await check_token(services, token)
    if bot.telegram_id is not None and int(me["id"]) != int(bot.telegram_id):
        raise BotError(
            "bots.err.other_bot",
            f"that token belongs to @{me.get('username')}, not to this bot; nothing was changed",
            other=me.get("username") or str(me["id"]),
        )
    values: dict[str, Any] = {
        "token_encrypted": services.box.encrypt(token.strip()),
        "token_fingerprint": fingerprint(token.strip()),
        "telegram_id": int(me["id"]),
    }
    if not bot.enabled and (bot.disabled_reason or "").startswith(TOKEN_REVOKED_PREFIX):
        values.update(enabled=True, disabled_reason=None, disabled_at=None)
    await _update(services, bot.id, "token_fingerprint", **values)
    return BotChange(bot.id, bot_name(bot), "token", "…", "…")


# -- remove -----------------------------------------------------------------------------------


async def remove_bot(services: Services, ref: int | str, typed: str, *, actor: str) -> str:
    """Delete the bot (its memberships and undelivered messages; sent messages stay, without
    their bot). ``typed`` must be its username (with or without @) or, without one, its id:
    BotError ``name_mismatch`` otherwise. Returns the name it had."""
    bot = await get_bot(services, ref)
    expected = (bot.username or str(bot.id)).lower()
    if (typed or "").strip().lstrip("@").lower() != expected:
        raise BotError(
            "bots.err.name_mismatch",
            f"type the bot's username ({expected}) to remove it; nothing was removed",
            expected=expected,
        )
    name = bot_name(bot)
    async with services.sessions() as session, session.begin():
        await session.execute(delete(Bot).where(Bot.id == bot.id))
    await apply_now(services, quiesce=True)
    return name
