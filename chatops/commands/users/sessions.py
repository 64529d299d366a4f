"""Sessions of a user (revoke), delete, and /deluser."""

from __future__ import annotations

from chatops import i18n
from chatops.commands.registry import Arg, command
from chatops.commands.users.card import _name, _p, card_view
from chatops.commands.users.common import (
    _int,
    _prefix,
    actor_of,
    against_other_admin,
    ago,
    error_view,
)
from chatops.commands.users.listing import users
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.admin import users as svc


@users.action("sessions")
async def users_sessions(ctx: Context) -> View:
    return await sessions_view(ctx, _int(ctx.params.get("id")))


async def sessions_view(ctx: Context, uid: int | None, alert: Alert | None = None) -> View:
    if uid is None:
        return await card_view(ctx, None)
    try:
        c = await svc.card(ctx.services, uid)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    t = ctx.t
    ctx.target = c.username
    view = View(title=t("users.sessions.title", username=c.username))
    if alert is not None:
        view.blocks.append(alert)
    lines = []
    for i in c.identities:
        label = f"{i.provider} {i.external_id}" + (f" ({i.display_name})" if i.display_name else "")
        lines.append(t("users.sessions.identity", label=label, when=ago(ctx, i.created_at)))
        view.row(
            Button(
                t("users.btn.unlink", label=f"{i.provider} {i.external_id}"),
                "users.revoke",
                _p(ctx, uid, kind="identity", ref=i.id),
            )
        )
    for k in c.api_keys:
        lines.append(
            t(
                "users.sessions.key",
                prefix=k.prefix,
                when=ago(ctx, k.created_at),
                used=ago(ctx, k.last_used_at),
            )
        )
        view.row(
            Button(
                t("users.btn.revoke_key", prefix=k.prefix),
                "users.revoke",
                _p(ctx, uid, kind="apikey", ref=k.id),
            )
        )
    if c.elevated_until:
        lines.append(t("users.sessions.elevation", time=c.elevated_until.strftime("%H:%M UTC")))
        view.row(
            Button(
                t("users.btn.revoke_elevation"),
                "users.revoke",
                _p(ctx, uid, kind="elevation", ref=0),
            )
        )
    view.blocks.append(Text("\n".join(lines) if lines else t("users.sessions.none")))
    if lines:
        view.row(
            Button(
                t("users.btn.terminate_all"),
                "users.revoke",
                _p(ctx, uid, kind="all", ref=0),
                style="danger",
            )
        )
    view.row(Button(t("users.btn.to_card"), "users.card", _p(ctx, uid)))
    return view


async def _revoke_text(ctx: Context) -> str:
    kind = str(ctx.params.get("kind", ""))
    key = f"users.confirm.revoke.{kind}"
    return ctx.t(key if i18n.has(key) else "confirm.generic", username=await _name(ctx))


@users.action("revoke", confirm=True, confirm_text=_revoke_text, step_up_if=against_other_admin)
async def users_revoke(ctx: Context) -> View:
    uid = _int(ctx.params.get("id"))
    ref = _int(ctx.params.get("ref")) or 0
    kind = str(ctx.params.get("kind", ""))
    actor = actor_of(ctx)
    s = ctx.services
    changes = {
        "identity": lambda u: svc.unlink_identity(s, actor, u, ref),
        "apikey": lambda u: svc.revoke_api_key(s, actor, u, ref),
        "elevation": lambda u: svc.revoke_elevation(s, actor, u),
        "all": lambda u: svc.terminate_all(s, actor, u),
    }
    if uid is None or kind not in changes:
        return await card_view(ctx, None)
    try:
        name = await changes[kind](uid)
    except svc.UserError as exc:
        return error_view(
            ctx, exc, await sessions_view(ctx, uid) if exc.code != "no_user" else None
        )
    ctx.target = name
    ctx.audit_params["kind"] = kind
    return await sessions_view(
        ctx, uid, Alert("success", ctx.t(f"users.ok.revoke.{kind}", username=name))
    )


@users.action("delete")
async def users_delete(ctx: Context) -> View:
    """Deleting needs the username typed (and a step-up): this only says how."""
    name = await _name(ctx)
    ctx.target = name
    return View(
        title=ctx.t("users.delete.title", username=name),
        blocks=[Alert("warning", ctx.t("users.delete.how", cmd=f"{_prefix(ctx)}deluser {name}"))],
        buttons=[
            [
                Button(
                    ctx.t("users.btn.to_card"),
                    "users.card",
                    _p(ctx, _int(ctx.params.get("id")) or 0),
                )
            ]
        ],
    )


@command("deluser", role="admin", order=33, step_up=True, args=(Arg("username", required=True),))
async def deluser(ctx: Context) -> View:
    """Delete a user: the typed username is the confirmation, a TOTP step-up guards it."""
    name = ctx.args["username"].strip().lower()
    ctx.target = name
    try:
        deleted = await svc.delete_user(ctx.services, actor_of(ctx), name)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    return View(blocks=[Alert("success", ctx.t("users.ok.delete", username=deleted))])


# -- bulk ----------------------------------------------------------------------------------------
