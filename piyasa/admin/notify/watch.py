"""Producers over the health readings (issue 13, item 1): the thresholds an operator wants
to hear about before a component turns critical.

The health probes already measure; :class:`ThresholdWatch` reads each new health snapshot
and emits an event on every transition across a threshold (and its recovery):

- memory above 80 % (``host.memory_percent``) — warning;
- CPU above 90 % sustained for 5 minutes (``host.cpu_percent``, every round above it) —
  warning;
- disk below 10 % free (``host.disk_free_percent``) — warning;
- Telegram answering 429 to more than 5 % of sends over the gate's window
  (``telegram.recent_429`` / ``recent_attempts``), with at least :data:`MIN_ATTEMPTS`
  attempts so three sends are no sample — warning (``fleet:429_rate``; a 429 is retried,
  not a failed message: the fleet's message error rate is its own producer,
  ``piyasa.runtime.error_rate``);
- a 429 storm: at least :data:`STORM_429` 429s in that window — critical.

Only transitions are emitted; the pipeline deduplicates by fingerprint anyway, so a
restart that sees the same state again adds to the open incident, not a new alert.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piyasa.admin.notify.events import Event, Severity, emit

log = logging.getLogger(__name__)
MEMORY_PERCENT = 80.0
CPU_PERCENT = 90.0
CPU_SUSTAINED_S = 300.0
DISK_FREE_PERCENT = 10.0
ERROR_RATE = 0.05
MIN_ATTEMPTS = 20
STORM_429 = 100


@dataclass(frozen=True)
class _Check:
    key: str
    severity: Severity
    title_key: str


MEMORY = _Check("host:memory", "warning", "alerts.host.memory.title")
CPU = _Check("host:cpu", "warning", "alerts.host.cpu.title")
DISK = _Check("host:disk", "warning", "alerts.host.disk.title")
RATE_429 = _Check("fleet:429_rate", "warning", "alerts.fleet.rate_429.title")
STORM = _Check("fleet:429_storm", "critical", "alerts.fleet.storm.title")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class ThresholdWatch:
    """Turns health snapshots into threshold events (see the module docstring)."""

    def __init__(self) -> None:
        self.firing: set[str] = set()
        self.cpu_high_since: datetime | None = None
        self.last_sequence: int | None = None

    def observe(self, components: Any, at: datetime) -> list[Event]:
        """The events owed by the readings in ``components`` (component -> Reading, as in
        ``Snapshot.components``) taken at ``at``."""
        out: list[Event] = []
        host = components.get("host")
        details = dict(host.details) if host is not None else {}
        mem = _num(details.get("memory_percent"))
        if mem is not None:
            out += self._edge(MEMORY, mem > MEMORY_PERCENT, at, n=f"{mem:.0f}")
        cpu = _num(details.get("cpu_percent"))
        if cpu is not None:
            if cpu > CPU_PERCENT:
                self.cpu_high_since = self.cpu_high_since or at
            else:
                self.cpu_high_since = None
            held = self.cpu_high_since is not None and (
                (at - self.cpu_high_since).total_seconds() >= CPU_SUSTAINED_S
            )
            out += self._edge(CPU, held, at, n=f"{cpu:.0f}")
        disk = _num(details.get("disk_free_percent"))
        if disk is not None:
            out += self._edge(DISK, disk < DISK_FREE_PERCENT, at, n=f"{disk:.0f}")
        tg = components.get("telegram")
        tdet = dict(tg.details) if tg is not None else {}
        n429, attempts = _num(tdet.get("recent_429")), _num(tdet.get("recent_attempts"))
        if n429 is not None and attempts is not None:
            minutes = f"{(_num(tdet.get('window_s')) or 600) / 60:g}"
            rate = n429 / attempts if attempts else 0.0
            high = attempts >= MIN_ATTEMPTS and rate > ERROR_RATE
            out += self._edge(
                RATE_429, high, at, n=f"{100 * rate:.1f}", attempts=int(attempts), minutes=minutes
            )
            out += self._edge(STORM, n429 >= STORM_429, at, n=int(n429), minutes=minutes)
        return out

    def _edge(self, check: _Check, bad: bool, at: datetime, **params: Any) -> list[Event]:
        if bad == (check.key in self.firing):
            return []
        (self.firing.add if bad else self.firing.discard)(check.key)
        source, key = check.key.split(":", 1)
        return [
            Event(
                source,
                key,
                check.severity,
                check.title_key,
                params,
                labels={"check": key},
                resolved=not bad,
                at=at,
            )
        ]


async def run(extras: dict[str, Any], health: Any, interval_s: float = 5.0) -> None:
    """Watch ``health`` (a HealthService) until cancelled: each new snapshot is observed
    and its events are emitted on the bus in ``extras``."""
    watch = ThresholdWatch()
    while True:
        try:
            snap = health.snapshot()
            if snap.taken_at is not None and snap.sequence != watch.last_sequence:
                watch.last_sequence = snap.sequence
                for event in watch.observe(snap.components, snap.taken_at):
                    emit(extras, event)
        except Exception as exc:  # a reading of an unexpected shape: say so, keep watching
            log.warning("notify: threshold watch skipped a snapshot: %s", type(exc).__name__)
        await asyncio.sleep(interval_s)
