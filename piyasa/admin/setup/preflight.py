"""`piyasa setup --non-interactive` before it writes anything: every problem at once.

The environment is read leniently (:func:`load_lenient`): a malformed variable becomes one
problem line and the check goes on without it, instead of stopping at the first. Then
every configured connection is tried for real — the admin bot (getMe), the admin chats
(getChatMember: the bot must be an admin there with the delete right), the database,
Redis and the LLM endpoint (``models.list`` at the base URL the fleet will use) — and the
first admin's name and password are judged by the one password policy. Nothing here
creates a schema, a user or the config file; on SQLite a database file that does not exist
yet is not created just to be looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import make_url, select

from piyasa.admin.setup import verify
from piyasa.config import _SPEC, ENCRYPTED_PREFIX, ConfigError, Settings, load_settings, mask_url

LLM_FIX = "check OPENAI_API_KEY and OPENAI_BASE_URL (or leave both empty for the offline generator)"
ADMIN_CHAT_FIX = {
    "not_admin": "is a plain member: make it an administrator with the 'Delete messages' right",
    "no_delete": "is an administrator without the 'Delete messages' right: grant it",
    "not_member": "is not in that chat (or the chat does not exist): add the bot, or fix "
    "PIYASA_ADMIN_CHAT_IDS",
    "unreachable": "could not be asked (Telegram did not answer); try again",
}


def load_lenient(env: Mapping[str, str]) -> tuple[Settings | None, list[str]]:
    """Settings from ``env`` with every malformed variable left out, and one problem line
    per malformed variable (``ConfigError``'s sentence, which names the fix). ``None`` when
    even that cannot be built (an unwritable data dir, an undecryptable config file)."""
    problems: list[str] = []
    clean = dict(env)
    for name, _attr, parse in _SPEC:
        raw = env.get(name)
        if not raw or raw.startswith(ENCRYPTED_PREFIX):
            continue
        try:
            parse(name, raw)
        except ConfigError as exc:
            problems.append(str(exc))
            clean[name] = ""  # empty: skipped by load_settings, even over the config file
    try:
        return load_settings(clean), problems
    except ConfigError as exc:
        return None, [*problems, str(exc)]


def sqlite_file_missing(settings: Settings) -> bool:
    """A SQLite database that does not exist yet (nothing to look at, nothing to create)."""
    if not settings.sqlite_default:
        return False
    name = make_url(settings.database_url).database or ""
    return bool(name) and name != ":memory:" and not Path(name).exists()


async def existing_admin(settings: Settings) -> str | None:
    """The first admin's username, read without creating anything: "" when the database
    is empty or has none, ``None`` when it cannot be read."""
    from piyasa.db import migrate
    from piyasa.db.engine import create_engine
    from piyasa.db.models import User

    if sqlite_file_missing(settings):
        return ""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        if await migrate.current_revision(engine) is None:
            return ""
        async with engine.connect() as conn:
            name = await conn.scalar(
                select(User.username).where(User.role == "admin").order_by(User.id).limit(1)
            )
        return name or ""
    except Exception:
        return None
    finally:
        await engine.dispose()


async def connection_problems(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Every configured connection besides the admin bot token, tried for real: the
    database, Redis, the LLM and the admin chats. One line per problem, with the fix."""
    out: list[str] = []
    if not sqlite_file_missing(settings):
        db = await verify.database_test(settings.database_url)
        if not db.ok:
            out.append(
                f"database: {db.problem} ({db.detail}); check PIYASA_DATABASE_URL and that "
                "the server is running"
            )
    if settings.redis_url:
        r = await verify.redis_test(settings.redis_url)
        if not r.ok:
            out.append(
                f"PIYASA_REDIS_URL: Redis at {mask_url(settings.redis_url)} "
                f"{r.problem} ({r.detail}); check the URL and that Redis runs, or leave it "
                "empty for the in-process cache"
            )
    out.extend(await _llm_problems(settings, env))
    return out


async def _llm_problems(settings: Settings, env: Mapping[str, str]) -> list[str]:
    key = settings.openai_api_key.reveal()
    if not key:
        if settings.openai_base_url:
            return [f"OPENAI_BASE_URL is set but OPENAI_API_KEY is not; {LLM_FIX}"]
        return []
    base = verify.llm_base_url("", settings)
    outcome = await verify.llm_models(key, base)
    if not outcome.ok:
        return [f"LLM at {base}: {outcome.problem} ({outcome.detail}); {LLM_FIX}"]
    models = outcome.data["models"]
    if env.get("PIYASA_LLM_MODEL") and settings.llm_model not in models:
        offered = ", ".join(verify.chat_models_first(models)[:5])
        return [
            f"PIYASA_LLM_MODEL={settings.llm_model!r} is not offered at {base}; "
            f"choose one of: {offered}"
        ]
    return []


async def admin_chat_problems(settings: Settings, token: str) -> list[str]:
    """The admin bot must be able to post and delete in each of PIYASA_ADMIN_CHAT_IDS."""
    from piyasa.admin import admin_chats

    if not token or not settings.admin_chat_ids:
        return []
    rights = await admin_chats.check(settings.telegram_api_url, token, settings.admin_chat_ids)
    return [
        f"PIYASA_ADMIN_CHAT_IDS: in {r.chat_id} the admin bot {ADMIN_CHAT_FIX[r.problem]}"
        for r in rights
        if not r.ok
    ]


async def admin_chat_problem(settings: Settings, token: str, chat_id: int) -> tuple[str, str]:
    """(title, problem) for one admin chat offered in `piyasa setup`: getChat (the chat
    exists and the bot is in it), then getChatMember (the bot is an administrator with the
    delete right, so it can post alerts and delete a password typed there; Bot API
    ChatMemberAdministrator), through :func:`piyasa.admin.admin_chats.inspect` (the chat
    wizard's check too). ``problem`` is "" when the chat will do."""
    from piyasa.admin import admin_chats

    found = await admin_chats.inspect(settings.telegram_api_url, token, chat_id)
    if found.problem == "not_visible":
        return "", f"the admin bot cannot see chat {chat_id} ({found.detail}): add it to the group"
    if found.problem == "not_group":
        return found.title, f"{chat_id} is not a group: create a group for the admins"
    if found.problem:
        return found.title, f"in {chat_id} the admin bot {ADMIN_CHAT_FIX[found.problem]}"
    return found.title, ""
