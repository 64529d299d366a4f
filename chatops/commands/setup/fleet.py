"""Wizard step 3: the fleet's bots and the chats they talk in."""

from __future__ import annotations

import re
from typing import Any

from chatops.commands.setup.common import OK, choice, flash, problem, take_flash
from chatops.context import Context
from chatops.dialogs import STAY
from chatops.views import Text, View
from piyasa.admin.setup import verify, wizard
from piyasa.config import TELEGRAM_TOKEN_RE
from piyasa.crypto import fingerprint

CHAT_ID_RE = re.compile(r"^-?\d{5,20}$")

# --- step 3: fleet bots and chats --------------------------------------------------------------


async def render_fleet(ctx: Context, data: dict[str, Any]) -> View:
    bots, chats = data.setdefault("bots", []), data.setdefault("chats", [])
    view = View(title=ctx.t("setup.fleet.title"))
    view.blocks.append(Text(ctx.t("setup.fleet.intro")))
    if bots:
        lines = [f"{OK} @{b['username']} — {b['name']}" for b in bots]
        view.blocks.append(Text(ctx.t("setup.fleet.bots") + "\n" + "\n".join(lines)))
    if chats:
        lines = [f"{OK} {c['title']} ({c['id']})" for c in chats]
        view.blocks.append(Text(ctx.t("setup.fleet.chats") + "\n" + "\n".join(lines)))
    view.blocks.extend(take_flash(ctx))
    row = []
    if bots and chats:
        row.append(choice(ctx, ctx.t("setup.next"), "fleet", "next"))
    row.append(choice(ctx, ctx.t("setup.later"), "fleet", "skip"))
    view.row(*row)
    return view


async def choose_fleet(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    return None if value in ("next", "skip") else STAY


async def text_fleet(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    text = text.strip()
    api = ctx.services.settings.telegram_api_url
    bots, chats = data.setdefault("bots", []), data.setdefault("chats", [])
    if TELEGRAM_TOKEN_RE.match(text):
        if any(b["fingerprint"] == fingerprint(text) for b in bots):
            flash("info", "setup.fleet.bot_known")
            return STAY
        me = await verify.telegram_get_me(api, text)
        if not me.ok:
            flash("error", "setup.raw", text=problem(ctx, "token", me))
            return STAY
        admin = ctx.services.settings.admin_bot_token.reveal()
        if admin and admin.split(":", 1)[0] == str(me.data["id"]):
            flash("error", "setup.fleet.is_admin_bot")
            return STAY
        bots.append(wizard.seal_bot(ctx.services, text, me.data))
        flash(
            "success",
            "setup.fleet.bot_ok",
            username=me.data["username"],
            name=me.data["first_name"],
        )
        return STAY
    if CHAT_ID_RE.match(text):
        if not bots:
            flash("error", "setup.fleet.bot_first")
            return STAY
        chat_id = int(text)
        if any(int(c["id"]) == chat_id for c in chats):
            flash("info", "setup.fleet.chat_known")
            return STAY
        outcome = verify.Outcome(False, "error")
        for b in bots:
            outcome = await verify.telegram_get_chat(
                api, ctx.services.box.decrypt(b["token_enc"]), chat_id
            )
            if outcome.ok:
                break
        if not outcome.ok:
            names = ", ".join(f"@{b['username']}" for b in bots)
            flash("error", "setup.raw", text=problem(ctx, "chat", outcome, bots=names, id=chat_id))
            return STAY
        chats.append(outcome.data)
        flash("success", "setup.fleet.chat_ok", title=outcome.data["title"], id=chat_id)
        return STAY
    flash("error", "setup.fleet.what_is_this")
    return STAY
