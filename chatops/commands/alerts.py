"""`/alerts` (the bell and the center), `/silence`, `/notify` (your preferences) and
`/routes`, over :mod:`piyasa.admin.notify`.

Roles (issue 13): a viewer reads and marks read; an operator acks, snoozes and resolves;
an admin silences, edits routing and sends test notifications. Every button is declared
here, so the role sweep (tests/chatops/test_role_sweep.py) presses each as every role.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatops import alert_views
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin.notify import routing
from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.rules import NotifyError, format_matchers
from piyasa.admin.notify.store import SNOOZES
from piyasa.cluster.changes import announce

STATES = ("open", "acked", "resolved", "all")


def _now(ctx: Context) -> datetime:
    svc = ctx.extras.get("notify")
    return svc.now() if svc is not None else datetime.now(UTC)


def _forwarded(ctx: Context) -> bool:
    """Several instances share the database: the notification service runs on the one
    holding the admin role, and work asked of a standby is forwarded to it
    (piyasa.cluster.changes; piyasa/cluster/apply.py does it there)."""
    cluster = ctx.extras.get("cluster")
    return cluster is not None and cluster.changes.shared


def _user_id(ctx: Context) -> int | None:
    return ctx.actor.user_id if ctx.actor else None


def _error(ctx: Context, exc: NotifyError) -> View:
    """Why nothing changed: as a message, and as the press's toast; a button of a notice
    everyone reads (KEEP) answers in a new message and leaves the notice in place."""
    text = ctx.t(f"alerts.error.{exc.code}", **exc.params)
    view = View.message(text, level="error")
    view.notice = text[:200]
    if ctx.params.get(alert_views.KEEP):
        view.edit = False
    return view


def _reading(ctx: Context, it: notify_store.Item) -> Any:
    health = ctx.extras.get("health")
    if health is None or it.source != "health":
        return None
    return health.snapshot().components.get(str(it.params.get("component", "")))


def _id(ctx: Context) -> int:
    raw = ctx.params.get("id")
    if not isinstance(raw, int):
        raise NotifyError("not_found", "no notification given", id="?")
    return raw


async def _center(ctx: Context, state: str) -> View:
    state = state if state in STATES else "all"
    now = _now(ctx)
    uid = _user_id(ctx)
    center = await notify_store.center(ctx.services, uid, now, state=state)
    tz = (await routing.get_prefs(ctx.services, uid)).timezone if uid else None
    view = alert_views.center_view(
        ctx.lang, center, now, level=ctx.level, state=state, tz=tz or ctx.services.settings.timezone
    )
    if ctx.level >= alert_views.ADMIN:
        view.row(Button(ctx.t("alerts.btn.test"), "alerts.test", {}))
    return view


@command("alerts", role="viewer", order=35, args=(Arg("state", choices=STATES),))
async def alerts(ctx: Context) -> View:
    return await _center(ctx, ctx.args.get("state", "all").lower())


@alerts.action("refresh", params=(Param("state", STATES),))
async def alerts_refresh(ctx: Context) -> View:
    return await _center(ctx, str(ctx.params.get("state") or "all"))


@alerts.action("view")
async def alerts_view(ctx: Context) -> View:
    try:
        it = await notify_store.get(ctx.services, _id(ctx), _user_id(ctx), _now(ctx))
    except NotifyError as exc:
        return _error(ctx, exc)
    return alert_views.detail_view(
        ctx.lang, it, _now(ctx), level=ctx.level, reading=_reading(ctx, it)
    )


@alerts.action("read_all")
async def alerts_read_all(ctx: Context) -> View:
    uid = _user_id(ctx)
    n = await notify_store.mark_all_read(ctx.services, uid, _now(ctx)) if uid else 0
    view = await _center(ctx, "all")
    done = ctx.t("alerts.done.read_all", n=n)
    view.blocks.insert(0, Alert("success", done))  # Slack has no toast: said in the view
    view.notice = done
    return view


async def _act(ctx: Context, done: str, fn: Any, **extra: Any) -> View:
    """Run one change on incident ``id``; the incident's details, with a toast."""
    now = _now(ctx)
    try:
        nid = _id(ctx)
        await fn(nid, now)
        it = await notify_store.get(ctx.services, nid, _user_id(ctx), now)
    except NotifyError as exc:
        return _error(ctx, exc)
    ctx.target = f"#{nid}"
    view = alert_views.detail_view(ctx.lang, it, now, level=ctx.level, reading=_reading(ctx, it))
    view.blocks.insert(0, Alert("success", ctx.t(done, id=nid, **extra)))
    view.notice = ctx.t(done, id=nid, **extra)[:200]
    if ctx.params.get(alert_views.KEEP):
        view.edit = False
    return view


@alerts.action("ack", role="operator")
async def alerts_ack(ctx: Context) -> View:
    return await _act(
        ctx,
        "alerts.done.ack",
        lambda n, now: notify_store.ack(ctx.services, n, ctx.actor_label, now),
    )


@alerts.action("resolve", role="operator")
async def alerts_resolve(ctx: Context) -> View:
    return await _act(
        ctx,
        "alerts.done.resolve",
        lambda n, now: notify_store.resolve(ctx.services, n, ctx.actor_label, now),
    )


@alerts.action("snooze", role="operator", params=(Param("for", tuple(SNOOZES), required=True),))
async def alerts_snooze(ctx: Context) -> View:
    span = str(ctx.params["for"])
    now = _now(ctx)
    return await _act(
        ctx,
        "alerts.done.snooze",
        lambda n, at: notify_store.snooze(ctx.services, n, ctx.actor_label, span, at),
        until=alert_views.until_text(now, SNOOZES[span]),
    )


@alerts.action(
    "silence", role="admin", params=(Param("for", alert_views.SILENCE_SPANS, required=True),)
)
async def alerts_silence(ctx: Context) -> View:
    span = str(ctx.params["for"])
    now = _now(ctx)
    try:
        nid = _id(ctx)
        info = await notify_store.silence_incident(ctx.services, nid, span, ctx.actor_label, now)
        it = await notify_store.get(ctx.services, nid, _user_id(ctx), now)
    except NotifyError as exc:
        return _error(ctx, exc)
    ctx.target = f"#{nid}"
    done = ctx.t(
        "alerts.done.silence",
        sid=info.id,
        until=info.ends_at.strftime("%Y-%m-%d %H:%M"),
        matchers=info.matchers,
    )
    view = alert_views.detail_view(ctx.lang, it, now, level=ctx.level)
    view.blocks.insert(0, Alert("success", done))
    view.notice = done[:200]
    if ctx.params.get(alert_views.KEEP):
        view.edit = False
    return view


@alerts.action("test", role="admin")
async def alerts_test(ctx: Context) -> View:
    svc = ctx.extras.get("notify")
    where = f"{ctx.surface}:{ctx.chat_id}"
    if svc is None:  # a standby instance: the one holding the admin role sends it
        if not _forwarded(ctx):
            return View.message(ctx.t("alerts.not_running"), level="warning")
        await announce(ctx.services, "notify-test", {"where": where, "lang": ctx.lang})
        return View.message(ctx.t("alerts.done.test_forwarded", where=where), level="success")
    await svc.send_test(where, ctx.lang)
    return View.message(ctx.t("alerts.done.test", where=where), level="success")


# -- /silence --------------------------------------------------------------------------------


async def _silences(ctx: Context) -> View:
    now = _now(ctx)
    rows = await notify_store.silences(ctx.services, now)
    view = View(title=ctx.t("alerts.silences.title"))
    lines = [
        ctx.t(
            "alerts.silences.line",
            id=s.id,
            kind=s.kind,
            matchers=s.matchers,
            until=s.ends_at.strftime("%Y-%m-%d %H:%M"),
            by=s.created_by,
        )
        for s in rows
    ]
    view.add(Text("\n".join(lines) or ctx.t("alerts.silences.empty")))
    view.add(Text(ctx.t("alerts.silences.usage"), style="italic"))
    for s in rows[:20]:
        view.row(Button(ctx.t("alerts.silences.expire", id=s.id), "silence.expire", {"id": s.id}))
    return view


@command(
    "silence",
    role="admin",
    order=36,
    args=(Arg("matchers"), Arg("duration"), Arg("comment", rest=True)),
)
async def silence(ctx: Context) -> View:
    matchers = ctx.args.get("matchers", "")
    if not matchers:
        return await _silences(ctx)
    try:
        info = await notify_store.add_silence(
            ctx.services,
            matchers,
            ctx.args.get("duration", ""),
            ctx.actor_label,
            _now(ctx),
            comment=ctx.args.get("comment", ""),
        )
    except NotifyError as exc:
        return _error(ctx, exc)
    ctx.target = f"silence #{info.id}"
    text = ctx.t(
        "alerts.done.silence",
        sid=info.id,
        until=info.ends_at.strftime("%Y-%m-%d %H:%M"),
        matchers=info.matchers,
    )
    return View.message(text, level="success")


@silence.action("expire")
async def silence_expire(ctx: Context) -> View:
    sid = ctx.params.get("id")
    if isinstance(sid, int) and await notify_store.expire_silence(ctx.services, sid, _now(ctx)):
        view = await _silences(ctx)
        view.notice = ctx.t("alerts.silences.expired", id=sid)
        return view
    return await _silences(ctx)


# -- /notify: your own preferences ---------------------------------------------------------------

DIGEST_SETTINGS = ("digest", "analytics", "tz", "lang")  # a change re-schedules the digests


@command(
    "notify",
    role="viewer",
    order=37,
    args=(Arg("setting", choices=routing.SETTINGS), Arg("value", rest=True)),
)
async def notify(ctx: Context) -> View:
    uid = _user_id(ctx)
    assert uid is not None  # a viewer is a linked user
    setting = ctx.args.get("setting", "").lower()
    saved = False
    if setting:
        try:
            await routing.set_pref(ctx.services, uid, setting, ctx.args.get("value", ""))
        except NotifyError as exc:
            return _error(ctx, exc)
        saved = True
        digests = ctx.extras.get("notify.digests")
        if digests is not None and setting in DIGEST_SETTINGS:
            await digests.reschedule(uid)
        elif setting in DIGEST_SETTINGS and _forwarded(ctx):  # a standby instance
            await announce(ctx.services, "digests", {"user": uid})
    p = await routing.get_prefs(ctx.services, uid)
    none = ctx.t("alerts.prefs.none")
    view = View(title=ctx.t("alerts.prefs.title"))
    if saved:
        view.add(Alert("success", ctx.t("alerts.prefs.saved")))
    view.add(
        Fields(
            [
                (
                    ctx.t("alerts.prefs.subscribed"),
                    ctx.t("alerts.prefs.on" if p.subscribed else "alerts.prefs.off"),
                ),
                (ctx.t("alerts.prefs.severities"), ", ".join(p.severities)),
                (ctx.t("alerts.prefs.channels"), ", ".join(p.channels)),
                (ctx.t("alerts.prefs.quiet"), p.quiet_hours or none),
                (ctx.t("alerts.prefs.tz"), p.timezone),
                (ctx.t("alerts.prefs.lang"), p.language or none),
                (ctx.t("alerts.prefs.digest"), p.digest or none),
                (ctx.t("alerts.prefs.analytics"), p.analytics_digest or none),
            ]
        ),
        Text(ctx.t("alerts.prefs.usage"), style="italic"),
    )
    return view


# -- /routes (admin) ---------------------------------------------------------------------------


@command(
    "routes",
    role="admin",
    order=38,
    args=(
        Arg("op", choices=("add", "del")),
        Arg("name"),
        Arg("matchers"),
        Arg("destinations"),
    ),
)
async def routes(ctx: Context) -> View:
    op, name = ctx.args.get("op", "").lower(), ctx.args.get("name", "")
    notice: View | None = None
    if op == "add":
        try:
            await routing.add_route(
                ctx.services,
                name,
                ctx.args.get("matchers", ""),
                ctx.args.get("destinations", ""),
                ctx.actor_label,
            )
        except NotifyError as exc:
            return _error(ctx, exc)
        ctx.target = f"route {name}"
        notice = View.message(ctx.t("alerts.routes.added", name=name), level="success")
    elif op == "del":
        ok = await routing.delete_route(ctx.services, name.strip().lower())
        key = "alerts.routes.deleted" if ok else "alerts.routes.no_such"
        notice = View.message(ctx.t(key, name=name), level="success" if ok else "error")
    rows = await routing.list_routes(ctx.services)
    lines = [
        ctx.t(
            "alerts.routes.line",
            name=r.name,
            matchers=format_matchers(r.matchers),
            destinations=", ".join(r.destinations),
        )
        for r in rows
    ]
    view = View(title=ctx.t("alerts.routes.title"))
    if notice is not None:
        view.blocks.extend(notice.blocks)
    view.add(Text("\n".join(lines) or ctx.t("alerts.routes.empty")))
    view.add(Text(ctx.t("alerts.routes.usage"), style="italic"))
    return view
