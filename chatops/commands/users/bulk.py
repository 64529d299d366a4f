"""Bulk actions on the users selected in the /users list."""

from __future__ import annotations

from typing import Any

from chatops.commands.registry import Param
from chatops.commands.users.card import BELOW_ADMIN
from chatops.commands.users.common import _int, actor_of, against_other_admin, error_view
from chatops.commands.users.listing import list_view, users
from chatops.context import Context
from chatops.views import Alert, View
from piyasa.admin import users as svc


def _bulk_args(ctx: Context, op: str | None = None) -> tuple[str, str | None, list[int]]:
    op = op or str(ctx.params.get("op", ""))
    role = ctx.params.get("role") if op == "role" else None
    sel = [i for i in (_int(x) for x in ctx.params.get("sel") or []) if i is not None]
    return op, role, sel


async def _preview_text(ctx: Context, op: str | None = None, role: str | None = None) -> str:
    op_, role_, sel = _bulk_args(ctx, op)
    role = role or role_
    try:
        plan = await svc.bulk_preview(ctx.services, actor_of(ctx), op_, sel, role)
    except svc.UserError:
        return ctx.t("users.bulk.nothing")
    t = ctx.t
    what = t(f"users.bulk.op.{op_}", role=t(f"role.{role}") if role else "")
    lines = [
        t("users.bulk.affects", what=what, n=len(plan.affected), names=", ".join(plan.affected))
        if plan.affected
        else t("users.bulk.nothing")
    ]
    for name, reason in plan.skipped:
        lines.append(t("users.bulk.skipped", username=name, why=t(f"users.skip.{reason}")))
    return "\n".join(lines)


async def _bulk_run(ctx: Context, op: str, role: str | None = None) -> View:
    _, role_, sel = _bulk_args(ctx, op)
    role = role or role_
    try:
        plan = await svc.bulk_apply(ctx.services, actor_of(ctx), op, sel, role)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    ctx.audit_params["affected"] = plan.affected
    ctx.audit_params["skipped"] = [n for n, _ in plan.skipped]
    t = ctx.t
    what = t(f"users.bulk.op.{op}", role=t(f"role.{role}") if role else "")
    text = t(
        "users.bulk.done", what=what, n=len(plan.affected), names=", ".join(plan.affected) or "—"
    )
    state = {"m": False, "sel": []}
    return await list_view(ctx, {**_list_defaults(), **state}, Alert("success", text))


def _list_defaults() -> dict[str, Any]:
    return {
        "q": "",
        "r": None,
        "s": None,
        "o": "name",
        "n": svc.PAGE_SIZES[0],
        "p": 1,
        "m": False,
        "sel": [],
    }


@users.action(
    "bulk",
    confirm=True,
    confirm_text=lambda ctx: _preview_text(ctx),
    step_up_if=against_other_admin,
    # deleting and making admins have their own actions, each with a step-up
    params=(Param("op", ("lock", "unlock", "role"), required=True), Param("role", BELOW_ADMIN)),
)
async def users_bulk(ctx: Context) -> View:
    op, role, _ = _bulk_args(ctx)
    return await _bulk_run(ctx, op, role)


@users.action(
    "bulk_admin",
    step_up=True,
    confirm=True,
    confirm_text=lambda ctx: _preview_text(ctx, "role", "admin"),
)
async def users_bulk_admin(ctx: Context) -> View:
    return await _bulk_run(ctx, "role", "admin")


@users.action(
    "bulk_delete", step_up=True, confirm=True, confirm_text=lambda ctx: _preview_text(ctx, "delete")
)
async def users_bulk_delete(ctx: Context) -> View:
    return await _bulk_run(ctx, "delete")


# -- add user: a dialog ------------------------------------------------------------------------
