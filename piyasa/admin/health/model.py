"""The vocabulary of health: states, one component's reading, and a whole snapshot."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from piyasa.admin.health.words import Phrase, render


class State(enum.StrEnum):
    """A component's health. Ordered by how much an operator should worry."""

    HEALTHY = "healthy"
    UNKNOWN = "unknown"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def is_problem(self) -> bool:
        return self in (State.WARNING, State.CRITICAL)


# Unknown ranks above healthy: "we cannot tell" must never hide behind a green overall,
# but it is not an alarm either ("Redis not configured" is unknown, not critical).
_SEVERITY = {State.HEALTHY: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


def worst(states: Iterable[State]) -> State:
    """Overall = worst; an empty set of readings is unknown, not healthy."""
    found = list(states)
    return max(found, key=lambda s: s.severity) if found else State.UNKNOWN


def overall_of(readings: Iterable[Reading]) -> State:
    """The worst state among the components that are configured.

    A component that is simply not part of this deployment (Redis on the embedded
    in-process cache, a scheduler that was never given) reads "unknown" on its own line,
    but it must not colour the overall state: otherwise a fresh, perfectly working
    embedded install reads "unknown" forever, and an operator learns to ignore the
    overall line. "We cannot tell" still ranks above healthy for every component that
    *is* configured (a probe that failed, a fleet that is not running), so a real blind
    spot is never hidden behind green.
    """
    return worst(r.state for r in readings if r.configured)


@dataclass(frozen=True)
class Reading:
    """One component at one moment.

    ``summary`` is a short, language-neutral line (numbers and units) for chat and the
    page; ``details`` holds the figures. ``private`` keys name details that reveal the
    deployment (host names, versions, paths, bot usernames) and are dropped from the
    public view.
    """

    component: str
    state: State
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    private: frozenset[str] = frozenset()
    latency_ms: float | None = None
    checked_at: datetime | None = None
    error: str | None = None
    configured: bool = True  # False: not part of this deployment; left out of the overall
    phrases: tuple[Phrase, ...] = ()  # the summary, for surfaces that translate it

    @classmethod
    def said(
        cls,
        component: str,
        state: State,
        phrases: Sequence[Phrase],
        details: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Reading:
        """A reading whose summary is ``phrases`` (English in ``summary``)."""
        return cls(
            component, state, render(phrases), dict(details or {}), phrases=tuple(phrases), **kw
        )

    def public(self) -> dict[str, Any]:
        return {"name": self.component, "state": self.state.value}

    def full(self) -> dict[str, Any]:
        return {
            "name": self.component,
            "state": self.state.value,
            "summary": self.summary,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "error": self.error,
            "configured": self.configured,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Snapshot:
    """Every component's latest reading; what readers get, without waiting on a probe."""

    overall: State
    components: Mapping[str, Reading]
    taken_at: datetime | None
    refresh_ms: float | None = None
    sequence: int = 0

    def get(self, component: str) -> Reading | None:
        return self.components.get(component)

    def public(self) -> dict[str, Any]:
        """No host names, versions, secrets or paths: states only."""
        return {
            "status": self.overall.value,
            "checked_at": self.taken_at.isoformat() if self.taken_at else None,
            "components": [r.public() for r in self.components.values()],
        }

    def full(self) -> dict[str, Any]:
        return {
            "status": self.overall.value,
            "checked_at": self.taken_at.isoformat() if self.taken_at else None,
            "refresh_ms": None if self.refresh_ms is None else round(self.refresh_ms, 1),
            "components": [r.full() for r in self.components.values()],
        }


@dataclass(frozen=True)
class HealthEvent:
    """A component changed state; emitted once per transition."""

    component: str
    previous: State | None
    current: State
    at: datetime
    summary: str
    overall: State
    reading: Reading
