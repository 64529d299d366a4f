"""The troubleshooter: every health probe, the `piyasa check` checks, the log analyzer and
the fleet's statistics, turned into issues named by knowledge-base entries, worst first,
and a health score.

Sources (each under its own deadline, :data:`STEP_TIMEOUT_S`; a source that fails or
times out becomes a warning issue of its own, it never stops the report):

1. ``health``: :meth:`HealthService.run_all_now` (``services.extras["health"]``); every
   configured component reading warning/critical. The Telegram component with 429s in its
   window is ``tg-429``; the host component with its disk (or the data dir's quota,
   ``PIYASA_DISK_QUOTA_BYTES``) warning/critical is ``system-disk-full``; others are named by :func:`piyasa.help.kb.match` on the reading's
   error and summary.
2. ``checks``: :func:`piyasa.admin.setup.checks.machine_checks` and
   :func:`~piyasa.admin.setup.checks.connection_checks` (what ``piyasa check`` runs).
3. ``logs``: :func:`piyasa.help.logscan.scan` over the data dir's ``piyasa.jsonl``.
4. ``fleet``: ``services.extras["fleet"]``: 429s of the last :data:`RECENT_429_S` seconds
   (``fleet.rates``) and the gate's totals, the current ``scale_factor`` and
   ``max_msgs_per_min``; bots whose breaker is open, named by their last error.

Issues with the same KB entry are one issue (evidence from every source), ordered by
:func:`rank`. Severity:
``critical`` or ``warning``. The score: 100 minus :data:`PENALTY` per issue (critical 25,
warning 10), never below 0; issues ignored for 24 h (:func:`ignore`, in the cache under
``diagnose:ignore:KEY``) are listed apart and cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piyasa.admin.health.model import State
from piyasa.help import logscan
from piyasa.help.kb import Entry, knowledge_base, match
from piyasa.tasks import wait_for

log = logging.getLogger(__name__)
STEPS = ("health", "checks", "logs", "fleet")
STEP_TIMEOUT_S = 8.0
PENALTY = {"critical": 25, "warning": 10}
IGNORE_TTL_S = 24 * 3600
IGNORE_PREFIX = "diagnose:ignore:"
MAX_EVIDENCE = 6
RECENT_429_S = 600  # the fleet's 429s (piyasa.runtime.ratewatch) counted over 10 minutes
RECENT_429_MIN = 3  # this many make an issue (critical from 3x this many)
# A failing `piyasa check` item whose text no signature recognises: its entry by name.
CHECK_ENTRIES = {
    "alerts": "alerts-no-destination",
    "disk": "system-disk-full",
    "database": "db-pg-refused",
    "schema": "db-schema-missing",
    "redis": "redis-refused",
    "llm": "llm-connection",
    "admin bot": "tg-401-unauthorized",
    "slack": "slack-invalid-auth",
}
SOURCE_RANK = {"health": 0, "fleet": 0, "logs": 1, "checks": 2}
Progress = Callable[[str, int, int], Awaitable[None]]


@dataclass
class Issue:
    """One problem. ``key`` is its KB entry id, or ``SOURCE:NAME`` when no entry names it."""

    key: str
    severity: str  # "critical" | "warning"
    entry_id: str | None
    sources: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    @property
    def entry(self) -> Entry | None:
        return knowledge_base().get(self.entry_id) if self.entry_id else None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "severity": self.severity,
            "entry": self.entry_id,
            "fix": self.entry.fix if self.entry else None,
            "sources": self.sources,
            "evidence": self.evidence,
        }


@dataclass
class Report:
    issues: list[Issue]
    ignored: list[Issue]
    counts: dict[str, int]  # probes, checks, log lines, ... looked at
    taken_at: datetime
    elapsed_ms: float

    @property
    def score(self) -> int:
        return max(0, 100 - sum(PENALTY[i.severity] for i in self.issues))

    def as_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "penalty": PENALTY,
            "taken_at": self.taken_at.isoformat(),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "counts": self.counts,
            "issues": [i.as_json() for i in self.issues],
            "ignored": [i.as_json() for i in self.ignored],
        }


class _Found:
    def __init__(self) -> None:
        self.issues: dict[str, Issue] = {}

    def add(self, entry_id: str | None, fallback: str, severity: str, source: str, ev: str) -> None:
        key = entry_id or fallback
        issue = self.issues.get(key)
        if issue is None:
            issue = self.issues[key] = Issue(key, severity, entry_id)
        if PENALTY[severity] > PENALTY[issue.severity]:
            issue.severity = severity
        if source not in issue.sources:
            issue.sources.append(source)
        if ev and ev not in issue.evidence and len(issue.evidence) < MAX_EVIDENCE:
            issue.evidence.append(ev)


def _named(text: str) -> str | None:
    found = match(text, limit=1)
    return found[0][0].id if found and found[0][1] >= logscan.MIN_SCORE else None


def _severity(state: Any) -> str | None:
    value = getattr(state, "value", state)
    return {"critical": "critical", "warning": "warning"}.get(str(value))


async def _health(services: Any, found: _Found) -> int:
    hs = services.extras.get("health")
    if hs is None:
        return 0
    snap = await hs.run_all_now()
    for r in snap.components.values():
        sev = _severity(r.state)
        if not r.configured or sev is None:
            continue
        d = r.details or {}
        ev = f"{r.component}: {r.summary}"
        if r.component == "telegram" and d.get("recent_429"):
            found.add("tg-429", "", sev, "health", ev)
            continue
        disk = _severity(d.get("disk_state")) if r.component == "host" else None
        if disk is not None:  # the data dir's disk or quota (diskspace.py) nearly full
            found.add("system-disk-full", "", disk, "health", ev)
            continue
        entry = _named(f"{r.error or ''} {r.summary}")
        found.add(entry, f"health:{r.component}", sev, "health", ev)
    return len(snap.components)


async def _checks(services: Any, found: _Found) -> int:
    from piyasa.admin.setup import checks

    settings = services.settings
    items = checks.machine_checks(settings) + await checks.connection_checks(settings, services)
    for c in items:
        sev = _severity(c.state)
        if sev is None:
            continue
        entry = _named(f"{c.summary} {c.fix}") or CHECK_ENTRIES.get(c.name)
        found.add(entry, f"check:{c.name}", sev, "checks", f"{c.name}: {c.summary}")
    return len(items)


async def _logs(services: Any, found: _Found) -> int:
    data_dir = getattr(services.settings, "data_dir", None)
    if data_dir is None:
        return 0
    scan = await asyncio.to_thread(logscan.scan, data_dir)
    for g in scan.groups:
        error = g.level in ("ERROR", "CRITICAL")
        if g.entry_id is None and not error:
            continue  # an unnamed warning is noise until it is an error
        sev = "critical" if error and (g.patterns or g.count >= 10) else "warning"
        when = f"{g.first:%H:%M}–{g.last:%H:%M} UTC" if g.first and g.last else ""
        pats = f" ({', '.join(g.patterns)})" if g.patterns else ""
        ev = f"log: {g.count}× {when}{pats}: {g.excerpt}"
        found.add(g.entry_id, f"log:{g.key[:60]}", sev, "logs", ev)
    return scan.lines


async def _fleet(services: Any, found: _Found) -> int:
    fleet = services.extras.get("fleet")
    if fleet is None or not getattr(fleet, "started", False):
        return 0
    snap = fleet.snapshot()
    gate = snap.get("gate") or {}
    n429, sent = int(gate.get("count_429") or 0), int(gate.get("sent") or 0)
    rates = getattr(fleet, "rates", None)
    recent = len(rates.refusals_since(RECENT_429_S)) if rates is not None else 0
    if recent >= RECENT_429_MIN or (n429 and "tg-429" in found.issues):
        s = snap.get("settings") or {}
        found.add(
            "tg-429",
            "",
            "critical" if recent >= 3 * RECENT_429_MIN else "warning",
            "fleet",
            f"fleet: {recent} × 429 in the last {RECENT_429_S // 60} min; "
            f"{n429} of {n429 + sent} sends since start; "
            f"scale_factor {s.get('scale_factor')}, max_msgs_per_min {s.get('max_msgs_per_min')}",
        )
    for key, desc in ((snap.get("breakers") or {}).get("bots") or {}).items():
        if (desc or {}).get("state") == "open":
            err = str(desc.get("last_error") or "")
            found.add(_named(err), f"fleet:bot-{key}", "warning", "fleet", f"bot {key}: {err}")
    return 1


SOURCES: dict[str, Callable[[Any, _Found], Awaitable[int]]] = {
    "health": _health,
    "checks": _checks,
    "logs": _logs,
    "fleet": _fleet,
}


def rank(issue: Issue) -> tuple[int, int, int, int, str]:
    """Worst first: severity; then an issue the KB names before an unnamed one; then one
    seen happening (health, fleet) before one in the log before a configuration check;
    then more evidence."""
    live = min((SOURCE_RANK.get(s, 3) for s in issue.sources), default=3)
    named = 0 if issue.entry_id else 1
    return (-PENALTY[issue.severity], named, live, -len(issue.evidence), issue.key)


async def is_ignored(services: Any, key: str) -> bool:
    return bool(await services.cache.get(IGNORE_PREFIX + key))


async def ignore(services: Any, key: str, actor: str) -> None:
    """Leave ``key`` out of the score and the list for 24 hours."""
    await services.cache.set(IGNORE_PREFIX + key, actor or "?", ttl=IGNORE_TTL_S)


async def diagnose(services: Any, progress: Progress | None = None) -> Report:
    """Run every source (see the module docstring); ``progress(step, i, n)`` is awaited
    before each step (``i`` from 0) and once at the end (``step="done"``, ``i == n``)."""
    start = time.perf_counter()
    found = _Found()
    counts: dict[str, int] = {}
    for i, step in enumerate(STEPS):
        if progress is not None:
            await progress(step, i, len(STEPS))
        try:
            counts[step] = await wait_for(SOURCES[step](services, found), STEP_TIMEOUT_S)
        except Exception as exc:  # a source that fails is itself a finding
            log.warning("diagnose: %s failed: %s", step, type(exc).__name__)
            counts[step] = 0
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            found.add(_named(str(exc)), f"diagnose:{step}", "warning", step, f"{step}: {reason}")
    if progress is not None:
        await progress("done", len(STEPS), len(STEPS))
    ordered = sorted(found.issues.values(), key=rank)
    issues, ignored = [], []
    for issue in ordered:
        try:
            skip = await is_ignored(services, issue.key)
        except Exception:  # the cache is down: nothing is ignored
            skip = False
        (ignored if skip else issues).append(issue)
    elapsed = (time.perf_counter() - start) * 1000
    return Report(issues, ignored, counts, datetime.now(UTC), elapsed)


__all__ = ["Issue", "Report", "State", "diagnose", "ignore", "is_ignored"]
