"""What every step of the /setup wizard shares: one-off notices, problem sentences, the
admin bot's username and the answer buttons."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from chatops import i18n
from chatops.context import Context
from chatops.dialogs import DIALOGS
from chatops.views import Alert, Button
from piyasa.admin.setup import verify

log = logging.getLogger(__name__)
OK, NO = "✅", "❌"
DIALOG_NAME = "setup"

_flash: contextvars.ContextVar[tuple[str, str, dict[str, Any]] | None] = contextvars.ContextVar(
    "setup_flash", default=None
)


def flash(level: str, key: str, **kw: Any) -> None:
    """A one-off notice shown on top of the next rendering of the step (this request only)."""
    _flash.set((level, key, kw))


def take_flash(ctx: Context) -> list[Alert]:
    """The pending notice as an alert (at most one), cleared."""
    item = _flash.get()
    _flash.set(None)
    if item is None:
        return []
    level, key, kw = item
    return [Alert(level, ctx.t(key, **kw))]  # type: ignore[arg-type]


def problem(ctx: Context, area: str, outcome: verify.Outcome, **kw: Any) -> str:
    """The sentence for a failed check, with the next step (falls back to a generic one)."""
    key = f"setup.problem.{area}.{outcome.problem}"
    if not i18n.has(key):
        key = f"setup.problem.{area}.other"
    return ctx.t(key, detail=outcome.detail, **kw)


async def admin_bot_username(ctx: Context) -> str:
    """The admin bot's @username without the @ ("" when Telegram cannot be asked)."""
    bot = getattr(ctx.responder, "bot", None)
    if bot is not None:
        try:
            return (await bot.me()).username or ""
        except Exception:
            return ""
    token = ctx.services.settings.admin_bot_token
    if not token:
        return ""
    me = await verify.telegram_get_me(
        ctx.services.settings.telegram_api_url, token.reveal(), deadline_s=3
    )
    return me.data.get("username", "") if me.ok else ""


def yes(ctx: Context, value: Any) -> str:
    """✅ yes / ❌ no in the user's language."""
    return f"{OK} {ctx.t('yes')}" if value else f"{NO} {ctx.t('no')}"


def choice(ctx: Context, label: str, step: str, value: str) -> Button:
    """A button answering the wizard's ``step`` with ``value``."""
    return DIALOGS[DIALOG_NAME].choice(ctx, label, step, value)
