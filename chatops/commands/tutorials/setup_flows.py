"""The tutorials of getting started: "add your first bot" and "link your Telegram
account". Each check reads the real state (``bots``, ``chats``, the reader's linked chat
accounts and pending link codes)."""

from __future__ import annotations

from sqlalchemy import func, select

from chatops.commands.tutorials.model import Tutorial, always, define, say
from chatops.context import Context
from piyasa.admin.identity import LINK_PURPOSE
from piyasa.db.base import utcnow
from piyasa.db.models import Bot, Chat, Identity, OneTimeCode


async def _count(ctx: Context, model: type) -> int:
    async with ctx.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _has_bot(ctx: Context) -> str | None:
    return None if await _count(ctx, Bot) else ctx.t("tutorial.missing2")


async def _has_chat(ctx: Context) -> str | None:
    return None if await _count(ctx, Chat) else ctx.t("tutorial.missing3")


BOT = define(Tutorial("bot", "tutorial", (always, _has_bot, _has_chat, always), 1))


# -- link your Telegram account --------------------------------------------------------------


async def _linked(ctx: Context) -> set[str]:
    """The providers (telegram, slack) linked to the reader's user row."""
    assert ctx.actor is not None  # tutorials are for viewers and up: a linked user
    async with ctx.services.sessions() as session:
        rows = await session.scalars(
            select(Identity.provider).where(Identity.user_id == ctx.actor.user_id)
        )
        return set(rows)


async def _has_code(ctx: Context) -> str | None:
    """A link code waiting for the reader (or Telegram already linked: nothing to wait for)."""
    assert ctx.actor is not None
    if "telegram" in await _linked(ctx):
        return None
    async with ctx.services.sessions() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(OneTimeCode)
            .where(
                OneTimeCode.user_id == ctx.actor.user_id,
                OneTimeCode.purpose == LINK_PURPOSE,
                OneTimeCode.expires_at > utcnow(),
            )
        )
    return None if pending else say(ctx, "tutorial.link.missing2")


async def _telegram_linked(ctx: Context) -> str | None:
    if "telegram" in await _linked(ctx):
        return None
    return say(ctx, "tutorial.link.missing3")


async def _slack_linked(ctx: Context) -> str | None:
    """Slack linked too — or no Slack app configured here, so nothing to link."""
    if not ctx.services.settings.slack_bot_token or "slack" in await _linked(ctx):
        return None
    return say(ctx, "tutorial.link.missing4")


LINK = define(
    Tutorial("link", "tutorial.link", (always, _has_code, _telegram_linked, _slack_linked), 2)
)
