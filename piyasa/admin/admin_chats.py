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

Adopted in chat: an admin adds the bot to a group with the /setup wizard's link; the group
is a *candidate* (:func:`propose`, kept in the cache for :data:`CANDIDATE_TTL_S`) while the
admin is asked in private, and Yes stores it (:func:`adopt`, table ``admin_chats``), read
with the environment's list at every start (:func:`follow_moves`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from piyasa.db import chat_migrations
from piyasa.db.models import AdminChat
from piyasa.services import Services

log = logging.getLogger(__name__)

CACHE_KEY = "health:admin_chat_rights"
CACHE_TTL_S = 60
DEADLINE_S = 5.0
CANDIDATE_KEY = "admin_chat:candidate:{chat_id}"
CANDIDATE_TTL_S = 30 * 60  # time to promote the bot and answer the private question
_HOOKS = "admin_chats.on_adopted"
Hook = Callable[[int], Awaitable[None]]


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
    """Add the admin chats adopted in chat (``admin_chats`` rows) to
    ``services.settings.admin_chat_ids`` and apply the recorded moves (the database
    overrides the environment's list); returns the admin chat ids now in force.

    Raises what the database raises (the caller decides whether start-up goes on)."""
    async with services.sessions() as session:
        moves = await chat_migrations.load(session)
        adopted = (await session.scalars(select(AdminChat.chat_id))).all()
    ids = (*services.settings.admin_chat_ids, *(int(c) for c in adopted))
    _use(services, chat_migrations.resolve(ids, moves))
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


# --- adopting a group from chat ------------------------------------------------------------


@dataclass(frozen=True)
class Inspected:
    """A group offered as an admin chat: ``problem`` is "" (it will do), ``not_visible``
    (getChat failed: the bot is not in it, ``detail`` says why), ``not_group`` (a private
    chat or a channel) or one of :class:`ChatRights`' problems."""

    chat_id: int
    title: str = ""
    kind: str = ""
    problem: str = ""
    detail: str = ""


async def inspect(api_url: str, token: str, chat_id: int) -> Inspected:
    """getChat (the chat exists, the bot is in it, its title), then getChatMember (the bot
    is an administrator with ``can_delete_messages``, so it can post alerts and delete a
    password typed there: Bot API ChatMemberAdministrator). Never raises for Telegram's
    answers; the token is never logged."""
    from piyasa.admin.setup import verify

    chat = await verify.telegram_get_chat(api_url, token, chat_id)
    if not chat.ok:
        return Inspected(chat_id, problem="not_visible", detail=chat.detail or chat.problem)
    title, kind = str(chat.data.get("title", "")), str(chat.data.get("type", ""))
    if kind not in ("group", "supergroup"):
        return Inspected(chat_id, title, kind, "not_group")
    (rights,) = await check(api_url, token, (chat_id,))
    return Inspected(chat_id, title, kind, rights.problem, rights.detail)


async def propose(services: Services, chat_id: int, user_id: int, title: str = "") -> None:
    """Group ``chat_id`` was added to by admin ``user_id`` (Telegram id): the bot stays
    while that admin is asked, for at most :data:`CANDIDATE_TTL_S` seconds."""
    value = {"user": int(user_id), "title": title}
    await services.cache.set(CANDIDATE_KEY.format(chat_id=chat_id), value, ttl=CANDIDATE_TTL_S)


async def proposal(services: Services, chat_id: int) -> dict[str, Any] | None:
    """The pending candidate ``{"user": telegram id, "title": str}``, or None."""
    kept = await services.cache.get(CANDIDATE_KEY.format(chat_id=chat_id))
    return kept if isinstance(kept, dict) else None


async def withdraw(services: Services, chat_id: int) -> None:
    """Forget the candidate (answered, refused or gone)."""
    await services.cache.delete(CANDIDATE_KEY.format(chat_id=chat_id))


async def adopt(services: Services, chat_id: int, title: str, actor: str) -> bool:
    """Make ``chat_id`` an admin chat now and after every restart; False when it already
    was one. The in-memory list changes first, then the row is written (raises what the
    database raises: nothing is half-adopted, the list is put back)."""
    before = services.settings.admin_chat_ids
    if chat_id in before:
        return False
    _use(services, (*before, chat_id))
    insert = _insert_for(services)
    try:
        async with services.sessions() as session, session.begin():
            await session.execute(
                insert(AdminChat)
                .values(chat_id=chat_id, title=title[:255], added_by=actor[:128])
                .on_conflict_do_nothing(index_elements=["chat_id"])
            )
    except Exception:
        _use(services, before)
        raise
    await services.cache.delete(CACHE_KEY)
    await withdraw(services, chat_id)
    for hook in list(services.extras.get(_HOOKS, [])):
        try:
            await hook(chat_id)
        except Exception as exc:  # the chat is adopted; a surface that lags is logged
            log.warning("a surface did not take the new admin chat: %s", type(exc).__name__)
    return True


def on_adopted(services: Services, hook: Hook) -> None:
    """Call ``hook(chat_id)`` after every :func:`adopt` (the running surfaces start
    posting alerts there and set its command menus), so the core imports no surface."""
    services.extras.setdefault(_HOOKS, []).append(hook)


def off_adopted(services: Services, hook: Hook) -> None:
    hooks: list[Hook] = services.extras.get(_HOOKS, [])
    if hook in hooks:
        hooks.remove(hook)


async def titles(services: Services) -> dict[int, str]:
    """The titles of the admin chats adopted in chat, by chat id (as they were then)."""
    async with services.sessions() as session:
        rows = (await session.execute(select(AdminChat.chat_id, AdminChat.title))).all()
    return {int(chat_id): str(title or "") for chat_id, title in rows}


def _insert_for(services: Services) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if services.engine.dialect.name == "postgresql" else sqlite_insert
