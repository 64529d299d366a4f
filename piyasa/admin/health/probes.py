"""One probe per component. Each returns a Reading and never raises on a bad dependency.

Probes that only read an in-process snapshot (runtime, Telegram, LLM, scheduler) are
instant; those that talk to a server (database, Redis, Telegram getMe, monitoring
targets) run under the service's per-probe timeout, which turns "no answer" into
critical without making anyone wait.

This module holds what every probe shares (the context of a round, the protocol, small
readers); the probes live in ``server_probes`` (database, Redis, host, monitoring targets),
``fleet_probes`` (runtime, scheduler), ``telegram_probe`` and ``llm_probe``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from piyasa.admin.health.model import Reading
from piyasa.admin.health.thresholds import Thresholds
from piyasa.services import Services

Provider = Callable[[], Mapping[str, Any]]


@dataclass
class ProbeContext:
    """What a probe may look at during one refresh round."""

    services: Services
    thresholds: Thresholds
    fleet: Mapping[str, Any] | None  # fleet.snapshot() of this round, None = not running
    scheduler: Mapping[str, Any] | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The service's monotonic clock at the start of the round: windows over rounds use it.
    monotonic: float = field(default_factory=time.monotonic)


class Probe(Protocol):
    name: str

    async def check(self, ctx: ProbeContext) -> Reading: ...


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _age_s(value: Any, now: datetime) -> float | None:
    """Seconds since a timestamp given as datetime, ISO text or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return max(0.0, now.timestamp() - float(value))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return max(0.0, (now - value).total_seconds())
    return None


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


ProbeFn = Callable[[ProbeContext], Awaitable[Reading]]


class FunctionProbe:
    """Wrap a plain async function as a probe (extensions, tests)."""

    def __init__(self, name: str, fn: ProbeFn) -> None:
        self.name = name
        self._fn = fn

    async def check(self, ctx: ProbeContext) -> Reading:
        return await self._fn(ctx)
