"""HealthService: a background refresher, a cached snapshot, state-change events.

Readers (`/health`, `/api/health`, the status page, `/metrics`) call `snapshot()`, which
returns the last finished round at once. Probes run concurrently in the background
every few seconds, each under its own deadline; a probe that does not answer in time
reads as critical and cannot delay the round. A probe that ignores cancellation is not
started again while it is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from piyasa.admin.health.diskspace import QUOTA_VAR, parse_quota
from piyasa.admin.health.fleet_probes import RuntimeProbe, SchedulerProbe
from piyasa.admin.health.history import History, Transition
from piyasa.admin.health.llm_probe import LLMProbe
from piyasa.admin.health.model import HealthEvent, Reading, Snapshot, State, overall_of
from piyasa.admin.health.probes import Probe, ProbeContext
from piyasa.admin.health.server_probes import (
    DatabaseProbe,
    HostProbe,
    HttpTargetsProbe,
    RedisProbe,
    parse_targets,
)
from piyasa.admin.health.telegram_probe import TelegramProbe
from piyasa.admin.health.thresholds import Thresholds
from piyasa.admin.health.words import phrase
from piyasa.services import Services
from piyasa.tasks import cancel_and_wait, wait_for

log = logging.getLogger(__name__)

Subscriber = Callable[[HealthEvent], Awaitable[None] | None]
ProviderLike = Callable[[], Mapping[str, Any]] | Any
MAX_PENDING = 10_000


def _provider(value: ProviderLike | None) -> Callable[[], Mapping[str, Any]] | None:
    """Accept a callable or an object with ``.snapshot()`` (the fleet)."""
    if value is None:
        return None
    if hasattr(value, "snapshot") and callable(value.snapshot):
        return value.snapshot
    if callable(value):
        return value
    raise TypeError("a snapshot provider must be callable or have .snapshot()")


class HealthService:
    """Live health of every component; see the module docstring for the contract.

    ``fleet`` and ``scheduler`` are snapshot providers (``Callable[[], dict]`` or objects
    with ``.snapshot()``); until they are given, their components read "not running".
    ``clock`` is the monotonic clock probes see as ``ctx.monotonic`` (windows over rounds,
    e.g. the Telegram 429 rate); tests pass a fake one instead of sleeping.
    """

    def __init__(
        self,
        services: Services,
        *,
        fleet: ProviderLike | None = None,
        scheduler: ProviderLike | None = None,
        thresholds: Thresholds | None = None,
        probes: list[Probe] | None = None,
        history_days: int = 90,
        record_stop: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.clock = clock
        env = services.settings.extra
        self.thresholds = thresholds or Thresholds.from_env(env)
        parse_quota(env.get(QUOTA_VAR))  # a malformed quota stops the start, named
        self.history = History(services.sessions, days=history_days)
        self._fleet = _provider(fleet)
        self.fleet_object: Any = fleet if hasattr(fleet, "snapshot") else None
        self._scheduler = _provider(scheduler)
        if probes is None:
            probes = [
                RuntimeProbe(),
                DatabaseProbe(),
                RedisProbe(),
                TelegramProbe(),
                LLMProbe(),
                SchedulerProbe(),
            ]
            targets = parse_targets(env.get("PIYASA_HEALTH_TARGETS", ""))
            if targets:
                probes.append(HttpTargetsProbe(targets))
            probes.append(HostProbe())
        self._probes: dict[str, Probe] = {p.name: p for p in probes}
        self._record_stop = record_stop
        self._snapshot = Snapshot(
            overall=State.UNKNOWN,
            components={
                name: Reading(name, State.UNKNOWN, "not checked yet") for name in self._probes
            },
            taken_at=None,
        )
        self._states: dict[str, State] = {}
        self._pending: list[Transition] = []
        self._subscribers: list[Subscriber] = []
        self._inflight: dict[str, asyncio.Task[Reading]] = {}
        self._event_tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.transition_counts: dict[tuple[str, str], int] = {}
        self.record_failures = 0

    # --- wiring -------------------------------------------------------------------------

    def set_fleet(self, fleet: ProviderLike | None) -> None:
        self._fleet = _provider(fleet)
        self.fleet_object = fleet if hasattr(fleet, "snapshot") else None

    def set_scheduler(self, scheduler: ProviderLike | None) -> None:
        self._scheduler = _provider(scheduler)

    def add_probe(self, probe: Probe) -> None:
        self._probes[probe.name] = probe

    @property
    def components(self) -> list[str]:
        return list(self._probes)

    # --- reading ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The last finished round; never waits."""
        return self._snapshot

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on every state change; returns an unsubscribe function.

        Async callbacks run as tasks, so a slow subscriber never delays the refresh.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the last recorded states, run a first round, then refresh in the background."""
        if self._task is not None:
            return
        try:
            self._states = await wait_for(
                self.history.last_states(), self.thresholds.probe_timeout_s
            )
        except Exception as exc:  # history is best effort; the database may be down
            log.warning("health: could not load recorded states (%s)", type(exc).__name__)
        await self.run_all_now()
        self._task = asyncio.create_task(self._loop(), name="health-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        for t in list(self._inflight.values()):
            t.cancel()
        if self._record_stop and self._states:
            # Time while the monitor is down is "unknown", not whatever was last seen.
            now = datetime.now(UTC)
            for name, state in self._states.items():
                if state is not State.UNKNOWN:
                    self._pending.append(
                        Transition(name, State.UNKNOWN, state, now, "monitor stopped")
                    )
            self._states = {k: State.UNKNOWN for k in self._states}
        await self._flush()
        for task in list(self._event_tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await wait_for(task, 1.0)
        for probe in self._probes.values():
            closer = getattr(probe, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await wait_for(self._wake.wait(), self.thresholds.interval_s)
            self._wake.clear()
            try:
                await self.run_all_now()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one round must not end monitoring
                log.exception("health: refresh round failed")

    # --- one round ----------------------------------------------------------------------

    async def run_all_now(self) -> Snapshot:
        """Run every probe now (the "run all checks now" action) and return the result.

        Returns within about one probe timeout, however the dependencies behave.
        """
        async with self._lock:
            snap = await self._round()
        await self._flush()
        return snap

    def _context(self) -> ProbeContext:
        return ProbeContext(
            services=self.services,
            thresholds=self.thresholds,
            fleet=_call(self._fleet, "fleet"),
            scheduler=_call(self._scheduler, "scheduler"),
            monotonic=self.clock(),
        )

    async def _round(self) -> Snapshot:
        started = time.perf_counter()
        ctx = self._context()
        deadline = self.thresholds.probe_timeout_s
        tasks: dict[str, asyncio.Task[Reading]] = {}
        stuck: set[str] = set()
        for name, probe in self._probes.items():
            previous = self._inflight.get(name)
            if previous is not None and not previous.done():
                stuck.add(name)
                continue
            task = asyncio.create_task(probe.check(ctx), name=f"health-probe-{name}")
            task.add_done_callback(_swallow)
            self._inflight[name] = task
            tasks[name] = task
        if tasks:
            await asyncio.wait(tasks.values(), timeout=deadline)
        now = datetime.now(UTC)
        readings: dict[str, Reading] = {}
        for name in self._probes:
            task = tasks.get(name)
            if name in stuck or task is None:
                reading = Reading.said(name, State.CRITICAL, [phrase("stuck")], error="Stuck")
            elif not task.done():
                task.cancel()
                reading = Reading.said(
                    name, State.CRITICAL, [phrase("timeout", s=f"{deadline:g}")], error="Timeout"
                )
            elif task.cancelled():
                reading = Reading.said(
                    name, State.CRITICAL, [phrase("cancelled")], error="Cancelled"
                )
            elif task.exception() is not None:
                exc = task.exception()
                log.warning("health: probe %s failed: %s", name, type(exc).__name__)
                reading = Reading.said(
                    name,
                    State.UNKNOWN,
                    [phrase("check_failed", error=type(exc).__name__)],
                    error=type(exc).__name__,
                )
            else:
                reading = task.result()
            if reading.checked_at is None:
                reading = _with_time(reading, now)
            readings[name] = reading
        overall = overall_of(readings.values())
        snap = Snapshot(
            overall=overall,
            components=readings,
            taken_at=now,
            refresh_ms=(time.perf_counter() - started) * 1000,
            sequence=self._snapshot.sequence + 1,
        )
        self._snapshot = snap
        self._note_changes(snap)
        return snap

    def _note_changes(self, snap: Snapshot) -> None:
        for name, reading in snap.components.items():
            previous = self._states.get(name)
            if previous is reading.state:
                continue
            self._states[name] = reading.state
            at = reading.checked_at or datetime.now(UTC)
            self._pending.append(Transition(name, reading.state, previous, at, reading.summary))
            if len(self._pending) > MAX_PENDING:
                del self._pending[: len(self._pending) - MAX_PENDING]
            key = (name, reading.state.value)
            self.transition_counts[key] = self.transition_counts.get(key, 0) + 1
            self._emit(
                HealthEvent(
                    name, previous, reading.state, at, reading.summary, snap.overall, reading
                )
            )

    def _emit(self, event: HealthEvent) -> None:
        for callback in list(self._subscribers):
            try:
                result = callback(event)
            except Exception:
                log.exception("health: subscriber failed")
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._event_tasks.add(task)
                task.add_done_callback(self._event_done)

    def _event_done(self, task: asyncio.Task[Any]) -> None:
        self._event_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("health: subscriber failed: %r", task.exception())

    async def _flush(self) -> None:
        """Write pending transitions; kept in memory (in order) while the database is away."""
        if not self._pending:
            return
        batch = list(self._pending)
        try:
            await wait_for(self.history.record(batch), self.thresholds.probe_timeout_s)
        except Exception as exc:
            self.record_failures += 1
            log.warning(
                "health: %d state changes not recorded yet (%s)", len(batch), type(exc).__name__
            )
            return
        del self._pending[: len(batch)]

    @property
    def pending_records(self) -> int:
        return len(self._pending)


def _call(provider: Callable[[], Mapping[str, Any]] | None, what: str) -> Mapping[str, Any] | None:
    if provider is None:
        return None
    try:
        return provider()
    except Exception as exc:
        log.warning("health: %s snapshot failed: %s", what, type(exc).__name__)
        return {}  # given but failing: "not running", never "not configured"


def _with_time(reading: Reading, at: datetime) -> Reading:
    from dataclasses import replace

    return replace(reading, checked_at=at)


def _swallow(task: asyncio.Task[Any]) -> None:
    """Retrieve a probe's exception even when nobody waits for it any more."""
    if not task.cancelled():
        task.exception()
