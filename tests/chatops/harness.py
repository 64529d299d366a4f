"""Shared world for chat-ops tests: users at every role, a sandbox Telegram, a local Slack."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from piyasa.admin.users import add_user
from piyasa.config import Secret
from piyasa.services import Services
from tests.waiting import until

ADMIN_BOT_TOKEN = "7100000000:TEST-admin-bot-token-for-chatops-tests"
ADMIN_GROUP = -1007100000001
STRANGER_GROUP = -1007100000002

# role name -> (telegram id, slack id)
PEOPLE = {
    "unlinked": (810001, "U0UNLINKED"),
    "locked": (810002, "U0LOCKED"),
    "viewer": (810003, "U0VIEWER"),
    "operator": (810004, "U0OPERATOR"),
    "admin": (810005, "U0ADMIN"),
}
ROLE_NAMES = list(PEOPLE)
LEVEL = {"unlinked": 0, "locked": 0, "viewer": 1, "operator": 2, "admin": 3}


async def seed_people(services: Services) -> dict[str, int]:
    """Create one user per role (the 'locked' one is an admin whose account is locked)."""
    from sqlalchemy import update

    from piyasa.admin.identity import users_changed
    from piyasa.db.models import User

    ids = {}
    for role in ("locked", "viewer", "operator", "admin"):
        tg, slack = PEOPLE[role]
        info = await add_user(
            services,
            f"user_{role}",
            "admin" if role == "locked" else role,
            telegram_id=tg,
            slack_id=slack,
        )
        ids[role] = info.id
    async with services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == ids["locked"]).values(locked=True))
    await users_changed(services)
    return ids


def with_admin_settings(services: Services, api_url: str, **extra: Any) -> None:
    services.settings = dataclasses.replace(
        services.settings,
        telegram_api_url=api_url,
        admin_bot_token=Secret(ADMIN_BOT_TOKEN),
        admin_chat_ids=(ADMIN_GROUP,),
        lang="en",
        **extra,
    )


@dataclass
class TelegramWorld:
    sb: Any
    surface: Any
    services: Services
    bot_id: int
    user_ids: dict[str, int] = field(default_factory=dict)

    async def say(self, role: str, text: str, *, group: bool = False, **kw: Any) -> dict:
        """``role`` types ``text`` (privately, or in the admin group) and we wait for the reply."""
        uid = PEOPLE[role][0]
        chat = ADMIN_GROUP if group else uid
        mark = self.sb.mark()
        if group:
            await self.sb.send_user_message(uid, chat, text, **kw)
        else:
            await self.sb.send_user_message(uid, chat, text, bot_id=self.bot_id, **kw)
        return await self.sb.wait_for_message(chat_id=chat, bot_id=self.bot_id, after=mark)

    async def press(self, role: str, chat: int, message: dict, data: str, *, forge: bool = False):
        uid = PEOPLE[role][0]
        mark = self.sb.mark()
        await self.sb.press_button(
            uid, chat, message["message_id"], data, forge=forge, bot_id=self.bot_id
        )
        return mark


def buttons(message: dict) -> list[tuple[str, str]]:
    kb = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data", "")) for row in kb for b in row]


async def wait_answer(sb: Any, qid: str) -> dict:
    """The bot's answerCallbackQuery for press ``qid``."""

    def answered() -> dict | None:
        return next((a for a in sb.callback_answers if a["callback_query_id"] == qid), None)

    return await until(answered, f"the bot's answer to press {qid}", interval=0.005)


async def audit_count(services: Services) -> int:
    """A mark in the audit log (the newest row id) for `next_audit` to wait past."""
    from sqlalchemy import func, select

    from piyasa.db.models import AuditEntry

    async with services.sessions() as session:
        return int(await session.scalar(select(func.max(AuditEntry.id))) or 0)


async def next_audit(services: Services, before: int, action: str | None = None) -> Any:
    """The first audit row after mark ``before`` (for ``action``, when given).

    Audit rows are written after the reply, so an earlier request's row can land after
    the mark was taken; naming the action keeps a late row from being mistaken for ours.
    """
    from sqlalchemy import select

    from piyasa.db.models import AuditEntry

    stmt = select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id).limit(1)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action[:64])

    async def row() -> Any:
        async with services.sessions() as session:
            return await session.scalar(stmt)

    return await until(row, f"an audit row for {action or 'any action'}", interval=0.005)


def registry_for_tests() -> Any:
    """The product's commands plus test-only ones exercising step-up, confirm, size, speed."""
    import asyncio

    from chatops.commands import load_all
    from chatops.commands.registry import Arg, Registry
    from chatops.views import Text, View

    base = load_all()
    reg = Registry()
    for spec in base.specs():
        reg._index(spec)
    reg.commands.update(base.commands)
    reg.fired = []  # type: ignore[attr-defined]
    reg.gate = asyncio.Event()  # type: ignore[attr-defined]

    @reg.command(
        "danger",
        role="admin",
        step_up=True,
        confirm=True,
        capability="testing",
        args=(Arg("target", required=True),),
    )
    async def danger(ctx):  # type: ignore[no-untyped-def]
        reg.fired.append(ctx.args["target"])  # type: ignore[attr-defined]
        return View(blocks=[Text(f"destroyed {ctx.args['target']}")])

    @reg.command("long", role="viewer", capability="testing")
    async def long(ctx):  # type: ignore[no-untyped-def]
        rows = [f"<row {i}> & more text here" for i in range(600)]
        return View(blocks=[Text("\n".join(rows[i : i + 5])) for i in range(0, 600, 5)])

    @reg.command("slow", role="viewer", capability="testing")
    async def slow(ctx):  # type: ignore[no-untyped-def]
        await reg.gate.wait()  # type: ignore[attr-defined]
        return View(blocks=[Text("slow result")])

    @reg.command("pages", role="viewer", capability="testing")
    async def pages(ctx):  # type: ignore[no-untyped-def]
        return await show_page(ctx, 1)

    @pages.action("page")
    async def page(ctx):  # type: ignore[no-untyped-def]
        return await show_page(ctx, int(ctx.params.get("page", 1)))

    async def show_page(ctx, n):  # type: ignore[no-untyped-def]
        from chatops.views import Pager

        return View(blocks=[Text(f"page {n}")], pager=Pager("pages.page", n, 3))

    return reg
