"""User management from chat: /users (list, card, bulk), /adduser (dialog), /deluser,
and the self-service /mfa and /password.

Data comes from :mod:`piyasa.admin.users`, which enforces the safety rules for every
surface; this module only turns it into Views. The list's whole state (search, filters,
sort, page size, page, selection) travels in the server-side button params, so every
press re-renders from the database and a stale button can only show fresh data.
Secrets (temporary passwords, API keys, TOTP seeds) are shown once, in a new private
message with ``protect`` (never by editing a message that was sent unprotected).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from chatops import announce, dialogs, handover, i18n, menus, timefmt
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Image, Pager, Table, Text, View
from piyasa.admin import auth, issue, passwords
from piyasa.admin import users as svc
from piyasa.db.models import ROLES

ROLE_CYCLE = (None, *ROLES)
STATUS_CYCLE = (None, *svc.STATUSES)
ROW = 2  # user buttons per keyboard row (thumb-sized on a phone)


# -- small helpers ------------------------------------------------------------------------


def ago(ctx: Context, when: datetime | None, now: datetime | None = None) -> str:
    """Relative, localized by Babel: "2 dk. önce" / "2 min. ago"; "never" for None."""
    if when is None:
        return ctx.t("users.never")
    return timefmt.ago(ctx.lang, when, now, just_now=ctx.t("users.ago.now"))


def actor_of(ctx: Context) -> svc.Actor:
    assert ctx.actor is not None
    return svc.Actor(
        name=ctx.actor.username,
        user_id=ctx.actor.user_id,
        surface=ctx.surface,
        identity=(ctx.client.provider, ctx.client.external_id),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def against_other_admin(ctx: Context) -> bool:
    """Step-up rule (``step_up_if``): the request changes an admin account other than the
    caller's — the card's ``id``, a bulk selection ``sel`` or a ``username`` argument. A
    hijacked admin chat account must not lock out, demote or take over the other admins
    with a confirmation alone."""
    sel = (_int(x) for x in ctx.params.get("sel") or [])
    refs: list[int | str] = [i for i in sel if i is not None]
    uid = _int(ctx.params.get("id"))
    if uid is not None:
        refs.append(uid)
    if ctx.args.get("username"):
        refs.append(ctx.args["username"])
    besides = ctx.actor.user_id if ctx.actor else None
    return bool(await svc.admins_among(ctx.services, refs, besides=besides))


def error_view(ctx: Context, exc: svc.UserError, view: View | None = None) -> View:
    """The service's refusal, in the caller's language; also noted in the audit row."""
    ctx.audit_params["outcome"] = exc.code
    key = f"users.err.{exc.code}"
    text = ctx.t(key, **exc.params) if i18n.has(key) else str(exc)
    view = view or View()
    view.blocks.insert(0, Alert("error", text))
    return view


def _prefix(ctx: Context) -> str:
    return "/piyasa " if ctx.surface == "slack" else "/"


# -- the list -------------------------------------------------------------------------------


def _list_state(ctx: Context) -> dict[str, Any]:
    p = dict(ctx.params)
    state = {
        "q": str(p.get("q") or ctx.args.get("search", "") or "")[:64],
        "r": p.get("r") if p.get("r") in ROLES else None,
        "s": p.get("s") if p.get("s") in svc.STATUSES else None,
        "o": p.get("o") if p.get("o") in svc.SORTS else "name",
        "n": p.get("n") if p.get("n") in svc.PAGE_SIZES else svc.PAGE_SIZES[0],
        "p": _int(p.get("page", p.get("p"))) or 1,
        "m": bool(p.get("m")),
        "sel": sorted({i for i in (_int(x) for x in p.get("sel") or []) if i is not None})[:200],
    }
    return state


def _next(cycle: tuple[Any, ...], value: Any) -> Any:
    return cycle[(cycle.index(value) + 1) % len(cycle)] if value in cycle else cycle[0]


async def list_view(ctx: Context, state: dict[str, Any], alert: Alert | None = None) -> View:
    page = await svc.query_users(
        ctx.services,
        search=state["q"],
        role=state["r"],
        status=state["s"],
        sort=state["o"],
        page=state["p"],
        per_page=state["n"],
    )
    state = {**state, "p": page.page}
    t = ctx.t
    shown = [t("users.filter.search", q=state["q"])] if state["q"] else []
    if state["r"]:
        shown.append(t("users.filter.role", role=t(f"role.{state['r']}")))
    if state["s"]:
        shown.append(t(f"users.status.{state['s']}"))
    view = View(title=t("users.title", n=page.total))
    if alert is not None:
        view.blocks.append(alert)
    if shown:
        view.blocks.append(Text(t("users.filtered", filters=" · ".join(shown))))
    if not page.rows:
        view.blocks.append(Text(t("users.empty")))
    else:
        now = datetime.now(UTC)
        view.blocks.append(
            Table(
                [
                    t("users.col.user"),
                    t("users.col.role"),
                    t("users.col.status"),
                    t("users.col.created"),
                    t("users.col.last_seen"),
                ],
                [
                    (
                        r.username,
                        t(f"role.{r.role}"),
                        t(f"users.status.{r.status}") + (" 🔐" if r.mfa else ""),
                        ago(ctx, r.created_at, now),
                        ago(ctx, r.last_seen_at, now),
                    )
                    for r in page.rows
                ],
            )
        )
    selected = set(state["sel"])
    user_buttons = []
    for r in page.rows:
        if state["m"]:
            sel = sorted(selected ^ {r.id})
            mark = "☑" if r.id in selected else "☐"
            user_buttons.append(Button(f"{mark} {r.username}", "users.list", {**state, "sel": sel}))
        else:
            user_buttons.append(
                Button(f"👤 {r.username}", "users.card", {"id": r.id, "back": state})
            )
    for i in range(0, len(user_buttons), ROW):
        view.row(*user_buttons[i : i + ROW])
    role_label = t(f"role.{state['r']}") if state["r"] else t("users.all")
    status_label = t(f"users.status.{state['s']}") if state["s"] else t("users.all")
    view.row(
        Button(
            t("users.btn.role_filter", v=role_label),
            "users.list",
            {**state, "r": _next(ROLE_CYCLE, state["r"]), "p": 1},
        ),
        Button(
            t("users.btn.status_filter", v=status_label),
            "users.list",
            {**state, "s": _next(STATUS_CYCLE, state["s"]), "p": 1},
        ),
    )
    view.row(
        Button(
            t("users.btn.sort", v=t(f"users.sort.{state['o']}")),
            "users.list",
            {**state, "o": _next(svc.SORTS, state["o"]), "p": 1},
        ),
        Button(
            t("users.btn.per_page", v=state["n"]),
            "users.list",
            {**state, "n": _next(svc.PAGE_SIZES, state["n"]), "p": 1},
        ),
    )
    if state["q"]:
        view.row(Button(t("users.btn.clear_search"), "users.list", {**state, "q": "", "p": 1}))
    if state["m"]:
        sel = state["sel"]
        view.blocks.append(Text(t("users.selected", n=len(sel))))
        if sel:
            view.row(
                Button(t("users.btn.lock"), "users.bulk", {"op": "lock", "sel": sel}),
                Button(t("users.btn.unlock"), "users.bulk", {"op": "unlock", "sel": sel}),
                Button(t("users.btn.delete"), "users.bulk_delete", {"sel": sel}, style="danger"),
            )
            view.row(
                Button(
                    t("users.btn.to_role", role=t("role.viewer")),
                    "users.bulk",
                    {"op": "role", "role": "viewer", "sel": sel},
                ),
                Button(
                    t("users.btn.to_role", role=t("role.operator")),
                    "users.bulk",
                    {"op": "role", "role": "operator", "sel": sel},
                ),
                Button(
                    t("users.btn.to_role", role=t("role.admin")),
                    "users.bulk_admin",
                    {"sel": sel},
                ),
            )
        view.row(Button(t("users.btn.select_done"), "users.list", {**state, "m": False, "sel": []}))
    else:
        view.row(
            Button(t("users.btn.select"), "users.list", {**state, "m": True}),
            Button(t("users.btn.add"), "adduser"),
        )
    view.pager = Pager("users.list", page.page, page.pages, {k: v for k, v in state.items()})
    return view


@command("users", role="admin", order=30, args=(Arg("search", rest=True, max_len=64),))
async def users(ctx: Context) -> View:
    """The list; ``/users TEXT`` searches usernames."""
    return await list_view(ctx, _list_state(ctx))


@users.action("list")
async def users_list(ctx: Context) -> View:
    return await list_view(ctx, _list_state(ctx))


# -- the card -------------------------------------------------------------------------------


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


async def _ask_username(ctx: Context, data: dict[str, Any]) -> View:
    return View(blocks=[Text(ctx.t("users.add.ask_username"))])


async def _on_username(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    try:
        name = svc.validate_username(text)
    except svc.UserError:
        return "users.add.bad_username"
    if await svc.user_ids(ctx.services, [name]):
        return "users.add.taken"
    data["username"] = name
    return None


async def _ask_role(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_role", username=data.get("username", "")))],
        buttons=[[wizard.choice(ctx, ctx.t(f"role.{r}"), "role", r) for r in ROLES]],
    )


async def _on_role(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ROLES:
        return "users.add.bad_choice"
    data["role"] = value
    return None


async def _ask_password(ctx: Context, data: dict[str, Any]) -> View:
    key = "users.add.ask_password_group" if ctx.input_exposed else "users.add.ask_password"
    return View(
        blocks=[Text(ctx.t(key))],
        buttons=[[wizard.choice(ctx, ctx.t("users.add.generate"), "password", "generate")]],
    )


async def _on_password_choice(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value != "generate":
        return "users.add.bad_choice"
    data["password"] = "generate"
    data.pop("password_hash", None)
    return None


async def _on_password_text(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    # The dialog tried to delete the message holding it (a secret step): say what happened.
    # (A Slack slash command's text is seen by nobody else, even in a channel.)
    if ctx.input_exposed:
        return (
            "users.add.password_visible" if ctx.secret_visible else "users.add.password_not_private"
        )
    problem = passwords.problem(text, data.get("username"))
    if problem:
        return f"users.err.password_{problem}"
    data["password"] = "typed"
    data["password_hash"] = auth.hash_password(text)  # the password itself is never stored
    return None


async def _ask_must_change(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_must_change"))],
        buttons=[
            [
                wizard.choice(ctx, ctx.t("yes"), "must_change", "yes"),
                wizard.choice(ctx, ctx.t("no"), "must_change", "no"),
            ]
        ],
    )


async def _on_must_change(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ("yes", "no"):
        return "users.add.bad_choice"
    data["must_change"] = value == "yes"
    return None


async def _ask_mfa(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        blocks=[Text(ctx.t("users.add.ask_mfa"))],
        buttons=[
            [
                wizard.choice(ctx, ctx.t("users.add.mfa_now"), "mfa", "now"),
                wizard.choice(ctx, ctx.t("users.add.mfa_later"), "mfa", "later"),
            ]
        ],
    )


async def _on_mfa(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    if value not in ("now", "later"):
        return "users.add.bad_choice"
    data["mfa"] = value
    return None


async def _summary(ctx: Context, data: dict[str, Any]) -> View:
    t = ctx.t
    role = data.get("role", "viewer")
    action = "adduser.create_admin" if role == "admin" else "adduser.create"
    pw = t("users.add.pw_generated" if data.get("password") == "generate" else "users.add.pw_typed")
    return View(
        blocks=[
            Fields(
                [
                    (t("users.f.user"), data.get("username", "")),
                    (t("users.f.role"), t(f"role.{role}")),
                    (t("users.f.password"), pw),
                    (t("users.f.must_change"), t("yes" if data.get("must_change") else "no")),
                    (t("users.f.mfa"), t(f"users.add.mfa_{data.get('mfa', 'later')}")),
                ]
            )
        ],
        buttons=[[Button(t("users.add.create"), action, style="primary")]],
    )


async def _finish(ctx: Context, data: dict[str, Any]) -> View:  # never reached: Create does it
    return await _summary(ctx, data)


wizard = dialogs.Dialog(
    "adduser",
    steps=[
        dialogs.Step("username", _ask_username, on_text=_on_username),
        dialogs.Step("role", _ask_role, on_choice=_on_role),
        dialogs.Step(
            "password",
            _ask_password,
            on_text=_on_password_text,
            on_choice=_on_password_choice,
            secret=True,
        ),
        dialogs.Step("must_change", _ask_must_change, on_choice=_on_must_change),
        dialogs.Step("mfa", _ask_mfa, on_choice=_on_mfa),
        dialogs.Step("summary", _summary),
    ],
    finish=_finish,
)


@command("adduser", role="admin", order=31)
async def adduser(ctx: Context) -> View:
    """Add a user step by step (Back/Cancel); ends with a one-time link code."""
    return await wizard.start(ctx)


wizard.bind(adduser)


async def _create(ctx: Context, admin: bool) -> View | None:
    state = await dialogs.active(ctx)
    if not state or state.get("dialog") != "adduser" or state.get("step") != len(wizard.steps) - 1:
        return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
    data = state["data"]
    if (data.get("role") == "admin") != admin:
        return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
    mfa = data.get("mfa") == "now"

    def create() -> Awaitable[issue.Issued]:
        return issue.new_user(
            ctx.services,
            actor_of(ctx),
            data["username"],
            data["role"],
            password_hash=data.get("password_hash"),
            generate_password=data.get("password") == "generate",
            must_change=bool(data.get("must_change")),
            mfa=mfa,
        )

    def show(i: issue.Issued) -> View:
        t, code = ctx.t, i.secret
        role = t(f"role.{data['role']}")
        blocks: list[Any] = [
            Alert("success", t("users.add.done", username=i.username, role=role)),
            Text(t("users.add.link_code")),
            Text(code, style="code"),
            Text(t("linkcode.how", username=i.username, code=code)),
        ]
        if i.extra.get("password"):
            blocks += [Text(t("users.add.temp_password")), Text(i.extra["password"], style="code")]
        if mfa:
            blocks.append(Text(t("users.add.mfa_next", mfa=f"{_prefix(ctx)}mfa")))
        return View(title=t("users.add.done_title"), blocks=blocks)

    try:
        view = await handover.hand_over(ctx, create, show)
    except svc.UserError as exc:
        return error_view(ctx, exc)
    await dialogs.cancel_active(ctx)
    return view


@adduser.action("create")
async def adduser_create(ctx: Context) -> View | None:
    return await _create(ctx, admin=False)


@adduser.action("create_admin", step_up=True)
async def adduser_create_admin(ctx: Context) -> View | None:
    return await _create(ctx, admin=True)


# -- self service: /mfa and /password -----------------------------------------------------------


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
