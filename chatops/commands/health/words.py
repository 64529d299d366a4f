"""How `/health` names things: components, states, durations, and the quick fix that
matches what a component shows."""

from __future__ import annotations

from datetime import UTC, datetime

from chatops import health_words, i18n, pipeline
from chatops.views import Button
from piyasa.admin.health.model import Reading, State
from piyasa.admin.identity import ROLE_LEVEL

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
