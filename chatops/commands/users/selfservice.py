"""Self-service: /mfa (QR once, then a code) and /password."""

from __future__ import annotations

import io

from chatops import announce, handover, i18n
from chatops.commands.registry import Arg, command
from chatops.commands.users.common import _prefix, actor_of, error_view
from chatops.context import Context
from chatops.views import Alert, Image, Text, View
from piyasa.admin import issue
from piyasa.admin import users as svc


def qr_png(uri: str) -> bytes:
    import qrcode

    img = qrcode.make(uri, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


async def mfa_start_view(ctx: Context) -> View | None:
    assert ctx.actor is not None
    user_id = ctx.actor.user_id
    cmd = f"{_prefix(ctx)}mfa"

    def show(i: issue.Issued) -> View:
        return View(
            title=ctx.t("users.mfa.title"),
            blocks=[Text(ctx.t("users.mfa.scan", cmd=cmd))],
            images=[
                Image(
                    qr_png(i.extra["uri"]),
                    caption=ctx.t("users.mfa.manual", seed=i.secret),
                    filename="piyasa-2fa.png",
                )
            ],
        )

    try:
        return await handover.hand_over(
            ctx, lambda: issue.totp_seed(ctx.services, actor_of(ctx), user_id), show
        )
    except svc.UserError as exc:
        return error_view(ctx, exc)


async def announce_enrolment(ctx: Context) -> int:
    """Tell the admins that a user turned two-factor on from chat: with a hijacked chat
    account an attacker would enrol their own authenticator and pass every step-up after
    that, so the others must hear of it (and can lock the account). Returns how many admin
    chats were told."""
    assert ctx.actor is not None
    name, surface, account = ctx.actor.username, ctx.surface, ctx.client.external_id

    def build(lang: str, where: str) -> View:
        cmd = f"{'/piyasa ' if where == 'slack' else '/'}users {name}"
        return View(
            blocks=[
                Alert(
                    "warning",
                    i18n.t(
                        lang,
                        "users.mfa.announce",
                        username=name,
                        surface=surface.capitalize(),
                        account=account,
                        cmd=cmd,
                    ),
                )
            ]
        )

    return await announce.to_admins(ctx.services, build)


@command("mfa", role="viewer", order=8, private_only=True, args=(Arg("code", secret=True),))
async def mfa(ctx: Context) -> View | None:
    """Set up two-factor authentication: ``/mfa`` shows the QR once, ``/mfa CODE`` proves
    it and switches it on."""
    assert ctx.actor is not None
    code = ctx.args.get("code", "")
    if not code:
        if ctx.actor.totp_enabled:
            return View(blocks=[Alert("info", ctx.t("users.mfa.already"))])
        return await mfa_start_view(ctx)
    ok = await svc.mfa_confirm(ctx.services, actor_of(ctx), ctx.actor.user_id, code)
    ctx.audit_params["outcome"] = "enabled" if ok else "wrong_code"
    if ok:
        ctx.audit_params["announced"] = await announce_enrolment(ctx)
        return View(blocks=[Alert("success", ctx.t("users.mfa.enabled"))])
    return View(blocks=[Alert("error", ctx.t("users.mfa.wrong", cmd=f"{_prefix(ctx)}mfa"))])


async def _password_exposed(ctx: Context) -> View:
    """``/password CURRENT NEW`` typed in a group: the group saw the current password (and
    where the bot cannot delete messages, still sees it), so the account must change it;
    the new one is never set. Audited with ``forced_change``."""
    assert ctx.actor is not None  # authorized before
    forced = False
    if (await svc.get_user(ctx.services, ctx.actor.username)).has_password:
        await svc.set_must_change(ctx.services, actor_of(ctx), ctx.actor.user_id, True)
        forced = True
    ctx.audit_params["forced_change"] = forced
    key = "users.password.exposed_visible" if ctx.secret_visible else "users.password.exposed_seen"
    return View(blocks=[Alert("error", ctx.t(key, cmd=f"{_prefix(ctx)}password"))])


@command(
    "password",
    role="viewer",
    order=9,
    private_only=True,
    args=(Arg("current", required=True, secret=True), Arg("new", required=True, secret=True)),
    on_exposed=_password_exposed,
)
async def password(ctx: Context) -> View:
    """Change your own password (the message is deleted at once)."""
    assert ctx.actor is not None
    try:
        result = await svc.change_own_password(
            ctx.services, actor_of(ctx), ctx.actor.username, ctx.args["current"], ctx.args["new"]
        )
    except svc.UserError as exc:
        return error_view(ctx, exc)
    if not result.ok:
        ctx.audit_params["outcome"] = result.reason
        return View(
            blocks=[Alert("error", ctx.t(f"users.login.{result.reason}", s=result.retry_after_s))]
        )
    return View(blocks=[Alert("success", ctx.t("users.password.changed"))])
