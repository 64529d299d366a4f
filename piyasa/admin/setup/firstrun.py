"""`piyasa setup` without the terminal: validate, create the first admin, write the config
file, hand out the one-time `/setup CODE`. The CLI (interactive or not) only asks and prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from piyasa.admin import passwords
from piyasa.admin.setup import checks, codes, verify
from piyasa.admin.setup.configfile import update_config
from piyasa.admin.users import UserError, add_user, validate_username
from piyasa.config import Settings
from piyasa.crypto import SecretBox
from piyasa.db.models import User
from piyasa.services import Services

DEFAULT_TELEGRAM_API = "https://api.telegram.org"
# Settings worth keeping in the config file when they came from the environment or flags.
PERSISTED = (
    "PIYASA_DATABASE_URL",
    "PIYASA_REDIS_URL",
    "PIYASA_TELEGRAM_API_URL",
    "PIYASA_ADMIN_CHAT_IDS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "PIYASA_LLM_MODEL",
    "PIYASA_SLACK_BOT_TOKEN",
    "PIYASA_SLACK_SIGNING_SECRET",
    "PIYASA_SLACK_API_URL",
    "PIYASA_HTTP_HOST",
    "PIYASA_HTTP_PORT",
    "PIYASA_LANG",
)


@dataclass
class Plan:
    """What the operator gave; ``token`` etc. are plain here and sealed on write."""

    token: str = ""
    username: str = ""
    password: str = ""
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[checks.Check] = field(default_factory=list)
    bot: dict[str, Any] = field(default_factory=dict)
    admin: str = ""
    admin_created: bool = False
    code: str = ""
    config_file: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "checks": [c.as_json() for c in self.checks],
            "bot": self.bot,
            "admin": self.admin,
            "admin_created": self.admin_created,
            "setup_code": self.code,
            "config_file": self.config_file,
        }


TOKEN_FIXES = {
    "bad_format": "PIYASA_ADMIN_BOT_TOKEN is not a bot token (it looks like "
    "123456789:AAE...); copy it again from @BotFather",
    "unauthorized": "Telegram rejected PIYASA_ADMIN_BOT_TOKEN (401 Unauthorized): open "
    "@BotFather, /mybots -> your bot -> API Token, and use the current token",
    "unreachable": "cannot reach the Telegram Bot API at {api}: check the network "
    "(or PIYASA_TELEGRAM_API_URL)",
}


def token_problem(outcome: verify.Outcome, api: str) -> str:
    template = TOKEN_FIXES.get(
        outcome.problem, "getMe failed ({problem}: {detail}); check PIYASA_ADMIN_BOT_TOKEN"
    )
    return template.format(api=api, problem=outcome.problem, detail=outcome.detail)


async def validate(
    settings: Settings,
    plan: Plan,
    *,
    need_admin: bool,
    env_problems: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Every problem at once (machine, malformed variables, token, admin chats, admin,
    database, Redis, LLM), nothing written. ``env_problems`` are the malformed variables
    :func:`piyasa.admin.setup.preflight.load_lenient` left out (a malformed token is
    reported there, not again as missing)."""
    from piyasa.admin.setup import preflight

    res = Result()
    res.problems.extend(env_problems or [])
    res.checks = checks.machine_checks(settings)
    for c in res.checks:
        if c.critical:
            res.problems.append(f"{c.name}: {c.summary}; {c.fix}")
        elif c.state.is_problem:
            res.warnings.append(f"{c.name}: {c.summary}; {c.fix}")
    token_malformed = any(p.startswith("PIYASA_ADMIN_BOT_TOKEN") for p in env_problems or [])
    if not plan.token and not token_malformed:
        res.problems.append(
            "no admin bot token: create a bot with @BotFather (/newbot) and set "
            "PIYASA_ADMIN_BOT_TOKEN"
        )
    elif plan.token:
        me = await verify.telegram_get_me(settings.telegram_api_url, plan.token)
        if me.ok:
            res.bot = me.data
            res.problems.extend(await preflight.admin_chat_problems(settings, plan.token))
        else:
            res.problems.append(token_problem(me, settings.telegram_api_url))
    if need_admin:
        if not plan.username:
            res.problems.append("no first admin: set PIYASA_ADMIN_USERNAME (e.g. admin)")
        else:
            try:
                validate_username(plan.username)
            except UserError as exc:
                res.problems.append(f"PIYASA_ADMIN_USERNAME: {exc}")
        if not plan.password:
            res.problems.append(
                f"no password for the first admin: set PIYASA_ADMIN_PASSWORD "
                f"(at least {passwords.MIN_LENGTH} characters)"
            )
        elif reason := passwords.problem(plan.password, plan.username):
            res.problems.append(f"PIYASA_ADMIN_PASSWORD: {passwords.PROBLEM_TEXT[reason]}")
    res.problems.extend(await preflight.connection_problems(settings, env or {}))
    if not checks.alert_destinations(settings):
        res.warnings.append(f"alerts have no destination; {checks.ALERTS_NOWHERE_FIX}")
    return res


async def existing_admin(services: Services) -> str:
    async with services.sessions() as session:
        name = await session.scalar(
            select(User.username).where(User.role == "admin").order_by(User.id).limit(1)
        )
    return name or ""


async def carry_out(services: Services, plan: Plan, res: Result) -> Result:
    """Create the admin (if none), write the config file, make the setup code."""
    from piyasa.admin.users import get_user

    settings = services.settings
    admin = await existing_admin(services)
    if admin and (not plan.username or plan.username.strip().lower() == admin):
        res.admin = admin
    elif plan.username:
        info = await add_user(
            services,
            plan.username,
            "admin",
            password=plan.password or None,
            actor="setup",
            surface="cli",
        )
        res.admin, res.admin_created = info.username, True
    if not res.admin:
        res.problems.append("no admin account to hand over; set PIYASA_ADMIN_USERNAME")
        return res
    updates: dict[str, str | None] = {"PIYASA_ADMIN_BOT_TOKEN": plan.token}
    updates.update(plan.config)
    path = update_config(settings.data_dir, updates, SecretBox(settings.secret_key.reveal()))
    res.config_file = str(path)
    info = await get_user(services, res.admin)
    res.code = await codes.create_setup_code(services, info.id)
    return res


def config_from_env(env: dict[str, str], settings: Settings) -> dict[str, str]:
    """Known settings given in the environment, to be kept in the config file."""
    out = {k: env[k] for k in PERSISTED if env.get(k)}
    if settings.telegram_api_url != DEFAULT_TELEGRAM_API:
        out["PIYASA_TELEGRAM_API_URL"] = settings.telegram_api_url
    return out
