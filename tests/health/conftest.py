"""Helpers for health tests: scriptable probes and a waiter on health events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from piyasa.admin.health import HealthEvent, HealthService, Reading, State
from piyasa.admin.health.probes import FunctionProbe, ProbeContext


class Scripted:
    """A probe whose answer the test sets: ``probe.state = State.CRITICAL``."""

    def __init__(self, name: str, state: State = State.HEALTHY) -> None:
        self.name = name
        self.state = state
        self.calls = 0

    async def check(self, ctx: ProbeContext) -> Reading:
        self.calls += 1
        return Reading(self.name, self.state, f"{self.name} is {self.state.value}")


def hanging(name: str, started: asyncio.Event | None = None) -> FunctionProbe:
    """A probe that never answers (but does honour cancellation)."""

    async def check(ctx: ProbeContext) -> Reading:
        if started is not None:
            started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return FunctionProbe(name, check)


class EventWaiter:
    """Collects events; ``await waiter.until(component, state, within_s)``."""

    def __init__(self, health: HealthService) -> None:
        self.events: list[HealthEvent] = []
        self._changed = asyncio.Condition()
        health.subscribe(self._on_event)

    async def _on_event(self, event: HealthEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def until(
        self, component: str, state: State, within_s: float, after: int = 0
    ) -> HealthEvent:
        def match() -> HealthEvent | None:
            for e in self.events[after:]:
                if e.component == component and e.current is state:
                    return e
            return None

        async def wait() -> HealthEvent:
            async with self._changed:
                await self._changed.wait_for(lambda: match() is not None)
            found = match()
            assert found is not None
            return found

        return await asyncio.wait_for(wait(), within_s)


class FakeClock:
    """A monotonic clock the test moves: ``HealthService(..., clock=clock)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def states_of(events: list[HealthEvent], component: str) -> list[State]:
    return [e.current for e in events if e.component == component]


Predicate = Callable[[HealthEvent], bool]
