"""The admin chats: which they are (the environment's list, moved by the database), and
can the admin bot delete messages in them?

Which: ``PIYASA_ADMIN_CHAT_IDS`` names them, and ``chat_migrations`` rows override it: a
group upgraded to a supergroup gets a new ``-100…`` id (Bot API: the service messages
``migrate_to_chat_id``/``migrate_from_chat_id``, and a 400 whose
``parameters.migrate_to_chat_id`` names the new id), and the admin bot follows it at once
(:func:`migrated`) and after every restart (:func:`follow_moves`), so nobody has to edit
the environment for the bot to stay in its own chat.

Delete rights:
It must: a password or code typed in an admin group is deleted at once, and Telegram lets
a bot delete other people's messages in a group only when it is an administrator with the
``can_delete_messages`` right (Bot API: deleteMessage, ChatMemberAdministrator). Without
it, what was typed stays readable by the whole group. ``piyasa check`` and ``/health``
warn about it from :func:`check` / :func:`cached`.

The bot's own membership comes from ``getChatMember(chat_id, user_id=<bot id>)``; the bot
id is the number before ":" in its token (Bot API: "the token looks like
123456:ABC-DEF…", the first part is the bot's id), so no getMe is needed. The token is
part of the URL, so no URL is ever logged or returned.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from typing import Any

from piyasa.db import chat_migrations
from piyasa.services import Services

log = logging.getLogger(__name__)

CACHE_KEY = "health:admin_chat_rights"
CACHE_TTL_S = 60
DEADLINE_S = 5.0


@dataclass(frozen=True)
class ChatRights:
    """One admin chat: ``problem`` is "" (may delete) or ``not_admin`` (a plain member),
    ``no_delete`` (an admin without that right), ``not_member`` (not in the chat, or the
    chat is unknown to Telegram) or ``unreachable`` (Telegram did not answer)."""

    chat_id: int
    problem: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def _judge(chat_id: int, member: dict[str, Any]) -> ChatRights:
    status = str(member.get("status", ""))
    if status == "creator":
        return ChatRights(chat_id)
    if status == "administrator":
        if member.get("can_delete_messages"):
            return ChatRights(chat_id)
        return ChatRights(chat_id, "no_delete", status)
    if status in ("member", "restricted"):
        return ChatRights(chat_id, "not_admin", status)
    return ChatRights(chat_id, "not_member", status or "?")


async def _one(session: Any, base: str, bot_id: int, chat_id: int, deadline_s: float) -> ChatRights:
    import aiohttp

    try:
        async with session.get(
            f"{base}/getChatMember",
            params={"chat_id": str(chat_id), "user_id": str(bot_id)},
            timeout=aiohttp.ClientTimeout(total=deadline_s),
        ) as resp:
            body = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return ChatRights(chat_id, "unreachable", type(exc).__name__)
    if body.get("ok"):
        return _judge(chat_id, body.get("result") or {})
    moved = (body.get("parameters") or {}).get("migrate_to_chat_id")
    if moved and moved != chat_id:  # upgraded to a supergroup: judge the chat it became
        return await _one(session, base, bot_id, int(moved), deadline_s)
    code = int(body.get("error_code") or 0)
    if code in (400, 403):  # chat not found / bot was kicked
        return ChatRights(chat_id, "not_member", str(code))
    return ChatRights(chat_id, "unreachable", str(code or "?"))


async def check(
    api_url: str, token: str, chat_ids: tuple[int, ...], deadline_s: float = DEADLINE_S
) -> list[ChatRights]:
    """The admin bot's delete right in each of ``chat_ids`` (live)."""
    import aiohttp

    bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 0
    if not chat_ids or not bot_id:
        return []
    base = f"{api_url.rstrip('/')}/bot{token}"
    async with aiohttp.ClientSession() as session:
        return [await _one(session, base, bot_id, int(c), deadline_s) for c in chat_ids]


async def cached(services: Services) -> list[ChatRights]:
    """:func:`check` for the configured admin bot and chats, at most once a minute (the
    answer is kept in the cache, so every instance and every `/health` shares it)."""
    settings = services.settings
    if not settings.admin_bot_token or not settings.admin_chat_ids:
        return []
    kept = await services.cache.get(CACHE_KEY)
    if isinstance(kept, list):
        return [ChatRights(**item) for item in kept]
    rights = await check(
        settings.telegram_api_url, settings.admin_bot_token.reveal(), settings.admin_chat_ids
    )
    await services.cache.set(CACHE_KEY, [asdict(r) for r in rights], ttl=CACHE_TTL_S)
    return rights


def _use(services: Services, chat_ids: tuple[int, ...]) -> None:
    if chat_ids != services.settings.admin_chat_ids:
        services.settings = dataclasses.replace(services.settings, admin_chat_ids=chat_ids)


async def follow_moves(services: Services) -> tuple[int, ...]:
    """Apply the recorded moves to ``services.settings.admin_chat_ids`` (the database
    overrides the environment's list); returns the admin chat ids now in force.

    Raises what the database raises (the caller decides whether start-up goes on)."""
    async with services.sessions() as session:
        moves = await chat_migrations.load(session)
    _use(services, chat_migrations.resolve(services.settings.admin_chat_ids, moves))
    return services.settings.admin_chat_ids


async def migrated(services: Services, old: int, new: int) -> bool:
    """Admin chat ``old`` became supergroup ``new``: use ``new`` from now on.

    False when ``old`` is not an admin chat (or the move was already followed). The switch
    happens in memory before anything is awaited, so an update from the new chat that
    comes right behind is already at home; then it is stored, so it survives a restart.
    A database that refuses the write is logged: the next call to the old id meets
    Telegram's 400 and the move is followed again."""
    ids = services.settings.admin_chat_ids
    if old not in ids or old == new:
        return False
    _use(services, chat_migrations.resolve(ids, {old: new}))
    try:
        await services.cache.delete(CACHE_KEY)
        async with services.sessions() as session, session.begin():
            await chat_migrations.record(session, old, new, "admin")
    except Exception as exc:
        log.warning(
            "admin chat %s moved to %s; storing it failed: %s", old, new, type(exc).__name__
        )
    return True
