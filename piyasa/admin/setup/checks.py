"""What Piyasa needs, checked: the machine (setup's first screen) and every configured
connection and setting (`piyasa check`). Each item is healthy / warning / critical / unknown
with the fix in one sentence; nothing here raises for a bad dependency.

The database, Redis and host items reuse the health service's probes
(``piyasa.admin.health.probes``) so `piyasa check` and `/health` judge alike.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from piyasa.admin.health.model import State
from piyasa.config import Settings, mask_url
from piyasa.services import Services

MIN_PYTHON = (3, 11)
# import name -> distribution name
PACKAGES = {
    "aiogram": "aiogram",
    "slack_bolt": "slack-bolt",
    "openai": "openai",
    "sqlalchemy": "SQLAlchemy",
    "aiosqlite": "aiosqlite",
    "asyncpg": "asyncpg",
    "alembic": "alembic",
    "redis": "redis",
    "aiohttp": "aiohttp",
    "pyotp": "pyotp",
    "qrcode": "qrcode",
    "argon2": "argon2-cffi",
    "cryptography": "cryptography",
    "psutil": "psutil",
    "apscheduler": "APScheduler",
    "prometheus_client": "prometheus-client",
}
MIN_FREE_BYTES = 1 << 30  # 1 GiB for the database, logs and backups


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    summary: str
    fix: str = ""

    @property
    def critical(self) -> bool:
        return self.state == State.CRITICAL

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "summary": self.summary,
            "fix": self.fix,
        }


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.critical for c in checks) else 0


# --- the machine --------------------------------------------------------------------------


def machine_checks(settings: Settings) -> list[Check]:
    out = [_python(), _packages(), _disk(settings), _data_dir(settings)]
    out.extend(_pg_tools(settings))
    return out


def _python() -> Check:
    v = sys.version_info
    version = f"{v.major}.{v.minor}.{v.micro}"
    if (v.major, v.minor) < MIN_PYTHON:
        return Check(
            "python",
            State.CRITICAL,
            f"Python {version}",
            f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer and reinstall Piyasa with it",
        )
    return Check("python", State.HEALTHY, f"Python {version}")


def _packages() -> Check:
    missing = []
    for dist in PACKAGES.values():
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        return Check(
            "packages",
            State.CRITICAL,
            "missing: " + ", ".join(missing),
            "reinstall Piyasa with its dependencies: pip install -e .  (or pip install piyasa)",
        )
    return Check("packages", State.HEALTHY, f"{len(PACKAGES)} required packages installed")


def _disk(settings: Settings) -> Check:
    from piyasa.admin.health.diskspace import QUOTA_VAR, data_dir_space
    from piyasa.admin.health.server_probes import _human_bytes
    from piyasa.config import ConfigError

    try:
        space = data_dir_space(settings)
    except ConfigError as exc:
        return Check("disk", State.CRITICAL, str(exc), f"fix or unset {QUOTA_VAR}")
    free, percent = space.free, space.free_percent
    summary = f"{_human_bytes(free)} free ({percent:.0f}%) at {settings.data_dir}"
    if space.quota is not None:
        summary += f" (quota {_human_bytes(space.quota)}, {_human_bytes(space.used or 0)} used)"
    # A quota smaller than the usual 1 GiB floor is judged by its share alone.
    floor = MIN_FREE_BYTES if space.quota is None else min(MIN_FREE_BYTES, space.quota // 10)
    fix = (
        "free disk space or move PIYASA_DATA_DIR elsewhere"
        if space.quota is None
        else f"free space in the data dir (old backups, rotated logs) or raise {QUOTA_VAR}"
    )
    if free < floor // 4 or percent < 5:
        return Check("disk", State.CRITICAL, summary, fix)
    if free < floor or percent < 10:
        return Check("disk", State.WARNING, summary, "free some disk space before backups fill it")
    return Check("disk", State.HEALTHY, summary)


def _data_dir(settings: Settings) -> Check:
    import os
    import stat

    d = settings.data_dir
    if not os.access(d, os.W_OK):
        return Check(
            "data_dir", State.CRITICAL, f"{d} is not writable", "choose a directory you own"
        )
    loose = []
    for name in ("secret.key", ".env"):
        p = d / name
        if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
            loose.append(name)
    if loose:
        return Check(
            "data_dir",
            State.WARNING,
            f"{', '.join(loose)} readable by others",
            f"chmod 600 {' '.join(str(d / n) for n in loose)}",
        )
    return Check("data_dir", State.HEALTHY, f"{d} writable, secrets mode 0600")


def _pg_tools(settings: Settings) -> list[Check]:
    found = {tool: shutil.which(tool) for tool in ("pg_dump", "pg_restore", "psql")}
    missing = [t for t, p in found.items() if not p]
    if not missing:
        return [Check("pg_tools", State.HEALTHY, "pg_dump, pg_restore and psql found")]
    needed = not settings.sqlite_default
    return [
        Check(
            "pg_tools",
            State.WARNING if needed else State.UNKNOWN,
            f"{', '.join(missing)} not found" + ("" if needed else " (optional with SQLite)"),
            "install the PostgreSQL client tools (e.g. apt install postgresql-client) "
            "for PostgreSQL backups",
        )
    ]


# --- configured connections -------------------------------------------------------------------


async def connection_checks(settings: Settings, services: Services | None = None) -> list[Check]:
    """Database and schema, Redis, the admin bot, the LLM, Slack, users and the fleet."""
    from piyasa.admin.health.probes import ProbeContext
    from piyasa.admin.health.server_probes import DatabaseProbe, RedisProbe
    from piyasa.admin.health.thresholds import Thresholds

    own = services is None
    services = services or Services.build(settings)
    out: list[Check] = []
    try:
        ctx = ProbeContext(services, Thresholds.from_env(settings.extra), None, None)
        db = await DatabaseProbe().check(ctx)
        where = mask_url(settings.database_url)
        if db.state == State.CRITICAL:
            fix = (
                "check PIYASA_DATABASE_URL and that the server is running"
                if not settings.sqlite_default
                else "check that the data dir is writable and the disk is not full"
            )
            out.append(Check("database", State.CRITICAL, f"{where}: {db.summary}", fix))
        else:
            out.append(Check("database", db.state, db.summary))
            out.append(await _schema(services))
            out.extend(await _content(services))
        redis_probe = RedisProbe()
        try:
            r = await redis_probe.check(ctx)
        finally:
            await redis_probe.close()
        if r.state == State.UNKNOWN:
            out.append(Check("redis", State.UNKNOWN, "not configured (in-process cache)"))
        else:
            fix = "check PIYASA_REDIS_URL and that Redis runs" if r.state.is_problem else ""
            out.append(Check("redis", r.state, r.summary, fix))
        bot = await _admin_bot(settings)
        out.append(bot)
        if bot.state == State.HEALTHY and settings.admin_chat_ids:
            out.append(await _admin_chats(settings))
        out.append(await _llm(settings, services, db.state != State.CRITICAL))
        out.append(_slack(settings))
        if db.state != State.CRITICAL:
            await _adopted_admin_chats(services)
        out.append(_alerts(services.settings))
    finally:
        if own:
            await services.close()
    return out


async def _schema(services: Services) -> Check:
    from piyasa.db import migrate

    current = await migrate.current_revision(services.engine)
    head = migrate.head_revision()
    if current == head:
        return Check("schema", State.HEALTHY, f"up to date ({head})")
    if services.settings.sqlite_default:
        return Check(
            "schema",
            State.WARNING,
            f"at {current or 'empty'}, newest {head}",
            "`piyasa up` applies it, or run `piyasa migrate`",
        )
    return Check(
        "schema", State.CRITICAL, f"at {current or 'empty'}, needs {head}", "run `piyasa migrate`"
    )


async def _content(services: Services) -> list[Check]:
    from sqlalchemy import func, select

    from piyasa.db import migrate
    from piyasa.db.models import Bot, Chat, User

    if await migrate.current_revision(services.engine) is None:
        return []
    async with services.sessions() as session:
        admins = int(await session.scalar(select(func.count()).where(User.role == "admin")) or 0)
        bots = int(await session.scalar(select(func.count(Bot.id))) or 0)
        chats = int(await session.scalar(select(func.count(Chat.id))) or 0)
    out = []
    if admins:
        out.append(Check("admins", State.HEALTHY, f"{admins} admin account(s)"))
    else:
        out.append(
            Check("admins", State.WARNING, "no admin account", "run `piyasa setup` to create one")
        )
    if bots and chats:
        out.append(Check("fleet", State.HEALTHY, f"{bots} bots, {chats} chats"))
    else:
        out.append(
            Check(
                "fleet",
                State.WARNING,
                f"{bots} bots, {chats} chats",
                "add fleet bots and chats with /setup in a private chat with the admin bot",
            )
        )
    return out


async def _admin_bot(settings: Settings) -> Check:
    from piyasa.admin.setup.verify import telegram_get_me

    if not settings.admin_bot_token:
        return Check(
            "admin_bot",
            State.WARNING,
            "no admin bot token: `piyasa up` runs the local sandbox",
            "run `piyasa setup` with a token from @BotFather",
        )
    result = await telegram_get_me(settings.telegram_api_url, settings.admin_bot_token.reveal())
    if result.ok:
        return Check("admin_bot", State.HEALTHY, f"@{result.data['username']} (getMe ok)")
    fixes = {
        "unauthorized": "Telegram rejected the token: get a new one from @BotFather "
        "(/mybots -> API Token) and run `piyasa setup` again",
        "unreachable": f"cannot reach {settings.telegram_api_url}: check the network / "
        "PIYASA_TELEGRAM_API_URL",
    }
    return Check(
        "admin_bot",
        State.CRITICAL,
        f"getMe failed: {result.problem} ({result.detail})",
        fixes.get(result.problem, "check the token and PIYASA_TELEGRAM_API_URL"),
    )


ADMIN_CHAT_WHY = {
    "not_admin": "is a plain member",
    "no_delete": "is an admin without the 'Delete messages' right",
    "not_member": "is not in the chat (or the chat does not exist)",
    "unreachable": "could not be asked",
}


async def _admin_chats(settings: Settings) -> Check:
    """The admin bot must be an admin with the delete right in every admin chat, or a
    password typed there stays readable (see :mod:`piyasa.admin.admin_chats`)."""
    from piyasa.admin import admin_chats

    rights = await admin_chats.check(
        settings.telegram_api_url, settings.admin_bot_token.reveal(), settings.admin_chat_ids
    )
    bad = [r for r in rights if not r.ok]
    if not bad:
        return Check(
            "admin_chats",
            State.HEALTHY,
            f"the admin bot may delete messages in {len(rights)} admin chat(s)",
        )
    return Check(
        "admin_chats",
        State.WARNING,
        "; ".join(f"in {r.chat_id} the bot {ADMIN_CHAT_WHY[r.problem]}" for r in bad),
        "make the admin bot an administrator of each admin chat with the 'Delete messages' "
        "right (Telegram: chat info -> Administrators -> Add admin): until then a password "
        "or code typed there cannot be deleted and stays readable",
    )


async def _llm(settings: Settings, services: Services, db_ok: bool) -> Check:
    from piyasa.admin.setup.verify import llm_models

    key, base, model = (
        settings.openai_api_key.reveal(),
        settings.openai_base_url,
        settings.llm_model,
    )
    if db_ok:
        try:
            from piyasa.runtime.settings_store import SettingsStore

            store = SettingsStore(services.sessions)
            await store.refresh()
            enc = store.get("llm_api_key_encrypted")
            if enc:
                key = services.box.decrypt(enc)
            base = store.get("llm_base_url") or base
            model = store.get("llm_model") or model
        except Exception:
            pass
    if not key:
        return Check(
            "llm",
            State.WARNING,
            "no API key: the fleet uses the offline text generator",
            "add a key with /setup (LLM step) or OPENAI_API_KEY",
        )
    result = await llm_models(key, base or None)
    if not result.ok:
        return Check(
            "llm",
            State.CRITICAL,
            f"models.list failed: {result.problem} ({result.detail})",
            "check the API key and base URL (/setup, LLM step)",
        )
    models = result.data["models"]
    if model not in models:
        return Check(
            "llm",
            State.WARNING,
            f"model {model!r} not offered by the provider ({len(models)} models)",
            "choose a model in /setup (LLM step) or set PIYASA_LLM_MODEL",
        )
    return Check("llm", State.HEALTHY, f"{model}, key ok ({len(models)} models)")


def alert_destinations(settings: Settings) -> list[str]:
    """Where health alerts are posted (``chatops.alerts``): ``telegram:<chat>`` for each
    admin chat when an admin bot token is set, ``slack:<channel>`` when the Slack app and
    PIYASA_SLACK_ALERT_CHANNEL are. Empty: every alert goes nowhere."""
    out = []
    if settings.admin_bot_token:
        out += [f"telegram:{c}" for c in settings.admin_chat_ids]
    if settings.slack_bot_token and settings.slack_alert_channel:
        out.append(f"slack:{settings.slack_alert_channel}")
    return out


ALERTS_NOWHERE_FIX = (
    "set PIYASA_ADMIN_CHAT_IDS to an admin group where the admin bot is an administrator "
    "with the 'Delete messages' right (`piyasa setup` asks for it), or "
    "PIYASA_SLACK_ALERT_CHANNEL with the Slack app"
)


async def _adopted_admin_chats(services: Services) -> None:
    """Count the admin chats adopted from chat (database rows) with the environment's, as
    `piyasa up` does at start; a schema without their table leaves the environment's."""
    from sqlalchemy.exc import SQLAlchemyError

    from piyasa.admin import admin_chats

    try:
        await admin_chats.follow_moves(services)
    except SQLAlchemyError:
        pass


def _alerts(settings: Settings) -> Check:
    where = alert_destinations(settings)
    if where:
        return Check("alerts", State.HEALTHY, "alerts go to " + ", ".join(where))
    return Check(
        "alerts",
        State.WARNING,
        "alerts have no destination: nobody hears of a problem",
        ALERTS_NOWHERE_FIX,
    )


def _slack(settings: Settings) -> Check:
    if settings.slack_bot_token and settings.slack_signing_secret:
        return Check("slack", State.HEALTHY, "bot token and signing secret set")
    if settings.slack_bot_token or settings.slack_signing_secret:
        return Check(
            "slack",
            State.WARNING,
            "only one of bot token / signing secret set",
            "set both PIYASA_SLACK_BOT_TOKEN and PIYASA_SLACK_SIGNING_SECRET",
        )
    return Check("slack", State.UNKNOWN, "not configured (optional)")


async def run_all(settings: Settings) -> list[Check]:
    return machine_checks(settings) + await connection_checks(settings)
