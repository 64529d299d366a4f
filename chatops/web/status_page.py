"""Server-rendered status page: no JavaScript, phone-friendly, tr/en."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from importlib import resources
from string import Template

from chatops import health_words
from chatops.web.status_i18n import LANGS, component_label, summary_text, t
from piyasa.admin.health.history import Incident, Overview, Uptime
from piyasa.admin.health.model import Reading, Snapshot

_TEMPLATE: Template | None = None


def _template() -> Template:
    global _TEMPLATE
    if _TEMPLATE is None:
        text = resources.files("chatops.web").joinpath("templates/status.html").read_text("utf-8")
        _TEMPLATE = Template(text)
    return _TEMPLATE


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _bars(lang: str, uptime: Uptime | None, days: int) -> str:
    if uptime is None:
        cells = [f'<span title="{_e(t(lang, "state.none"))}"></span>'] * days
        percent = t(lang, "uptime.nodata")
    else:
        cells = [
            f'<span class="{_e(bar.state)}" title="{_e(bar.day)}: {_e(t(lang, "state." + bar.state))}"></span>'
            for bar in uptime.days
        ]
        percent = (
            t(lang, "uptime.percent", percent=f"{uptime.uptime_percent:.2f}")
            if uptime.uptime_percent is not None
            else t(lang, "uptime.nodata")
        )
    return (
        f'<div class="bars" role="img" aria-label="{_e(t(lang, "uptime", days=days))}">'
        + "".join(cells)
        + f'</div><div class="barfoot"><span>{_e(t(lang, "uptime", days=days))}</span>'
        f"<span>{_e(percent)}</span></div>"
    )


def _incident(lang: str, inc: Incident, now: datetime) -> str:
    end = inc.ended_at or now
    when = inc.started_at.strftime("%Y-%m-%d %H:%M")
    status = (
        t(lang, "incident.ongoing")
        if inc.ongoing
        else f"{t(lang, 'incident.until')} {inc.ended_at.strftime('%Y-%m-%d %H:%M')}"  # type: ignore[union-attr]
    )
    return (
        f'<li class="card {_e(inc.worst.value)}"><div class="row">'
        f'<span class="name">{_e(component_label(lang, inc.component))}</span>'
        f'<span class="pill {_e(inc.worst.value)}">{_e(t(lang, "state." + inc.worst.value))}</span></div>'
        f'<div class="summary">{_e(t(lang, "incident.since"))} {_e(when)} UTC · {_e(status)} · '
        f"{_e(_duration((end - inc.started_at).total_seconds()))}</div>"
        f'<div class="summary">{_e(inc.summary)}</div></li>'
    )


def _summary(lang: str, reading: Reading) -> str:
    if reading.phrases:  # said in the page's language, like in chat
        return health_words.summary_text(lang, reading)
    return summary_text(lang, reading.summary)


def render_status_page(
    snap: Snapshot,
    overview: Overview,
    lang: str,
    days: int,
    now: datetime | None = None,
    undelivered: int = 0,
) -> str:
    """The status page; ``undelivered``: notifications not delivered yet (shown when any,
    so an alert nobody received is never invisible)."""
    now = now or datetime.now(UTC)
    langs = " ".join(
        f'<a href="?lang={code}"{" aria-current=true" if code == lang else ""}>{code.upper()}</a>'
        for code in LANGS
    )
    parts = []
    for name, reading in snap.components.items():
        state = reading.state.value
        parts.append(
            f'<section class="card component" id="c-{_e(name)}" data-state="{_e(state)}">'
            f'<div class="row"><span class="name">{_e(component_label(lang, name))}</span>'
            f'<span class="pill {_e(state)}">{_e(t(lang, "state." + state))}</span></div>'
            f'<div class="summary">{_e(_summary(lang, reading))}</div>'
            f"{_bars(lang, overview.uptime.get(name), days)}</section>"
        )
    if overview.incidents:
        incidents = (
            '<ul class="incidents">'
            + "".join(_incident(lang, i, now) for i in overview.incidents)
            + "</ul>"
        )
    else:
        incidents = f'<p class="muted">{_e(t(lang, "incidents.none", days=days))}</p>'
    if overview.blips:
        counts = ", ".join(f"{component_label(lang, c)} {n}" for c, n in overview.blips.items())
        incidents += f'<p class="muted blips">{_e(t(lang, "incidents.blips", counts=counts))}</p>'
    if undelivered:
        line = _e(t(lang, "notify.undelivered", n=undelivered))
        incidents = f'<p class="undelivered">{line}</p>' + incidents
    checked = (
        t(lang, "checked", when=snap.taken_at.strftime("%Y-%m-%d %H:%M:%S"))
        if snap.taken_at
        else t(lang, "checked.never")
    )
    return _template().substitute(
        lang=lang,
        title=_e(t(lang, "title")),
        langs=langs,
        overall_state=_e(snap.overall.value),
        overall_text=_e(t(lang, "overall." + snap.overall.value)),
        checked=_e(checked),
        components_title=_e(t(lang, "components")),
        components="\n".join(parts),
        incidents_title=_e(t(lang, "incidents")),
        incidents=incidents,
        legend=_e(t(lang, "legend")),
        refresh=_e(t(lang, "refresh")),
    )
