"""The `/health` screens: overview, component details and the alert view, all read from the
HealthService's cached snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chatops import i18n
from chatops.commands.health.words import (
    ICON,
    KEEP,
    MAX_DETAIL_LINES,
    OPERATOR,
    _hms,
    duration_text,
    label,
    quick_fixes,
    state_text,
    summary_text,
)
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin.health.alerts import AlertNotice
from piyasa.admin.health.model import Reading, Snapshot, State
from piyasa.db.availability import db_down

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
