"""The `/health` command, its screens' buttons and the quick actions (operator and up,
audited; confirmed where disruptive)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatops.commands.health.live import _live, _pressed_ref, _start_live
from chatops.commands.health.views import (
    _answer,
    _bot_name,
    _health,
    _keep,
    _not_running,
    _result,
    details_view,
    overview,
    seen,
)
from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Alert, Button, File, Text, View
from piyasa.admin import admin_chats
from piyasa.admin.health import actions
from piyasa.admin.setup.checks import alert_destinations

log = logging.getLogger(__name__)


# -- /health --------------------------------------------------------------------------------


async def with_chat_rights(ctx: Context, view: View) -> View:
    """Warn (under the component lines) about each admin chat where the admin bot may not
    delete messages: a password typed there would stay readable. Read from a one-minute
    cache (:func:`piyasa.admin.admin_chats.cached`), never failing the overview."""
    if not alert_destinations(ctx.services.settings):
        view.blocks.insert(1, Alert("warning", ctx.t("health.alerts_nowhere")))
    try:
        rights = await admin_chats.cached(ctx.services)
    except Exception as exc:
        log.warning("admin chat rights unknown: %s", type(exc).__name__)
        return view
    for r in rights:
        if not r.ok:
            why = ctx.t(f"health.admin_chat.{r.problem}")
            text = ctx.t("health.admin_chat.cannot_delete", chat=r.chat_id, why=why)
            view.blocks.insert(1, Alert("warning", text))
    return view


@command(
    "health",
    role="viewer",
    order=30,
    args=(Arg("mode", choices=("live",)),),
    needs=(),
    capability="health",
)
async def health(ctx: Context) -> View | None:
    hs = _health(ctx)
    if hs is None:
        return _not_running(ctx)
    if ctx.args.get("mode", "").lower() == "live":
        return await _start_live(ctx)
    return await with_chat_rights(ctx, overview(ctx, seen(ctx, hs.snapshot())))


@health.action("overview", needs=())
async def health_overview(ctx: Context) -> View:
    hs = _health(ctx)
    if hs is None:
        return _not_running(ctx)
    await _live(ctx).stop(_pressed_ref(ctx))
    return _answer(ctx, await with_chat_rights(ctx, overview(ctx, seen(ctx, hs.snapshot()))))


@health.action("details", needs=())
async def health_details(ctx: Context) -> View:
    hs = _health(ctx)
    if hs is None:
        return _not_running(ctx)
    snap = seen(ctx, hs.snapshot())
    reading = snap.get(str(ctx.params.get("c", "")))
    if reading is None:
        return _answer(ctx, overview(ctx, snap))
    if not _keep(ctx):
        await _live(ctx).stop(_pressed_ref(ctx))
    return _answer(ctx, details_view(ctx, reading))


@health.action("actions", role="operator", needs=())
async def health_actions(ctx: Context) -> View:
    """The quick-action panel."""
    fleet = ctx.extras.get("fleet")
    paused = bool(fleet and fleet.snapshot().get("paused"))
    if not _keep(ctx):
        await _live(ctx).stop(_pressed_ref(ctx))
    view = View(title=ctx.t("health.actions.title"), blocks=[Text(ctx.t("health.actions.text"))])
    view.row(
        Button(ctx.t("health.action.restart"), "health.restart"),
        Button(ctx.t("health.action.reset"), "health.reset", {"bot": "all"}),
    )
    view.row(
        Button(ctx.t("health.action.resume"), "health.resume")
        if paused
        else Button(ctx.t("health.action.pause"), "health.pause"),
        Button(ctx.t("health.action.clear_cache"), "health.clear_cache"),
    )
    view.row(
        Button(ctx.t("health.action.run_checks"), "health.run_checks"),
        Button(ctx.t("health.action.logs"), "health.logs"),
    )
    view.row(Button(ctx.t("health.back"), "health.overview"))
    return _answer(ctx, view)


# -- quick actions (operator+, audited; confirmed where disruptive) --------------------------


async def _confirm_restart(ctx: Context) -> str:
    return ctx.t("health.confirm.restart")


async def _confirm_pause(ctx: Context) -> str:
    return ctx.t("health.confirm.pause")


async def _confirm_clear(ctx: Context) -> str:
    return ctx.t("health.confirm.clear_cache")


@health.action("restart", role="operator", confirm=True, confirm_text=_confirm_restart)
async def health_restart(ctx: Context) -> View:
    try:
        n = await actions.restart_workers(ctx.services)
    except actions.NotRunning as exc:
        return _answer(ctx, _not_running(ctx, exc.part))
    ctx.audit_params["restarted"] = n
    return _result(ctx, "success", "health.done.restart", n=n)


@health.action("reset", role="operator", needs=())
async def health_reset(ctx: Context) -> View:
    raw = str(ctx.params.get("bot", "all"))
    bot_id = int(raw) if raw.isdigit() else None
    ctx.target = f"bot:{bot_id}" if bot_id is not None else "breakers:all"
    try:
        n = actions.reset_breakers(ctx.services, bot_id)
    except actions.NotRunning as exc:
        return _answer(ctx, _not_running(ctx, exc.part))
    ctx.audit_params["reset"] = n
    await _refresh_soon(ctx)
    if bot_id is not None:
        return _result(ctx, "success", "health.done.reset_one", bot=_bot_name(ctx, raw))
    return _result(ctx, "success", "health.done.reset_all", n=n)


@health.action("pause", role="operator", confirm=True, confirm_text=_confirm_pause)
async def health_pause(ctx: Context) -> View:
    try:
        await actions.pause_fleet(ctx.services, ctx.actor_label)
    except actions.NotRunning as exc:
        return _answer(ctx, _not_running(ctx, exc.part))
    await _refresh_soon(ctx)
    view = _result(ctx, "success", "health.done.pause")
    view.buttons.insert(0, [Button(ctx.t("health.action.resume"), "health.resume")])
    return view


@health.action("resume", role="operator")
async def health_resume(ctx: Context) -> View:
    try:
        await actions.resume_fleet(ctx.services, ctx.actor_label)
    except actions.NotRunning as exc:
        return _answer(ctx, _not_running(ctx, exc.part))
    await _refresh_soon(ctx)
    return _result(ctx, "success", "health.done.resume")


@health.action("clear_cache", role="operator", confirm=True, confirm_text=_confirm_clear)
async def health_clear_cache(ctx: Context) -> View:
    cleared = await actions.clear_cache(ctx.services)
    ctx.audit_params.update(
        principals=cleared.principals, entries=cleared.cache_entries, fleet=cleared.fleet_reloaded
    )
    return _result(
        ctx, "success", "health.done.clear_cache", n=cleared.principals + cleared.cache_entries
    )


@health.action("run_checks", role="operator", needs=())
async def health_run_checks(ctx: Context) -> View:
    try:
        snap = await actions.run_checks(ctx.services)
    except actions.NotRunning as exc:
        return _answer(ctx, _not_running(ctx, exc.part))
    alerter = ctx.extras.get("health.alerts")
    if alerter is not None:
        alerter.retry_now()
    if not _keep(ctx):
        await _live(ctx).stop(_pressed_ref(ctx))
    view = overview(ctx, snap)
    view.notice = ctx.t("health.done.run_checks")
    return _answer(ctx, view)


@health.action("logs", role="operator", needs=())
async def health_logs(ctx: Context) -> View:
    filename, data, n = actions.recent_logs(ctx.services)
    ctx.audit_params["lines"] = n
    return View(
        blocks=[Text(ctx.t("health.done.logs", n=n))],
        files=[File(filename, data, caption=ctx.t("health.logs.caption", n=n), mime="text/plain")],
        protect=True,
        private=True,
        edit=False,
    )


async def _refresh_soon(ctx: Context) -> None:
    """A fix shows in the health state at the next round; make that round now."""
    hs = _health(ctx)
    if hs is not None:
        task = asyncio.ensure_future(hs.run_all_now())
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Task[Any]] = set()


@health.action("live", needs=())
async def health_live(ctx: Context) -> View | None:
    if _health(ctx) is None:
        return _not_running(ctx)
    return await _start_live(ctx)


@health.action("stop_live", needs=())
async def health_stop_live(ctx: Context) -> View:
    hs = _health(ctx)
    if hs is None:
        return _not_running(ctx)
    await _live(ctx).stop(_pressed_ref(ctx))
    return overview(ctx, hs.snapshot(), live_ended=True)
