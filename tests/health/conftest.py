"""Helpers for health tests: scriptable probes and a waiter on health events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from piyasa.admin.health import HealthEvent, HealthService, Reading, State
from piyasa.admin.health.probes import FunctionProbe, ProbeContext
from tests.waiting import finishes


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


UP = frozenset({State.HEALTHY, State.WARNING})
"""Answering again. Which of the two depends on the machine: a round trip of 106 ms on a
loaded one reads as warning. A test of recovery asserts "not critical", not a latency class."""


class EventWaiter:
    """Collects events; ``await waiter.until(component, state_or_states, after=mark)``."""

    def __init__(self, health: HealthService) -> None:
        self.events: list[HealthEvent] = []
        self._changed = asyncio.Condition()
        health.subscribe(self._on_event)

    async def _on_event(self, event: HealthEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def until(
        self, component: str, states: State | Collection[State], after: int = 0
    ) -> HealthEvent:
        """The first event from ``after`` on where ``component`` turned into ``states``."""
        wanted = {states} if isinstance(states, State) else set(states)

        def match() -> HealthEvent | None:
            for e in self.events[after:]:
                if e.component == component and e.current in wanted:
                    return e
            return None

        async def wait() -> HealthEvent:
            async with self._changed:
                await self._changed.wait_for(lambda: match() is not None)
            found = match()
            assert found is not None
            return found

        names = "/".join(sorted(s.value for s in wanted))
        return await finishes(
            wait(),
            f"{component} to turn {names}",
            output=lambda: (
                f"events so far: {[(e.component, e.current.value) for e in self.events]}"
            ),
        )


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
