"""Wizard step "Admin chat": where health alerts go.

Telegram does not let a bot join a group by itself, so the step offers a button with the
deep link ``t.me/<bot>?startgroup=setup&admin=delete_messages``: Telegram lets the admin
pick a group, adds the bot (as an administrator with the "Delete messages" right when the
admin keeps it on) and sends ``/start@<bot> setup`` into the group (Bot API deep linking;
TDLib ``internalLinkTypeBotStartInGroup``). The admin bot, which leaves every other group,
keeps a group a Piyasa admin added as a *candidate* (``chatops.telegram.adoption``), checks
it with getChat and getChatMember and asks that admin in private: "Use <title> as the
admin chat? [Yes] [No]" (:func:`question_view`). Yes (:func:`answer`) checks again and
stores it at once (``piyasa.admin.admin_chats.adopt``): unlike the wizard's other answers it
is not staged for [Start system], because the bot already sits in that group and must
either make it its home or leave it; Cancel does not undo it.
"""

from __future__ import annotations

from typing import Any

from aiogram.exceptions import TelegramAPIError

from chatops import i18n
from chatops.commands.setup.common import OK, admin_bot_username, choice, take_flash
from chatops.context import Context
from chatops.dialogs import STAY
from chatops.views import Alert, Button, Text, View
from piyasa.admin import admin_chats

STEP = "adminchat"
ACTION = "setup.adminchat"


def startgroup_url(bot: str) -> str:
    """The deep link that adds ``bot`` (its @username without @) to a group the user picks,
    asking for the delete right (``admin=`` takes rights joined by ``+``)."""
    return f"https://t.me/{bot}?startgroup=setup&admin=delete_messages"


async def render_adminchat(ctx: Context, data: dict[str, Any]) -> View:
    view = View(title=ctx.t("adminchat.title"))
    if ctx.services.settings.admin_chat_ids:
        view.blocks.append(Text(f"{OK} " + ctx.t("adminchat.have", chats=await _names(ctx))))
    else:
        view.blocks.append(Text(ctx.t("adminchat.intro")))
        view.blocks.append(Alert("warning", ctx.t("adminchat.skip_warning")))
    view.blocks.extend(take_flash(ctx))
    bot = await admin_bot_username(ctx)
    if bot:
        view.row(Button(ctx.t("adminchat.add"), url=startgroup_url(bot)))
    if ctx.services.settings.admin_chat_ids:
        view.row(choice(ctx, ctx.t("setup.next"), STEP, "next"))
    else:
        view.row(choice(ctx, ctx.t("adminchat.skip"), STEP, "skip"))
    return view


async def choose_adminchat(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    return None if value in ("next", "skip") else STAY


async def summary_item(ctx: Context) -> tuple[str, str]:
    """The summary's line: the admin chats in force (with the titles of those adopted in
    chat), or the warning that alerts go nowhere."""
    if not ctx.services.settings.admin_chat_ids:
        return ctx.t("adminchat.title"), "❌ " + ctx.t("adminchat.none")
    return ctx.t("adminchat.title"), f"{OK} {await _names(ctx)}"


async def _names(ctx: Context) -> str:
    """The admin chats in force: "title (id)" for those adopted in chat, else the id."""
    titles = await admin_chats.titles(ctx.services)
    ids = ctx.services.settings.admin_chat_ids
    return ", ".join(f"{titles[c]} ({c})" if titles.get(c) else str(c) for c in ids)


# --- the private question and its answer ---------------------------------------------------------


def question_view(lang: str, chat_id: int, title: str) -> View:
    """The question sent to the admin who added the bot to group ``chat_id``."""
    view = View(
        title=i18n.t(lang, "adminchat.title"),
        blocks=[Text(i18n.t(lang, "adminchat.question", title=title))],
    )
    view.row(
        Button(i18n.t(lang, "adminchat.yes"), ACTION, {"chat": chat_id, "v": "yes"}, "primary"),
        Button(i18n.t(lang, "adminchat.no"), ACTION, {"chat": chat_id, "v": "no"}),
    )
    return view


def problem_view(lang: str, found: admin_chats.Inspected, title: str = "") -> View:
    """Why group ``found`` cannot be the admin chat, naming the missing right."""
    key = f"adminchat.problem.{found.problem}"
    if not i18n.has(key):
        key = "adminchat.problem.unreachable"
    text = i18n.t(lang, key, title=found.title or title or str(found.chat_id))
    return View(title=i18n.t(lang, "adminchat.title"), blocks=[Alert("warning", text)])


def _chat_param(ctx: Context) -> int | None:
    try:
        return int(ctx.params.get("chat"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def answer(ctx: Context, wizard: Any) -> View:
    """[Yes]/[No] to :func:`question_view`. Only the admin who was asked, while the group
    is still a candidate; Yes checks the bot's rights again before storing anything."""
    chat_id = _chat_param(ctx)
    pending = await admin_chats.proposal(ctx.services, chat_id) if chat_id is not None else None
    ctx.target = f"chat:{chat_id}" if chat_id is not None else ""
    if pending is None or str(pending.get("user")) != ctx.client.external_id:
        ctx.audit_params["outcome"] = "stale"
        return View(blocks=[Alert("error", ctx.t("adminchat.stale"))], edit=True)
    assert chat_id is not None
    title = str(pending.get("title") or chat_id)
    bot = getattr(ctx.responder, "bot", None)
    if ctx.params.get("v") != "yes":
        await admin_chats.withdraw(ctx.services, chat_id)
        ctx.audit_params["outcome"] = "declined"
        if bot is not None:
            try:
                await bot.leave_chat(chat_id)
            except TelegramAPIError:
                pass
        return View(blocks=[Alert("info", ctx.t("adminchat.declined", title=title))], edit=True)
    settings = ctx.services.settings
    found = await admin_chats.inspect(
        settings.telegram_api_url, settings.admin_bot_token.reveal(), chat_id
    )
    if found.problem:
        ctx.audit_params["outcome"] = found.problem
        view = problem_view(ctx.lang, found, title)
        view.edit = True
        return view
    await admin_chats.adopt(ctx.services, chat_id, found.title, ctx.actor_label)
    ctx.audit_params["outcome"] = "adopted"
    if bot is not None:
        note = i18n.t(settings.lang, "adminchat.announce", name=ctx.client.display_name or "?")
        try:
            from chatops.telegram.render import esc

            await bot.send_message(chat_id, esc(note))
        except TelegramAPIError:
            pass  # adopted; the alerts that follow will tell whether it can be reached
    text = ctx.t("adminchat.adopted", title=found.title)
    if await wizard.state_data(ctx) is None:
        return View(blocks=[Alert("success", text)], edit=True)
    view = await wizard.start(ctx)  # the running wizard, where the admin left it
    view.blocks.insert(1, Alert("success", text))
    view.edit = True
    return view
