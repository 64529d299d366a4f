"""The user card and its actions: role, lock, password reset, MFA, API key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatops import handover, menus
from chatops.commands.registry import Param
from chatops.commands.users.common import (
    _int,
    _prefix,
    actor_of,
    against_other_admin,
    ago,
    error_view,
)
from chatops.commands.users.listing import users
from chatops.commands.users.selfservice import mfa_start_view
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin import issue, passwords
from piyasa.admin import users as svc
from piyasa.db.models import ROLES


def _back(ctx: Context) -> dict[str, Any]:
    back = ctx.params.get("back")
    return back if isinstance(back, dict) else {}


def _p(ctx: Context, uid: int, **extra: Any) -> dict[str, Any]:
    return {"id": uid, "back": _back(ctx), **extra}


async def card_view(ctx: Context, uid: int | None, alert: Alert | None = None) -> View:
    if uid is None:
        return error_view(ctx, svc.UserError("no such user", "no_user", ref="?"))
    try:
        c = await svc.card(ctx.services, uid)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    ctx.target = c.username
    t = ctx.t
    now = datetime.now(UTC)
    status = t("users.status.locked" if c.locked else "users.status.active")
    if c.must_change:
        status += " · " + t("users.status.must_change")
    pw = t("users.pw.must_change" if c.must_change else "users.pw.set")
    if not c.has_password:
        pw = t("users.pw.none")
    f = c.failures
    failures = t(
        "users.failures", streak=f.streak, hour=f.last_hour, max=passwords.THROTTLE.max_per_hour
    )
    if f.last_failed_at:
        failures += " · " + t("users.last_failed", when=ago(ctx, f.last_failed_at, now))
    if f.retry_after_s:
        failures += " · " + t("users.retry_in", s=f.retry_after_s)
    linked = [f"{i.provider} {i.external_id}" for i in c.identities] or [t("users.none")]
    elevated = (
        t("users.elevated_until", time=c.elevated_until.strftime("%H:%M UTC"))
        if c.elevated_until
        else t("no")
    )
    view = View(title=t("users.card.title", username=c.username))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(
        Fields(
            [
                (t("users.f.role"), t(f"role.{c.role}")),
                (t("users.f.status"), status),
                (t("users.f.password"), pw),
                (t("users.f.mfa"), t(f"users.mfa.state.{c.mfa}")),
                (t("users.f.created"), ago(ctx, c.created_at, now)),
                (t("users.f.last_seen"), ago(ctx, c.last_seen_at, now)),
                (t("users.f.active_days"), str(c.active_days)),
                (t("users.f.last_login"), ago(ctx, c.last_login_at, now)),
                (t("users.f.logins"), str(c.ok_logins)),
                (t("users.f.failed"), failures),
                (t("users.f.linked"), ", ".join(linked)),
                (
                    t("users.f.api_keys"),
                    ", ".join(k.prefix + "…" for k in c.api_keys) or t("users.none"),
                ),
                (t("users.f.elevated"), elevated),
            ]
        )
    )
    uid = c.id
    roles = [r for r in ROLES if r != c.role]
    view.row(
        *[
            Button(
                t("users.btn.to_role", role=t(f"role.{r}")),
                "users.make_admin" if r == "admin" else "users.role",
                _p(ctx, uid, role=r),
            )
            for r in roles
        ]
    )
    view.row(
        Button(t("users.btn.unlock"), "users.lock", _p(ctx, uid, on=False))
        if c.locked
        else Button(t("users.btn.lock"), "users.lock", _p(ctx, uid, on=True), style="danger"),
        Button(t("users.btn.reset_pw"), "users.reset_pw", _p(ctx, uid)),
        Button(t("users.btn.force_change"), "users.force_change", _p(ctx, uid)),
    )
    view.row(
        Button(t("users.btn.mfa_reset"), "users.mfa_reset", _p(ctx, uid))
        if c.mfa != "off"
        else Button(t("users.btn.mfa_enrol"), "users.mfa_enrol", _p(ctx, uid)),
        Button(t("users.btn.api_key"), "users.apikey", _p(ctx, uid)),
    )
    view.row(
        Button(t("users.btn.sessions"), "users.sessions", _p(ctx, uid)),
        Button(t("users.btn.delete"), "users.delete", _p(ctx, uid), style="danger"),
    )
    view.row(Button(t("users.btn.back"), "users.list", _back(ctx)))
    return view


@users.action("card")
async def users_card(ctx: Context) -> View:
    return await card_view(ctx, _int(ctx.params.get("id")))


async def _run(ctx: Context, change: Any, ok_key: str, **kw: Any) -> View:
    """Run a service change; show the refreshed card with the outcome on top."""
    uid = _int(ctx.params.get("id"))
    if uid is None:
        return await card_view(ctx, None)
    try:
        name = await change(uid)
    except svc.UserError as exc:
        return error_view(ctx, exc, await card_view(ctx, uid) if exc.code != "no_user" else None)
    await menus.refresh_user(ctx.services, uid)  # a role or lock change shows a new menu
    ctx.target = name
    return await card_view(ctx, uid, Alert("success", ctx.t(ok_key, username=name, **kw)))


async def _name(ctx: Context) -> str:
    uid = _int(ctx.params.get("id"))
    if uid is None:
        return "?"
    try:
        return (await svc.card(ctx.services, uid)).username
    except svc.UserError:
        return "?"


async def _role_text(ctx: Context) -> str:
    role = str(ctx.params.get("role", ""))
    return ctx.t(
        "users.confirm.role",
        username=await _name(ctx),
        role=ctx.t(f"role.{role}") if role in ROLES else role,
    )


async def _role_change(ctx: Context) -> View:
    role = str(ctx.params.get("role", ""))
    return await _run(
        ctx,
        lambda uid: svc.set_role(ctx.services, actor_of(ctx), uid, role),
        "users.ok.role",
        role=ctx.t(f"role.{role}") if role in ROLES else role,
    )


# Nobody becomes admin through users.role: only make_admin (always with a step-up) or
# bulk_admin does that, and the pipeline refuses any other value before the handler runs.
BELOW_ADMIN = ("viewer", "operator")


@users.action(
    "role",
    confirm=True,
    confirm_text=_role_text,
    step_up_if=against_other_admin,
    params=(Param("role", BELOW_ADMIN, required=True),),
)
async def users_role(ctx: Context) -> View:
    return await _role_change(ctx)


@users.action("make_admin", step_up=True, confirm=True, confirm_text=_role_text)
async def users_make_admin(ctx: Context) -> View:
    ctx.params["role"] = "admin"
    return await _role_change(ctx)


async def _lock_text(ctx: Context) -> str:
    key = "users.confirm.lock" if ctx.params.get("on", True) else "users.confirm.unlock"
    return ctx.t(key, username=await _name(ctx))


@users.action("lock", confirm=True, confirm_text=_lock_text, step_up_if=against_other_admin)
async def users_lock(ctx: Context) -> View:
    on = bool(ctx.params.get("on", True))
    return await _run(
        ctx,
        lambda uid: svc.set_locked(ctx.services, actor_of(ctx), uid, on),
        "users.ok.lock" if on else "users.ok.unlock",
    )


async def _reset_text(ctx: Context) -> str:
    return ctx.t("users.confirm.reset_pw", username=await _name(ctx))


@users.action("reset_pw", confirm=True, confirm_text=_reset_text, step_up_if=against_other_admin)
async def users_reset_pw(ctx: Context) -> View | None:
    uid = _int(ctx.params.get("id"))
    if uid is None:
        return await card_view(ctx, None)

    def show(i: issue.Issued) -> View:
        return View(
            title=ctx.t("users.temp.title", username=i.username),
            blocks=[
                Text(i.secret, style="code"),
                Text(ctx.t("users.temp.how", username=i.username)),
            ],
        )

    try:
        return await handover.hand_over(
            ctx, lambda: issue.temp_password(ctx.services, actor_of(ctx), uid), show
        )
    except svc.UserError as exc:
        return error_view(ctx, exc)


@users.action("force_change", step_up_if=against_other_admin)
async def users_force_change(ctx: Context) -> View:
    return await _run(
        ctx,
        lambda uid: svc.set_must_change(ctx.services, actor_of(ctx), uid, True),
        "users.ok.force_change",
    )


@users.action("mfa_enrol", step_up_if=against_other_admin)
async def users_mfa_enrol(ctx: Context) -> View | None:
    uid = _int(ctx.params.get("id"))
    assert ctx.actor is not None
    if uid is not None and uid == ctx.actor.user_id:
        return await mfa_start_view(ctx)
    return await _run(
        ctx,
        lambda u: svc.mfa_request(ctx.services, actor_of(ctx), u),
        "users.ok.mfa_request",
        mfa=f"{_prefix(ctx)}mfa",
    )


async def _mfa_reset_text(ctx: Context) -> str:
    return ctx.t("users.confirm.mfa_reset", username=await _name(ctx))


@users.action("mfa_reset", step_up=True, confirm=True, confirm_text=_mfa_reset_text)
async def users_mfa_reset(ctx: Context) -> View:
    return await _run(
        ctx, lambda uid: svc.mfa_reset(ctx.services, actor_of(ctx), uid), "users.ok.mfa_reset"
    )


async def _apikey_text(ctx: Context) -> str:
    return ctx.t("users.confirm.api_key", username=await _name(ctx))


@users.action("apikey", step_up=True, confirm=True, confirm_text=_apikey_text)
async def users_apikey(ctx: Context) -> View | None:
    uid = _int(ctx.params.get("id"))
    if uid is None:
        return await card_view(ctx, None)

    def show(i: issue.Issued) -> View:
        ctx.audit_params["prefix"] = i.extra["prefix"]
        return View(
            title=ctx.t("users.key.title", username=i.username),
            blocks=[Text(i.secret, style="code"), Text(ctx.t("users.key.how"))],
        )

    try:
        return await handover.hand_over(
            ctx, lambda: issue.api_key(ctx.services, actor_of(ctx), uid), show
        )
    except svc.UserError as exc:
        return error_view(ctx, exc)
