"""Core commands: /start, /help, /whoami, /link, /lang, /stepup, /cancel, /linkcode."""

from __future__ import annotations

from chatops import handover, i18n, menus, pipeline
from chatops.commands.registry import Arg, Command, command
from chatops.commands.users import against_other_admin
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin import auth, identity, issue
from piyasa.admin.users import Actor, UserError
from piyasa.db.availability import db_down


def cmd_prefix(ctx: Context) -> str:
    return "/piyasa " if ctx.surface == "slack" else "/"


def _line(ctx: Context, cmd: Command) -> str:
    return f"{cmd_prefix(ctx)}{cmd.usage()} — {ctx.t(cmd.help_key)}"


@command("start", role="public", order=0, audit=True, needs=())
async def start(ctx: Context) -> View:
    if ctx.actor is None:
        return View(
            title=ctx.t("start.title"),
            blocks=[Text(ctx.t("start.unlinked", id=ctx.client.external_id))],
        )
    if ctx.actor.locked:
        return View(title=ctx.t("start.title"), blocks=[Alert("error", ctx.t("refuse.locked"))])
    return View(
        title=ctx.t("start.title"),
        blocks=[
            Text(
                ctx.t(
                    "start.linked",
                    username=ctx.actor.username,
                    role=ctx.t(f"role.{ctx.actor.role}"),
                    help=f"{cmd_prefix(ctx)}help",
                )
            )
        ],
    )


HELP_QUERY_MAX = 200  # characters of a /help search; longer is refused by the pipeline


@command(
    "help",
    role="public",
    order=1,
    args=(Arg("query", rest=True, max_len=HELP_QUERY_MAX),),
    needs=(),
)
async def help_(ctx: Context) -> View:
    """Generated from the registry; only what the caller's level may run is ever shown.

    ``/help COMMAND`` (one word naming a command): its details. Any other words, for
    viewers and up: the one help search (:mod:`chatops.help_query`). Below viewer, words
    that name no runnable command get the refusal, as before: the knowledge base and the
    guide are for linked readers."""
    level = ctx.level
    query = " ".join((ctx.args.get("query") or "").split())
    wanted = query.lstrip("/").lower()
    if wanted and (wanted in ctx.registry.commands or level < 1):
        cmd = ctx.registry.commands.get(wanted)
        if (
            cmd is None
            or cmd.hidden
            or (cmd.level > level and not await pipeline.bootstrap_open(ctx, cmd))
        ):
            # the same words as a refused command: help never confirms what exists above you
            return pipeline.refusal(ctx, "refuse.denied", "denied_role").view
        fields = [(ctx.t("help.usage"), f"{cmd_prefix(ctx)}{cmd.usage()}")]
        if cmd.step_up:
            fields.append((ctx.t("help.security"), ctx.t("help.needs_stepup")))
        if cmd.confirm:
            fields.append((ctx.t("help.security"), ctx.t("help.needs_confirm")))
        if cmd.private_only:
            fields.append((ctx.t("help.where"), ctx.t("help.private_only")))
        return View(
            title=f"{cmd_prefix(ctx)}{cmd.id}", blocks=[Text(ctx.t(cmd.help_key)), Fields(fields)]
        )
    if wanted:
        from chatops import help_query

        return help_query.results_view(ctx, query)
    lines = [_line(ctx, c) for c in ctx.registry.visible(level, await pipeline.opened(ctx))]
    blocks = [Text("\n".join(lines))]
    if ctx.actor is None:
        blocks.append(Text(ctx.t("help.unlinked_hint")))
    else:
        blocks.append(Text(ctx.t("help.more", help=f"{cmd_prefix(ctx)}help")))
    return View(title=ctx.t("help.title"), blocks=blocks)


@command("whoami", role="viewer", order=2, needs=())
async def whoami(ctx: Context) -> View:
    assert ctx.actor is not None
    degraded = db_down(ctx.services)  # read-only: the principal is the last known one
    if degraded:
        elevated = ctx.t("whoami.unknown")
    else:
        elevated = ctx.t("yes" if await auth.is_elevated(ctx.services, ctx.actor.user_id) else "no")
    view = View(
        title=ctx.t("whoami.title"),
        blocks=[
            Fields(
                [
                    (ctx.t("whoami.username"), ctx.actor.username),
                    (ctx.t("whoami.role"), ctx.t(f"role.{ctx.actor.role}")),
                    (ctx.t("whoami.account"), f"{ctx.surface} {ctx.client.external_id}"),
                    (ctx.t("whoami.language"), ctx.t(f"lang.name.{ctx.lang}")),
                    (ctx.t("whoami.mfa"), ctx.t("yes" if ctx.actor.totp_enabled else "no")),
                    (ctx.t("whoami.elevated"), elevated),
                ]
            )
        ],
    )
    if degraded:
        view.add(Alert("warning", ctx.t("whoami.snapshot")))
    return view


async def _link_exposed(ctx: Context) -> View:
    """``/link CODE`` typed in a group: the group saw the code, so nobody may redeem it."""
    await identity.void_link_code(ctx.services, ctx.args["code"])
    return View(blocks=[Alert("error", ctx.t("link.not_private"))])


@command(
    "link",
    role="public",
    order=3,
    private_only=True,
    args=(Arg("code", required=True, secret=True),),
    on_exposed=_link_exposed,
)
async def link(ctx: Context) -> View:
    code = ctx.args["code"]
    result = await identity.redeem_link_code(
        ctx.services,
        code,
        ctx.client.provider,
        ctx.client.external_id,
        ctx.client.display_name,
    )
    if not result.ok:
        ctx.audit_params["outcome"] = result.reason
        return View(blocks=[Alert("error", ctx.t(f"link.{result.reason}"))])
    ctx.target = result.username
    ctx.actor = await identity.resolve(ctx.services, ctx.client.provider, ctx.client.external_id)
    if ctx.actor is not None:
        await menus.refresh_user(ctx.services, ctx.actor.user_id)
    return View(
        blocks=[
            Alert("success", ctx.t("link.ok", username=result.username)),
            Text(ctx.t("help.more", help=f"{cmd_prefix(ctx)}help")),
        ]
    )


@command("lang", role="viewer", order=4, args=(Arg("language", choices=i18n.LANGS),))
async def lang(ctx: Context) -> View:
    choice = ctx.args.get("language", "").lower()
    if not choice:
        return View(
            blocks=[Text(ctx.t("lang.choose"))],
            buttons=[
                [
                    ctx.button(i18n.t(code, f"lang.name.{code}"), "lang.set", code=code)
                    for code in i18n.LANGS
                ]
            ],
        )
    return await _set_lang(ctx, choice)


@lang.action("set")
async def lang_set(ctx: Context) -> View:
    return await _set_lang(ctx, str(ctx.params.get("code", "")))


async def _set_lang(ctx: Context, code: str) -> View:
    assert ctx.actor is not None
    if code not in i18n.LANGS:
        return View(blocks=[Alert("error", ctx.t("refuse.usage", usage="lang tr|en"))])
    await identity.set_language(ctx.services, ctx.actor.user_id, code)
    await menus.refresh_user(ctx.services, ctx.actor.user_id)
    ctx.lang = code
    ctx.audit_params["language"] = code
    return View(blocks=[Alert("success", ctx.t("lang.set", name=ctx.t(f"lang.name.{code}")))])


@command(
    "stepup",
    role="viewer",
    order=5,
    private_only=True,
    args=(Arg("code", required=True, secret=True),),
)
async def stepup(ctx: Context) -> View | None:
    view, pending = await pipeline.complete_step_up(ctx, ctx.args["code"])
    ctx.audit_params["resumes"] = bool(pending and pending.get("invocation"))
    if pending and pending.get("invocation") and ctx.responder is not None:
        await ctx.responder.show(view)
        resume = getattr(ctx.responder, "resume", None)
        if resume is not None:
            await resume(pending)
        return None
    return view


@command("cancel", role="public", hidden=True, audit=True)
async def cancel(ctx: Context) -> View:
    from chatops import dialogs

    await dialogs.cancel_active(ctx)
    return View(blocks=[Text(ctx.t("cancelled"))], edit=True)


@command(
    "linkcode",
    role="admin",
    order=20,
    args=(Arg("username", required=True),),
    step_up_if=against_other_admin,
)
async def linkcode(ctx: Context) -> View | None:
    """An admin creates a one-time link code for a user. Nothing secret is typed, so it
    runs anywhere; the code itself is handed over privately (or not issued at all)."""
    username = ctx.args["username"]
    ctx.target = username
    actor = Actor(ctx.actor_label, ctx.actor.user_id if ctx.actor else None, ctx.surface)

    def show(i: issue.Issued) -> View:
        return View(
            title=ctx.t("linkcode.title"),
            blocks=[
                Text(i.secret, style="code"),
                Text(ctx.t("linkcode.how", username=i.username, code=i.secret)),
            ],
        )

    try:
        return await handover.hand_over(
            ctx, lambda: issue.link_code(ctx.services, actor, username), show
        )
    except UserError:
        return View(blocks=[Alert("error", ctx.t("linkcode.no_user", username=username))])


__all__ = ["Button"]
