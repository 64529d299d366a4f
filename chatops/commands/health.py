"""`/health`: the overall line, one line per component, [Details] per component, a live
mode, and the quick actions (operator and up). The alert views live here too, so an
alert and `/health` show a component, and offer its fix, the same way.

Everything reads the HealthService's cached snapshot (``ctx.extras["health"]``): a
reader never waits on a probe. Quick actions call :mod:`piyasa.admin.health.actions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatops import health_words, i18n, pipeline
from chatops.commands.registry import Arg, command
from chatops.context import Context, MessageRef
from chatops.views import Alert, Button, Fields, File, Text, View
from piyasa.admin import admin_chats
from piyasa.admin.health import actions
from piyasa.admin.health.alerts import AlertNotice
from piyasa.admin.health.model import Reading, Snapshot, State
from piyasa.admin.identity import ROLE_LEVEL
from piyasa.admin.setup.checks import alert_destinations
from piyasa.db.availability import db_down

log = logging.getLogger(__name__)

ICON = {
    State.HEALTHY: "🟢",
    State.WARNING: "🟡",
    State.CRITICAL: "🔴",
    State.UNKNOWN: "⚪",
}
OPERATOR = ROLE_LEVEL["operator"]
KEEP = pipeline.KEEP_MESSAGE
LIVE_INTERVAL_S = 5.0
LIVE_DURATION_S = 120.0
MAX_DETAIL_LINES = 24


# -- words ---------------------------------------------------------------------------------


def label(lang: str, component: str) -> str:
    key = f"health.component.{component}"
    text = i18n.t(lang, key) if i18n.has(key) else component
    return text


summary_text = health_words.summary_text  # every summary line in the reader's language


def state_text(lang: str, state: State) -> str:
    return i18n.t(lang, f"health.state.{state.value}")


def _hms(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S") if at else "—"


def duration_text(lang: str, seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 90:
        return i18n.t(lang, "health.duration.s", n=s)
    if s < 5400:
        return i18n.t(lang, "health.duration.min", n=round(s / 60))
    return i18n.t(lang, "health.duration.h", n=f"{s / 3600:.1f}")


# -- which fix matches a component ----------------------------------------------------------


def quick_fixes(lang: str, reading: Reading | None, *, keep: bool = False) -> list[Button]:
    """The quick action(s) that can fix what ``reading`` shows (operator and up)."""
    extra = {KEEP: True} if keep else {}
    run = Button(i18n.t(lang, "health.action.run_checks"), "health.run_checks", dict(extra))
    if reading is None:
        return [run]
    d = reading.details or {}
    name = reading.component
    if name == "runtime":
        if d.get("paused"):
            return [Button(i18n.t(lang, "health.action.resume"), "health.resume", dict(extra))]
        return [
            Button(i18n.t(lang, "health.action.restart"), "health.restart", dict(extra)),
            Button(i18n.t(lang, "health.action.pause"), "health.pause", dict(extra)),
        ]
    if name == "telegram":
        bots = d.get("bots") or {}
        open_bots = [k for k, b in bots.items() if k != "admin" and b.get("breaker") != "closed"]
        out = []
        if open_bots:
            params = {"bot": open_bots[0] if len(open_bots) == 1 else "all", **extra}
            out.append(Button(i18n.t(lang, "health.action.reset"), "health.reset", params))
        if d.get("recent_429"):
            out.append(Button(i18n.t(lang, "health.action.pause"), "health.pause", dict(extra)))
        return out or [run]
    if name == "llm" and d.get("breaker") not in (None, "closed"):
        return [
            Button(i18n.t(lang, "health.action.reset"), "health.reset", {"bot": "all", **extra})
        ]
    return [run]


# -- views ---------------------------------------------------------------------------------


def _not_running(ctx: Context, part: str = "health") -> View:
    return View(blocks=[Alert("warning", ctx.t(f"health.not_running.{part}"))])


def _health(ctx: Context) -> Any:
    return ctx.extras.get("health")


DB_UNREACHABLE = "database unreachable"


def seen(ctx: Context, snap: Snapshot) -> Snapshot:
    """``snap``, with the database shown critical when this process already knows it is
    unreachable (a chat request found out before the next probe round did): /health must
    never say "healthy" about the part that is down while it answers without it."""
    if not db_down(ctx.services):
        return snap
    db = snap.get("database")
    if db is not None and db.state is State.CRITICAL:
        return snap
    reading = Reading(
        "database",
        State.CRITICAL,
        DB_UNREACHABLE,
        checked_at=datetime.now(UTC),
        error="unreachable",
    )
    components = {**snap.components, "database": reading}
    return dataclasses.replace(snap, components=components, overall=State.CRITICAL)


def component_line(lang: str, reading: Reading) -> str:
    text = summary_text(lang, reading)
    return f"{ICON[reading.state]} {label(lang, reading.component)} — {text}"


def signature(snap: Snapshot) -> tuple[Any, ...]:
    """What a live view shows that matters: states, and the words of every problem.
    Figures of healthy components (a latency, a CPU %) change every round and would
    turn "edit when something changed" into "edit every 5 s"."""
    return (
        snap.overall,
        tuple(
            (n, r.state, r.summary if r.state is not State.HEALTHY else "")
            for n, r in snap.components.items()
        ),
    )


def overview(
    ctx: Context,
    snap: Snapshot,
    *,
    live_until: datetime | None = None,
    live_ended: bool = False,
) -> View:
    lang = ctx.lang
    title = f"{ICON[snap.overall]} {ctx.t('health.title')}: {ctx.t(f'health.overall.{snap.overall.value}')}"
    lines = [component_line(lang, r) for r in snap.components.values()]
    blocks: list[Any] = [Text("\n".join(lines))]
    alerter = ctx.extras.get("health.alerts")
    waiting = len(alerter.pending()) if alerter is not None else 0
    notify = ctx.extras.get("notify")  # piyasa.admin.notify: undelivered notifications
    waiting += int(getattr(notify, "pending", 0) or 0)
    if waiting:
        blocks.append(Alert("warning", ctx.t("health.alerts_pending", n=waiting)))
    foot = ctx.t("health.checked", when=_hms(snap.taken_at))
    if live_until is not None:
        foot += "\n" + ctx.t("health.live.on", until=live_until.strftime("%H:%M:%S"))
    elif live_ended:
        foot += "\n" + ctx.t("health.live.ended")
    blocks.append(Text(foot, style="italic"))
    details = [
        Button(f"🔎 {label(lang, name)}", "health.details", {"c": name}) for name in snap.components
    ]
    view = View(title=title, blocks=blocks)
    for i in range(0, len(details), 3):
        view.row(*details[i : i + 3])
    if live_until is not None:
        view.row(Button(ctx.t("health.live.stop"), "health.stop_live"))
    else:
        view.row(
            Button(ctx.t("health.refresh"), "health.overview"),
            Button(ctx.t("health.live.start"), "health.live"),
        )
    if ctx.level >= OPERATOR:
        view.row(Button(ctx.t("health.actions"), "health.actions"))
    return view


def _detail_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_detail_value(v) for v in value[:5]) or "—"
    return str(value)


def _bot_name(ctx: Context, key: str) -> str:
    fleet = ctx.extras.get("fleet")
    try:
        bot = fleet.roster.bots.get(int(key)) if fleet is not None else None
    except (ValueError, AttributeError):
        bot = None
    return f"@{bot.username}" if bot is not None and bot.username else key


def detail_fields(ctx: Context, reading: Reading) -> list[tuple[str, str]]:
    lang = ctx.lang
    rows = [
        (ctx.t("health.field.state"), f"{ICON[reading.state]} {state_text(lang, reading.state)}"),
        (ctx.t("health.field.summary"), summary_text(lang, reading) or "—"),
        (ctx.t("health.field.checked"), f"{_hms(reading.checked_at)} UTC"),
    ]
    if reading.latency_ms is not None:
        rows.append((ctx.t("health.field.latency"), f"{reading.latency_ms:.1f} ms"))
    if reading.error:
        rows.append((ctx.t("health.field.error"), reading.error))
    for key, value in (reading.details or {}).items():
        if key == "recent_errors":
            for err in (value or [])[-3:]:
                rows.append(("⚠", f"{err.get('where')}: {err.get('kind')}"))
        elif isinstance(value, Mapping):
            for sub, item in value.items():
                name = _bot_name(ctx, str(sub)) if key == "bots" else str(sub)
                if isinstance(item, Mapping):
                    state = item.get("state")
                    icon = ICON.get(State(state), "") if state in State._value2member_map_ else ""
                    parts = [
                        f"{k.replace('_', ' ')} {_detail_value(v)}"
                        for k, v in item.items()
                        if k != "state" and v not in (None, "", 0)
                    ]
                    rows.append((f"{icon} {name}".strip(), ", ".join(parts) or "—"))
                else:
                    rows.append((name, _detail_value(item)))
        else:
            rows.append((key.replace("_", " "), _detail_value(value)))
    return rows[:MAX_DETAIL_LINES]


def details_view(ctx: Context, reading: Reading) -> View:
    lang = ctx.lang
    view = View(
        title=f"🔎 {label(lang, reading.component)}",
        blocks=[Fields(detail_fields(ctx, reading))],
    )
    if not reading.configured:
        view.add(Text(ctx.t("health.not_configured"), style="italic"))
    if ctx.level >= OPERATOR:
        view.row(*quick_fixes(lang, reading))
    view.row(Button(ctx.t("health.back"), "health.overview"))
    return view


def alert_view(lang: str, notice: AlertNotice) -> View:
    """What an admin chat sees when a component turns critical, or recovers."""
    name = label(lang, notice.component)
    if notice.kind == "resolved":
        return View(
            blocks=[
                Alert(
                    "success",
                    i18n.t(
                        lang,
                        "health.alert.resolved",
                        component=name,
                        duration=duration_text(lang, notice.duration_s),
                    ),
                )
            ]
        )
    summary = summary_text(lang, notice.reading) if notice.reading else notice.summary
    view = View(
        title=f"🔴 {i18n.t(lang, 'health.alert.title', component=name)}",
        blocks=[
            Alert("error", summary or state_text(lang, notice.state)),
            Text(
                i18n.t(lang, "health.alert.since", when=f"{_hms(notice.since)} UTC"),
                style="italic",
            ),
        ],
    )
    view.row(
        Button(
            i18n.t(lang, "health.details"),
            "health.details",
            {"c": notice.component, KEEP: True},
        ),
        *quick_fixes(lang, notice.reading, keep=True),
    )
    return view


def _keep(ctx: Context) -> bool:
    return bool(ctx.params.get(KEEP))


def _answer(ctx: Context, view: View) -> View:
    """A press from a message everyone reads (an alert) answers in a new message; once
    confirmed, the answer replaces the confirmation."""
    if _keep(ctx) and not (ctx.invocation and ctx.invocation.confirmed):
        view.edit = False
    return view


def _result(ctx: Context, level: str, key: str, **kw: Any) -> View:
    view = View(blocks=[Alert(level, ctx.t(key, **kw))])  # type: ignore[arg-type]
    view.row(Button(ctx.t("health.back"), "health.overview"))
    return _answer(ctx, view)


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


@command("health", role="viewer", order=30, args=(Arg("mode", choices=("live",)),), needs=())
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


# -- live mode ------------------------------------------------------------------------------


@dataclass
class LiveSession:
    ctx: Context
    ref: MessageRef
    until: datetime
    task: asyncio.Task[None] | None = None
    ticks: int = 0
    edits: int = 0


@dataclass
class LiveViews:
    """Live `/health` messages: looked at every ``interval_s`` for ``duration_s`` and edited
    only when something shown changed, so an edit never repeats the message (Telegram's
    "message is not modified"). One per chat: each edit counts against Telegram's per-chat
    limits (20/min in a group), so a second live view in a chat ends the first."""

    interval_s: float = LIVE_INTERVAL_S
    duration_s: float = LIVE_DURATION_S
    sessions: dict[tuple[str, str], LiveSession] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, ctx: Context, ref: MessageRef, until: datetime) -> LiveSession:
        old = self.sessions.get((ref.surface, ref.chat))
        if old is not None:
            await self._cancel(old, final=old.ref != ref)
        session = LiveSession(ctx, ref, until)
        self.sessions[(ref.surface, ref.chat)] = session
        session.task = asyncio.create_task(self._run(session), name="health-live")
        await self._notify()
        return session

    async def wait_for_session(self) -> LiveSession:
        """The newest running live view, once there is one."""
        async with self.changed:
            await self.changed.wait_for(lambda: bool(self.sessions))
        return list(self.sessions.values())[-1]

    def get(self, ref: MessageRef | None) -> LiveSession | None:
        if ref is None:
            return None
        session = self.sessions.get((ref.surface, ref.chat))
        return session if session is not None and session.ref == ref else None

    async def stop(self, ref: MessageRef | None) -> bool:
        """End the live view on ``ref`` (the caller is about to replace that message)."""
        session = self.get(ref)
        if session is None:
            return False
        await self._cancel(session, final=False)
        return True

    async def stop_all(self) -> None:
        for session in list(self.sessions.values()):
            await self._cancel(session, final=False)

    async def _cancel(self, session: LiveSession, *, final: bool) -> None:
        self.sessions.pop((session.ref.surface, session.ref.chat), None)
        task = session.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if final:
            await self._final_edit(session)

    async def _final_edit(self, session: LiveSession) -> None:
        hs = _health(session.ctx)
        if hs is None:
            return
        try:
            await session.ctx.edit(
                session.ref, overview(session.ctx, hs.snapshot(), live_ended=True)
            )
            session.edits += 1
        except Exception as exc:  # the chat went away, the bot stopped: the view just ends
            log.info("live health view not closed: %s", type(exc).__name__)

    async def wait_ticks(self, session: LiveSession, n: int) -> None:
        """Wait until ``session`` has looked at the snapshot ``n`` times (or ended)."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: session.ticks >= n or session.task is None or session.task.done()
            )

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _run(self, session: LiveSession) -> None:
        ctx = session.ctx
        hs = _health(ctx)
        loop = asyncio.get_running_loop()
        end = loop.time() + self.duration_s
        last = signature(hs.snapshot())
        try:
            while (remaining := end - loop.time()) > 0:
                await asyncio.sleep(min(self.interval_s, remaining))
                snap = hs.snapshot()
                sig = signature(snap)
                if sig != last and loop.time() < end:
                    await ctx.edit(session.ref, overview(ctx, snap, live_until=session.until))
                    session.edits += 1
                    last = sig
                session.ticks += 1
                await self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the chat went away, the bot stopped: the view just ends
            log.info("live health view ended early: %s", type(exc).__name__)
            return
        finally:
            if self.sessions.get((session.ref.surface, session.ref.chat)) is session:
                del self.sessions[(session.ref.surface, session.ref.chat)]
            await self._notify()
        await self._final_edit(session)


def _live(ctx: Context) -> LiveViews:
    views = ctx.extras.get("health.live")
    if views is None:
        views = ctx.extras["health.live"] = LiveViews()
    return views


def _pressed_ref(ctx: Context) -> MessageRef | None:
    pressed = getattr(ctx.responder, "pressed_message_id", None)
    if ctx.invocation is None or not ctx.invocation.is_press or pressed is None:
        return None
    return MessageRef(ctx.surface, ctx.chat_id, str(pressed))


async def _start_live(ctx: Context) -> View | None:
    hs = _health(ctx)
    live = _live(ctx)
    until = datetime.now(UTC) + timedelta(seconds=live.duration_s)
    view = overview(ctx, hs.snapshot(), live_until=until)
    ref = _pressed_ref(ctx) if not _keep(ctx) else None
    if ref is not None:  # Telegram: the pressed message itself goes live
        await live.start(ctx, ref, until)
        await ctx.edit(ref, view)
        return None
    ref = await ctx.send(view)  # a new message (Slack: a channel message it can update)
    if ref is None:
        return View(blocks=[Alert("error", ctx.t("error.internal"))])
    await live.start(ctx, ref, until)
    if ctx.surface == "slack":
        return View(blocks=[Text(ctx.t("health.live.posted"))], edit=False)
    return None


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


__all__ = ["LiveViews", "alert_view", "overview", "quick_fixes", "signature"]
