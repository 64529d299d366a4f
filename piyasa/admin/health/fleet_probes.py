"""Probes that read the fleet's snapshot of this round: the runtime and the scheduler, and
the breaker and error helpers the Telegram and LLM probes share. Instant: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from piyasa.admin.health import words
from piyasa.admin.health.model import Reading, State, worst
from piyasa.admin.health.probes import ProbeContext, _age_s, _num
from piyasa.admin.health.words import RAW, phrase

# --- fleet-derived components ------------------------------------------------------------

NOT_RUNNING = "not running"


def _breaker_state(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("state")
    return str(value or "closed").lower().replace("-", "_")


def _breaker_health(state: str) -> State:
    if state == "open":
        return State.CRITICAL
    if state == "half_open":
        return State.WARNING
    return State.HEALTHY


class RuntimeProbe:
    """Workers active/total, restarts, the age of the last fleet message, and the bots the
    fleet disabled (warning: "bot @x disabled: kicked from chat Y").

    Reads ``Fleet.snapshot()`` (piyasa/runtime/fleet.py): ``running``, ``paused``,
    ``workers{active,total,detail{name:{restarts,…}}}``, ``last_message_by_bot{id:{at}}``,
    ``outbox_depth``, ``recent_errors[{at,where,kind,error}]``,
    ``disabled[{bot,chat,reason,summary,at}]`` (see piyasa/runtime/disable.py).
    """

    name = "runtime"

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.fleet
        if not snap or not snap.get("running"):
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        t = ctx.thresholds
        workers = snap.get("workers") or {}
        detail = workers.get("detail") or {}
        active, total = int(_num(workers.get("active"))), int(_num(workers.get("total")))
        restarts = sum(int(_num((w or {}).get("restarts"))) for w in detail.values())
        ages = [
            _age_s((last or {}).get("at"), ctx.now)
            for last in (snap.get("last_message_by_bot") or {}).values()
        ]
        known_ages = [a for a in ages if a is not None]
        age = min(known_ages) if known_ages else None
        states: list[State] = []
        paused = bool(snap.get("paused"))
        if paused:
            states.append(State.WARNING)
        if total and active == 0:
            states.append(State.CRITICAL)
        elif active < total:
            states.append(State.WARNING)
        if age is not None and age > t.last_message_warning_s and not paused:
            states.append(State.WARNING)
        disabled = [d for d in snap.get("disabled") or [] if isinstance(d, Mapping)]
        if disabled:
            states.append(State.WARNING)
        errors = [e for e in snap.get("recent_errors") or [] if isinstance(e, Mapping)]
        recent = [e for e in errors if (_age_s(e.get("at"), ctx.now) or 0) <= 300]
        details = {
            "workers_active": active,
            "workers_total": total,
            "restarts": restarts,
            "last_message_age_s": None if age is None else round(age),
            "outbox_depth": snap.get("outbox_depth"),
            "paused": paused,
            "errors_5min": len(recent),
            "disabled": [dict(d) for d in disabled],
            "recent_errors": [
                {"at": e.get("at"), "where": e.get("where"), "kind": e.get("kind")}
                for e in errors[-5:]
            ],
        }
        said = [phrase("workers", active=active, total=total), phrase("restarts", n=restarts)]
        if age is not None:
            key, n = words.age("last_message", age)
            said.append(phrase(key, n=n))
        if snap.get("outbox_depth"):
            said.append(phrase("outbox", n=snap["outbox_depth"]))
        if paused:
            said.append(phrase("paused"))
        said += [
            phrase(RAW, "; ", text=str(d.get("summary") or d.get("reason"))) for d in disabled[:3]
        ]
        if len(disabled) > 3:
            said.append(phrase("more_disabled", "; ", n=len(disabled) - 3))
        state = worst(states or [State.HEALTHY])
        return Reading.said(self.name, state, said, details, private=frozenset({"disabled"}))


def _error_class(text: Any) -> str | None:
    """``"TelegramServerError: Bad Gateway"`` -> ``"TelegramServerError"``."""
    if not text:
        return None
    head = str(text).split(":", 1)[0].strip()
    return head[:64] or None


class SchedulerProbe:
    name = "scheduler"

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.scheduler
        if snap is None:  # no scheduler in this deployment (yet): not part of the overall
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING, configured=False)
        if not snap:
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        running = bool(snap.get("running"))
        failed = int(_num(snap.get("failed_jobs")))
        missed = int(_num(snap.get("missed_jobs")))
        jobs = int(_num(snap.get("jobs")))
        state = (
            State.CRITICAL
            if not running
            else (State.WARNING if failed or missed else State.HEALTHY)
        )
        said = [phrase("jobs", n=jobs)]
        if failed:
            said.append(phrase("jobs_failed", n=failed))
        if missed:
            said.append(phrase("jobs_missed", n=missed))
        details = {"running": running, "jobs": jobs, "failed_jobs": failed, "missed_jobs": missed}
        for extra in ("last_run", "next_run", "last_result"):  # the backup schedule's
            if extra in snap:
                details[extra] = snap[extra]
        if not running:
            return Reading(self.name, state, "stopped", details)
        return Reading.said(self.name, state, said, details)
