"""Notification screens, the same on Telegram and Slack: the pushed notice (one incident
or a group), the center (`/alerts`: unread count, incidents by day with severity icons
and relative times) and one incident's details with its buttons.

Every string comes from the catalogues in the reader's language; an incident carries
only catalogue keys and parameters (``piyasa.admin.notify.events``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatops import i18n, pipeline, timefmt
from chatops.commands.health.words import label as component_label
from chatops.commands.health.words import quick_fixes
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.admin.identity import ROLE_LEVEL
from piyasa.admin.notify.events import SEVERITY_RANK
from piyasa.admin.notify.store import SNOOZES, Center, Item

ICON = {"critical": "🔴", "warning": "🟡", "info": "🔵", "success": "🟢"}
STATE_ICON = {"acknowledged": "✋", "resolved": "✅", "silenced": "🔕"}
SILENCE_SPANS = ("1h", "1d", "7d")
KEEP = pipeline.KEEP_MESSAGE
OPERATOR, ADMIN = ROLE_LEVEL["operator"], ROLE_LEVEL["admin"]


def _params(lang: str, it: Item) -> dict[str, Any]:
    params = dict(it.params)
    if "component" in params:
        params["component"] = component_label(lang, str(params["component"]))
    return params


def title(lang: str, it: Item) -> str:
    return i18n.t(lang, it.title_key, **_params(lang, it))


def resolved_title(lang: str, it: Item) -> str:
    """What a recovery is called: ``<title_key>.resolved`` where the catalogue has one
    (a health incident is "Redis", not "Critical: Redis", once it is over)."""
    key = it.title_key + ".resolved"
    return i18n.t(lang, key, **_params(lang, it)) if i18n.has(key) else title(lang, it)


def body(lang: str, it: Item) -> str:
    return i18n.t(lang, it.body_key, **_params(lang, it)) if it.body_key else ""


def icon(it: Item) -> str:
    return STATE_ICON.get(it.state, ICON.get(it.severity, "⚪"))


def _hm(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "—"


def line(lang: str, it: Item, now: datetime) -> str:
    when = timefmt.ago(lang, it.last_seen, now, just_now=i18n.t(lang, "alerts.just_now"))
    times = i18n.t(lang, "alerts.times", n=it.count) if it.count > 1 else ""
    text = i18n.t(
        lang,
        "alerts.line",
        icon=icon(it),
        id=it.id,
        title=title(lang, it),
        state=i18n.t(lang, f"alerts.state.{it.state}"),
        when=when,
        times=times,
    )
    return ("• " if it.unread else "") + text


def incident_buttons(
    lang: str, it: Item, *, level: int, keep: bool, reading: Any = None
) -> list[list[Button]]:
    """What can be done about ``it`` by someone at ``level`` (a pushed notice shows every
    button: each presser is authorized by role when they press)."""
    extra = {KEEP: True} if keep else {}
    rows: list[list[Button]] = []
    active = it.state in ("open", "acknowledged")
    if level >= OPERATOR and active:
        first = [
            Button(i18n.t(lang, "alerts.btn.resolve"), "alerts.resolve", {"id": it.id, **extra})
        ]
        if it.state == "open":
            first.insert(
                0, Button(i18n.t(lang, "alerts.btn.ack"), "alerts.ack", {"id": it.id, **extra})
            )
        rows.append(first)
        rows.append(
            [
                Button(
                    i18n.t(lang, "alerts.btn.snooze", span=span),
                    "alerts.snooze",
                    {"id": it.id, "for": span, **extra},
                )
                for span in SNOOZES
            ]
        )
    last: list[Button] = []
    if level >= ADMIN and it.state != "resolved":
        last += [
            Button(
                i18n.t(lang, "alerts.btn.silence", span=span),
                "alerts.silence",
                {"id": it.id, "for": span, **extra},
            )
            for span in SILENCE_SPANS[:2]
        ]
    if level >= OPERATOR and active and it.source == "health":
        last += quick_fixes(lang, reading, keep=True)
    if last:
        rows.append(last)
    return rows


GROUP_LINES = 15  # lines of a grouped notice before "… and N more"


def notice_view(lang: str, items: list[Item], kind: str, readings: dict[str, Any]) -> View:
    """The message a chat receives for a flush (one incident, or a group)."""
    if kind == "test" or not items:
        return View(
            title=i18n.t(lang, "alerts.test.title"),
            blocks=[Text(i18n.t(lang, "alerts.test.body"))],
        )
    if len(items) == 1:
        it = items[0]
        if it.state == "resolved":  # one line, as the firing notice's title: "✅ Resolved: Redis"
            return View(
                title=i18n.t(lang, "alerts.notice.resolved", title=resolved_title(lang, it))
            )
        view = View(title=f"{icon(it)} {title(lang, it)}")
        text = body(lang, it)
        if text:
            view.add(Alert("error" if it.severity == "critical" else "warning", text))
        if it.count > 1:
            view.add(
                Text(
                    i18n.t(lang, "alerts.notice.repeat", since=_hm(it.first_seen), n=it.count),
                    style="italic",
                )
            )
        view.row(Button(i18n.t(lang, "alerts.btn.view"), "alerts.view", {"id": it.id, KEEP: True}))
        reading = readings.get(str(it.params.get("component", "")))
        for row in incident_buttons(lang, it, level=ADMIN, keep=True, reading=reading):
            view.row(*row)
        return view
    # Worst first, and at most GROUP_LINES of them: a storm's group stays one message (one
    # Telegram send, well inside a DM's 1 msg/s), the rest is one tap away in the center.
    shown = sorted(
        items, key=lambda it: (it.state == "resolved", SEVERITY_RANK.get(it.severity, 9))
    )
    lines = [
        i18n.t(lang, "alerts.notice.resolved", title=resolved_title(lang, it))
        if it.state == "resolved"
        else f"{icon(it)} #{it.id} {title(lang, it)}"
        for it in shown[:GROUP_LINES]
    ]
    if len(shown) > GROUP_LINES:
        lines.append(i18n.t(lang, "alerts.group.more", n=len(shown) - GROUP_LINES))
    view = View(
        title=i18n.t(lang, "alerts.group.title", n=len(items), first=title(lang, items[0])),
        blocks=[Text("\n".join(lines))],
    )
    view.row(Button(i18n.t(lang, "alerts.btn.open_center"), "alerts", {}))
    return view


def _day(lang: str, at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """The center's heading for ``at``: its calendar day in the reader's ``zone`` (not
    the UTC date: 00:30 in Istanbul is the previous day in UTC) against today's there."""
    days = (now.astimezone(zone).date() - at.astimezone(zone).date()).days
    key = "today" if days <= 0 else "yesterday" if days == 1 else "earlier"
    return i18n.t(lang, f"alerts.day.{key}")


def center_view(
    lang: str, center: Center, now: datetime, *, level: int, state: str, tz: str = "UTC"
) -> View:
    """`/alerts`: the unread count, then incidents grouped Today / Yesterday / Earlier by
    the reader's local day in ``tz`` (an IANA name; unknown: UTC)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    view = View(
        title=f"{i18n.t(lang, 'alerts.title')} — {i18n.t(lang, 'alerts.unread', n=center.unread)}"
    )
    counts = {s: center.counts.get(s, 0) for s in ("open", "acknowledged", "silenced", "resolved")}
    view.add(Text(i18n.t(lang, "alerts.counts", **counts), style="italic"))
    if center.pending:
        view.add(Alert("warning", i18n.t(lang, "alerts.pending", n=center.pending)))
    if not center.items:
        view.add(Text(i18n.t(lang, "alerts.empty")))
    day = None
    chunk: list[str] = []
    for it in center.items:
        heading = _day(lang, it.last_seen, now, zone)
        if heading != day:
            if chunk:
                view.add(Text("\n".join(chunk)))
            view.add(Text(heading, style="bold"))
            day, chunk = heading, []
        chunk.append(line(lang, it, now))
    if chunk:
        view.add(Text("\n".join(chunk)))
    details = [
        Button(i18n.t(lang, "alerts.btn.details", id=it.id), "alerts.view", {"id": it.id})
        for it in center.items
    ]
    for i in range(0, len(details), 4):
        view.row(*details[i : i + 4])
    view.row(
        Button(i18n.t(lang, "alerts.btn.read_all"), "alerts.read_all", {}),
        Button(i18n.t(lang, "alerts.btn.refresh"), "alerts.refresh", {"state": state}),
    )
    return view


def detail_view(lang: str, it: Item, now: datetime, *, level: int, reading: Any = None) -> View:
    view = View(title=f"{icon(it)} #{it.id} {title(lang, it)}")
    text = body(lang, it)
    if text:
        view.add(Text(text))
    fields = [
        (i18n.t(lang, "alerts.field.severity"), i18n.t(lang, f"alerts.severity.{it.severity}")),
        (i18n.t(lang, "alerts.field.state"), i18n.t(lang, f"alerts.state.{it.state}")),
        (i18n.t(lang, "alerts.field.source"), it.source),
        (i18n.t(lang, "alerts.field.first"), f"{_hm(it.first_seen)} UTC"),
        (i18n.t(lang, "alerts.field.last"), f"{_hm(it.last_seen)} UTC"),
        (i18n.t(lang, "alerts.field.count"), str(it.count)),
    ]
    if it.acted_by:
        fields.append((i18n.t(lang, "alerts.field.by"), f"{it.acted_by} ({_hm(it.acted_at)} UTC)"))
    if it.snoozed_until and it.snoozed_until > now:
        fields.append((i18n.t(lang, "alerts.field.snoozed"), f"{_hm(it.snoozed_until)} UTC"))
    if it.undelivered:
        fields.append((i18n.t(lang, "alerts.field.undelivered"), str(it.undelivered)))
    view.add(Fields(fields))
    for row in incident_buttons(lang, it, level=level, keep=False, reading=reading):
        view.row(*row)
    view.row(Button(i18n.t(lang, "alerts.btn.back"), "alerts.refresh", {}))
    return view


def until_text(now: datetime, seconds: float) -> str:
    return _hm(now + timedelta(seconds=seconds))
