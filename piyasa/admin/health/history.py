"""Recorded state changes, and what the status page derives from them.

Only transitions are stored. A component holds a state from its row's ``at`` until its
next row, so 90 days of uptime bars come from one indexed range query plus the state
each component was in when the window opened.

A problem becomes an incident only once it has held for :data:`MIN_INCIDENT_S`: a host's
CPU at 100 % for one 5-second round is a blip. Blips still colour the uptime bars (they
happened), but they are only counted per component (``Overview.blips``), never listed,
so a burst of them cannot push a real outage off the incident list.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.admin.health.model import State
from piyasa.db.health_models import HealthTransition

NO_DATA = "none"
MIN_INCIDENT_S = 60.0  # a problem shorter than this is a blip, not an incident


@dataclass(frozen=True)
class Transition:
    component: str
    state: State
    previous: State | None
    at: datetime
    summary: str = ""


@dataclass(frozen=True)
class DayBar:
    day: str  # ISO date (UTC)
    state: str  # worst state seen that day, or "none" when nothing was recorded
    seconds: dict[str, float]


@dataclass(frozen=True)
class Uptime:
    component: str
    days: list[DayBar]
    uptime_percent: float | None  # share of observed time not critical


@dataclass(frozen=True)
class Incident:
    component: str
    worst: State
    started_at: datetime
    ended_at: datetime | None  # None = ongoing
    summary: str

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None


@dataclass
class Overview:
    uptime: dict[str, Uptime] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    computed_at: datetime | None = None
    blips: dict[str, int] = field(default_factory=dict)  # problems under MIN_INCIDENT_S


def _day_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class History:
    """Writes transitions and computes uptime bars and incidents, cached briefly."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        days: int = 90,
        cache_s: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.days = days
        self.cache_s = cache_s
        self._cached: Overview | None = None
        self._cached_mono = 0.0

    async def record(self, transitions: Iterable[Transition]) -> int:
        rows = [
            HealthTransition(
                component=t.component,
                state=t.state.value,
                previous_state=t.previous.value if t.previous else None,
                at=t.at,
                summary=t.summary[:255],
            )
            for t in transitions
        ]
        if not rows:
            return 0
        async with self.sessions() as session:
            session.add_all(rows)
            await session.commit()
        self._cached = None
        return len(rows)

    async def last_states(self) -> dict[str, State]:
        """Each component's most recent recorded state (to continue history after a restart)."""
        latest = (
            select(HealthTransition.component, func.max(HealthTransition.id).label("id"))
            .group_by(HealthTransition.component)
            .subquery()
        )
        q = select(HealthTransition.component, HealthTransition.state).join(
            latest, HealthTransition.id == latest.c.id
        )
        async with self.sessions() as session:
            rows = (await session.execute(q)).all()
        return {c: State(s) for c, s in rows}

    async def transitions(self, component: str | None = None, limit: int = 100) -> list[Transition]:
        q = select(HealthTransition).order_by(HealthTransition.id.desc()).limit(limit)
        if component:
            q = q.where(HealthTransition.component == component)
        async with self.sessions() as session:
            rows = (await session.scalars(q)).all()
        return [_to_transition(r) for r in rows]

    async def overview(self, now: datetime | None = None, *, fresh: bool = False) -> Overview:
        if (
            not fresh
            and now is None
            and self._cached is not None
            and time.monotonic() - self._cached_mono < self.cache_s
        ):
            return self._cached
        at = now or datetime.now(UTC)
        first_day = _day_start(at) - timedelta(days=self.days - 1)
        before, inside = await self._window(first_day)
        result = compute_overview(before, inside, first_day, at, self.days)
        if now is None:
            self._cached, self._cached_mono = result, time.monotonic()
        return result

    async def _window(self, start: datetime) -> tuple[list[Transition], list[Transition]]:
        """The state each component was in at ``start``, and every change since."""
        last_before = (
            select(HealthTransition.component, func.max(HealthTransition.at).label("at"))
            .where(HealthTransition.at < start)
            .group_by(HealthTransition.component)
            .subquery()
        )
        q_before = select(HealthTransition).join(
            last_before,
            and_(
                HealthTransition.component == last_before.c.component,
                HealthTransition.at == last_before.c.at,
            ),
        )
        q_inside = (
            select(HealthTransition)
            .where(HealthTransition.at >= start)
            .order_by(HealthTransition.at, HealthTransition.id)
        )
        async with self.sessions() as session:
            before = [_to_transition(r) for r in (await session.scalars(q_before)).all()]
            inside = [_to_transition(r) for r in (await session.scalars(q_inside)).all()]
        return before, inside


def _to_transition(row: HealthTransition) -> Transition:
    return Transition(
        component=row.component,
        state=State(row.state),
        previous=State(row.previous_state) if row.previous_state else None,
        at=row.at,
        summary=row.summary or "",
    )


def compute_overview(
    before: Sequence[Transition],
    inside: Sequence[Transition],
    first_day: datetime,
    now: datetime,
    days: int,
    incident_limit: int = 20,
    min_incident_s: float = MIN_INCIDENT_S,
) -> Overview:
    """Pure: bucket each component's timeline into UTC days and find its incidents (problems
    that held at least ``min_incident_s`` seconds; shorter ones only counted as blips)."""
    timelines: dict[str, list[Transition]] = defaultdict(list)
    for t in before:
        timelines[t.component].append(
            Transition(t.component, t.state, t.previous, first_day, t.summary)
        )
    for t in inside:
        timelines[t.component].append(t)
    overview = Overview(computed_at=now)
    for component, line in sorted(timelines.items()):
        line.sort(key=lambda t: t.at)
        buckets: list[dict[str, float]] = [defaultdict(float) for _ in range(days)]
        for i, t in enumerate(line):
            end = line[i + 1].at if i + 1 < len(line) else now
            _spread(buckets, first_day, max(t.at, first_day), min(end, now), t.state.value)
        bars = []
        up = observed = 0.0
        for d in range(days):
            secs = dict(buckets[d])
            observed += sum(secs.values())
            up += sum(v for k, v in secs.items() if k != State.CRITICAL.value and k != "unknown")
            observed -= secs.get("unknown", 0.0)
            bars.append(
                DayBar(
                    day=(first_day + timedelta(days=d)).date().isoformat(),
                    state=_day_state(secs),
                    seconds=secs,
                )
            )
        percent = round(100.0 * up / observed, 3) if observed > 0 else None
        overview.uptime[component] = Uptime(component, bars, percent)
        for incident in _incidents(component, line):
            if ((incident.ended_at or now) - incident.started_at).total_seconds() >= min_incident_s:
                overview.incidents.append(incident)
            elif not incident.ongoing:  # an ongoing one may still become an incident
                overview.blips[component] = overview.blips.get(component, 0) + 1
    overview.incidents.sort(key=lambda i: (not i.ongoing, -i.started_at.timestamp()))
    overview.incidents = overview.incidents[:incident_limit]
    return overview


def _spread(
    buckets: list[dict[str, float]], first_day: datetime, start: datetime, end: datetime, state: str
) -> None:
    while start < end:
        index = (start - first_day).days
        if index >= len(buckets):
            return
        day_end = first_day + timedelta(days=index + 1)
        stop = min(end, day_end)
        buckets[index][state] += (stop - start).total_seconds()
        start = stop


def _day_state(seconds: dict[str, float]) -> str:
    for state in ("critical", "warning", "healthy", "unknown"):
        if seconds.get(state, 0) > 0:
            return state
    return NO_DATA


def _incidents(component: str, line: Sequence[Transition]) -> list[Incident]:
    """A run of warning/critical readings, from the first problem to the next healthy or
    unknown state; its severity is the worst state inside it."""
    found: list[Incident] = []
    start: Transition | None = None
    worst_state = State.WARNING
    summary = ""
    for t in line:
        if t.state.is_problem:
            if start is None:
                start, worst_state, summary = t, t.state, t.summary
            elif t.state.severity > worst_state.severity:
                worst_state, summary = t.state, t.summary
        elif start is not None:
            found.append(Incident(component, worst_state, start.at, t.at, summary))
            start = None
    if start is not None:
        found.append(Incident(component, worst_state, start.at, None, summary))
    return found
