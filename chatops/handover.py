"""Hand a one-time secret over privately, or change nothing.

Every chat action that produces a secret shown once — a temporary password, an API key, a
TOTP seed, a link code, a new account's link code — goes through :func:`hand_over`:

1. It first checks that a private message would reach the caller
   (``Responder.reach_private``: Telegram refuses messages to a user who never started the
   bot, Slack may refuse to open a DM). If not, nothing is issued: the caller is told how
   to open the private chat and the request is audited ``refused_no_private_chat``.
2. It issues the secret (a :class:`piyasa.admin.issue.Issued`) and sends it as a new,
   protected, private message.
3. If that message fails after all (the user blocked the bot a moment ago, Slack refused
   the post), the issue is undone — the old key keeps working, the password reset is
   rolled back, the new account is removed — and the request is audited
   ``failed_undelivered``.

Before this, pressing "New API key" in a group revoked the working key and lost the new
one when the private message bounced, and the audit said ``ok``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from chatops.context import Context
from chatops.pipeline import Halt
from chatops.views import Alert, Button, View
from piyasa.admin.issue import Issued

log = logging.getLogger(__name__)


def secret_view(view: View) -> View:
    """Shown once: private, protected, and always a new message."""
    view.private = True
    view.protect = True
    view.edit = False
    return view


async def _bot_username(ctx: Context) -> str:
    bot = getattr(ctx.responder, "bot", None)  # the Telegram responder's aiogram Bot
    if bot is None:
        return ""
    try:
        return (await bot.me()).username or ""
    except Exception:
        return ""


def _stop(ctx: Context, text: str, bot: str, result: str, detail: str) -> Halt:
    """Why nothing was handed over, with a button opening the private chat (Telegram)."""
    view = View(blocks=[Alert("error", text)])
    if bot:
        view.row(Button(ctx.t("handover.open_chat", bot=bot), url=f"https://t.me/{bot}"))
    return Halt(view, result, detail)


async def hand_over(
    ctx: Context,
    issue: Callable[[], Awaitable[Issued]],
    show: Callable[[Issued], View],
) -> View | None:
    """Check, issue, deliver (or undo); returns what the asking chat sees: nothing when
    the secret went to this very chat, else a note that it went to the private chat.

    Raises :class:`Halt` (refused or undone, see the module doc) and whatever ``issue``
    raises (e.g. ``UserError``: then nothing was issued)."""
    if not await ctx.reach_private():
        bot = await _bot_username(ctx)
        text = ctx.t(f"handover.no_private.{ctx.surface}", bot=bot)
        raise _stop(ctx, text, bot, "refused_no_private_chat", "private chat unreachable")
    issued = await issue()
    ctx.target = issued.username
    try:
        ref = await ctx.send_private(secret_view(show(issued)))
    except Exception as exc:  # whatever stopped it, the secret did not arrive
        log.warning("private delivery of a secret failed: %s", type(exc).__name__)
        ref = None
    if ref is None:
        await issued.undo("private message refused")
        bot = await _bot_username(ctx)
        text = ctx.t(f"handover.undelivered.{ctx.surface}", bot=bot)
        raise _stop(ctx, text, bot, "failed_undelivered", "private message refused")
    if ref.chat == ctx.chat_id:
        return None
    return View(blocks=[Alert("success", ctx.t("render.sent_private"))])
