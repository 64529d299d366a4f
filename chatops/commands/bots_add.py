"""Adding a bot (the ``addbot`` dialog), rotating its token (``bottoken``) and removing it
(``delbot``).

Tokens are typed only in a private chat (the commands are ``private_only``; on Slack the
app's DM), the message holding one is deleted at once (secret steps), checked with getMe
and sealed before anything is stored; a token Telegram refuses changes nothing. Add bot:
token -> persona (a template, or copied from another bot) -> chats (Telegram must confirm
the bot is in each) -> the bot is saved disabled and previewed -> enable, or leave it off.
Removing needs the bot's username typed and a confirmation.
"""

from __future__ import annotations

from typing import Any

from chatops.commands.bots import (
    as_int,
    bots,
    card_params,
    card_view,
    gone_view,
    prefix,
    problem_text,
)
from chatops.commands.bots_edit import ParamDialog, encode_problem, sample_blocks
from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.dialogs import STAY, Step
from chatops.views import Alert, Button, Text, View
from piyasa.fleetadmin import bot_changes as changes
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin import persona as personas

COPY_MAX = 6  # other bots offered to copy a persona from


# -- add bot ------------------------------------------------------------------------------------


async def render_token(ctx: Context, data: dict[str, Any]) -> View:
    return View(blocks=[Text(ctx.t("bots.add.ask_token"))])


async def on_token(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    if ctx.input_exposed:
        return "bots.add.token_exposed"
    try:
        me = await changes.check_token(ctx.services, text)
        known = await svc.list_bots(
            ctx.services, search=str(me.get("username") or ""), per_page=1000
        )
        if any(r.username == me.get("username") for r in known.rows if me.get("username")):
            raise svc.BotError("bots.err.already_fleet", "already in the fleet", ref=me["username"])
    except svc.BotError as exc:
        return encode_problem(ctx, exc)
    data.update(token_enc=ctx.services.box.encrypt(text.strip()), me=me, chats=[])
    return None


async def render_persona(ctx: Context, data: dict[str, Any]) -> View:
    me = data.get("me") or {}
    view = View(blocks=[Text(ctx.t("bots.add.ask_persona", username=me.get("username", "")))])
    view.row(
        *[
            add_dialog.choice(ctx, ctx.t(f"bots.template.{k}"), "persona", f"tpl:{k}")
            for k in personas.TEMPLATES
        ]
    )
    page = await svc.list_bots(ctx.services, per_page=COPY_MAX)
    copies = [
        add_dialog.choice(ctx, ctx.t("bots.add.copy", name=r.name), "persona", f"copy:{r.id}")
        for r in page.rows
    ]
    for i in range(0, len(copies), 2):
        view.row(*copies[i : i + 2])
    return view


async def on_persona(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    kind, _, ref = value.partition(":")
    if kind == "tpl" and ref in personas.TEMPLATES:
        base = dict(personas.TEMPLATES[ref])
    elif kind == "copy" and as_int(ref) is not None:
        try:
            base = dict((await svc.get_bot(ctx.services, int(ref))).persona or {})
        except svc.BotError as exc:
            return encode_problem(ctx, exc)
    else:
        return STAY
    me = data.get("me") or {}
    base["name"] = me.get("first_name") or me.get("username") or "bot"
    data["persona"] = personas.validate_persona(base)
    return None


async def render_chats(ctx: Context, data: dict[str, Any]) -> View:
    from sqlalchemy import select

    from piyasa.db.models import Chat

    async with ctx.services.sessions() as session:
        chats = (await session.scalars(select(Chat).order_by(Chat.title, Chat.id))).all()
    chosen = set(data.get("chats") or [])
    view = View(blocks=[Text(ctx.t("bots.add.ask_chats"))])
    if data.get("chat_problem"):
        view.blocks.append(Alert("error", data.pop("chat_problem")))
    for c in chats:
        mark = "✅" if c.id in chosen else "▫️"
        view.row(
            add_dialog.choice(ctx, f"{mark} {c.title or c.telegram_id}", "chats", f"chat:{c.id}")
        )
    view.row(add_dialog.choice(ctx, ctx.t("bots.add.next"), "chats", "next"))
    return view


async def on_chats(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    from piyasa.admin.setup import verify
    from piyasa.db.models import Chat

    chosen: list[int] = list(data.get("chats") or [])
    if value == "next":
        return await create_disabled(ctx, data)
    chat_id = as_int(value.partition(":")[2])
    if chat_id is None:
        return STAY
    if chat_id in chosen:
        chosen.remove(chat_id)
    else:
        async with ctx.services.sessions() as session:
            chat = await session.get(Chat, chat_id)
        if chat is None:
            return STAY
        token = ctx.services.box.decrypt(data["token_enc"])
        got = await verify.telegram_get_chat(
            ctx.services.settings.telegram_api_url, token, chat.telegram_id
        )
        if not got.ok:
            data["chat_problem"] = ctx.t(
                "bots.err.not_in_chat", chat=chat.title or chat.telegram_id
            )
            return STAY
        chosen.append(chat_id)
    data["chats"] = chosen
    return STAY


async def create_disabled(ctx: Context, data: dict[str, Any]) -> str | None:
    """Save the bot, disabled, with its chats: the preview needs it saved."""
    if data.get("bot"):
        return None
    token = ctx.services.box.decrypt(data["token_enc"])
    try:
        bot_id = await changes.add_bot(
            ctx.services, token, data.get("persona") or {}, actor=ctx.actor_label, me=data["me"]
        )
        for chat_id in data.get("chats") or []:
            await changes.set_member(
                ctx.services, bot_id, chat_id, True, actor=ctx.actor_label, check=False
            )
    except (svc.BotError, personas.PersonaError) as exc:
        return encode_problem(ctx, exc)
    data["bot"] = bot_id
    ctx.audit_params.update(bot=bot_id, username=data["me"].get("username"))
    return None


async def render_preview(ctx: Context, data: dict[str, Any]) -> View:
    view = View(
        blocks=[Text(ctx.t("bots.add.saved_disabled", username=data["me"].get("username", "")))]
    )
    view.blocks.extend(await sample_blocks(ctx, int(data["bot"])))
    view.row(
        add_dialog.choice(ctx, ctx.t("bots.add.enable"), "preview", "yes"),
        add_dialog.choice(ctx, ctx.t("bots.add.keep_off"), "preview", "no"),
    )
    return view


async def on_enable(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ("yes", "no"):
        return STAY
    if value == "yes":
        try:
            await changes.set_enabled(ctx.services, int(data["bot"]), True, actor=ctx.actor_label)
        except svc.BotError as exc:
            return encode_problem(ctx, exc)
    data["enabled"] = value == "yes"
    return None


async def finish_add(ctx: Context, data: dict[str, Any]) -> View:
    key = "bots.add.done_on" if data.get("enabled") else "bots.add.done_off"
    return await card_view(ctx, int(data["bot"]), Alert("success", ctx.t(key)))


add_dialog = ParamDialog(
    "addbot",
    steps=[
        Step("token", render_token, on_text=on_token, secret=True),
        Step("persona", render_persona, on_choice=on_persona),
        Step("chats", render_chats, on_choice=on_chats),
        Step("preview", render_preview, on_choice=on_enable),
    ],
    finish=finish_add,
)


@command("addbot", role="operator", order=41, private_only=True, capability="bots")
async def addbot(ctx: Context) -> View:
    """Add a fleet bot: token (private chat only) -> persona -> chats -> preview -> enable."""
    return await add_dialog.reset(ctx)


add_dialog.bind(addbot, private_only=True)


# -- token rotation -------------------------------------------------------------------------------


async def render_new_token(ctx: Context, data: dict[str, Any]) -> View:
    return View(blocks=[Text(ctx.t("bots.rotate.ask", name=data.get("name", "")))])


async def on_new_token(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    if ctx.input_exposed:
        return "bots.add.token_exposed"
    try:
        await changes.rotate_token(ctx.services, int(data["bot"]), text, actor=ctx.actor_label)
    except svc.BotError as exc:
        return encode_problem(ctx, exc)
    ctx.audit_params.update(bot=data["bot"])
    return None


async def finish_rotate(ctx: Context, data: dict[str, Any]) -> View:
    return await card_view(ctx, int(data["bot"]), Alert("success", ctx.t("bots.ok.rotated")))


rotate_dialog = ParamDialog(
    "bottoken",
    steps=[Step("token", render_new_token, on_text=on_new_token, secret=True)],
    finish=finish_rotate,
)


async def start_rotation(ctx: Context, ref: Any) -> View:
    try:
        bot = await svc.get_bot(ctx.services, ref)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = svc.bot_name(bot)
    return await rotate_dialog.reset(ctx, {"bot": bot.id, "name": svc.bot_name(bot)})


@command(
    "bottoken",
    role="admin",
    order=44,
    private_only=True,
    hidden=True,
    capability="bots",
    args=(Arg("bot", required=True),),
)
async def bottoken(ctx: Context) -> View:
    """Rotate a bot's token: the old one works until Telegram accepts the new one."""
    return await start_rotation(ctx, ctx.args["bot"])


rotate_dialog.bind(bottoken, private_only=True)


@bots.action("rotate", role="admin", private_only=True)
async def bots_rotate(ctx: Context) -> View:
    return await start_rotation(ctx, as_int(ctx.params.get("id")) or 0)


# -- remove ---------------------------------------------------------------------------------------


@bots.action("remove", role="operator")
async def bots_remove(ctx: Context) -> View:
    """Removing needs the username typed: this says how."""
    bot_id = as_int(ctx.params.get("id"))
    try:
        bot = await svc.get_bot(ctx.services, bot_id or 0)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = svc.bot_name(bot)
    typed = bot.username or str(bot.id)
    view = View(title=ctx.t("bots.remove.title", name=svc.bot_name(bot)))
    view.blocks.append(
        Alert("warning", ctx.t("bots.remove.how", cmd=f"{prefix(ctx)}delbot {typed}"))
    )
    view.row(Button(ctx.t("bots.btn.to_card"), "bots.card", card_params(ctx, bot.id)))
    return view


async def _delbot_text(ctx: Context) -> str:
    return ctx.t("bots.confirm.remove", name=ctx.args.get("bot", "?"))


@command(
    "delbot",
    role="operator",
    order=45,
    confirm=True,
    confirm_text=_delbot_text,
    capability="bots",
    args=(Arg("bot", required=True, max_len=64),),
)
async def delbot(ctx: Context) -> View:
    """Remove a fleet bot: type its username; asks for a confirmation."""
    typed = ctx.args["bot"]
    ctx.target = typed
    try:
        name = await changes.remove_bot(ctx.services, typed, typed, actor=ctx.actor_label)
    except svc.BotError as exc:
        return View(blocks=[Alert("error", problem_text(ctx, exc))])
    return View(blocks=[Alert("success", ctx.t("bots.ok.removed", name=name))])
