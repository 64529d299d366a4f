"""Prometheus view of the health snapshot, collected at scrape time (never probing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from piyasa.admin.health.model import State

if TYPE_CHECKING:
    from piyasa.admin.health.service import HealthService

STATES = [s.value for s in State]

# Names this collector exposes (the Grafana dashboard test checks panels against them).
METRIC_NAMES = (
    "piyasa_health_state",
    "piyasa_health_overall",
    "piyasa_health_probe_latency_seconds",
    "piyasa_health_refresh_seconds",
    "piyasa_health_transitions_total",
    "piyasa_health_pending_records",
)


class HealthCollector(Collector):
    def __init__(self, health: HealthService) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        snap = self.health.snapshot()
        state = GaugeMetricFamily(
            "piyasa_health_state",
            "1 for the component's current state (healthy/warning/critical/unknown), else 0",
            labels=["component", "state"],
        )
        latency = GaugeMetricFamily(
            "piyasa_health_probe_latency_seconds",
            "Round-trip latency measured by the component's last probe",
            labels=["component"],
        )
        for name, reading in snap.components.items():
            for s in STATES:
                state.add_metric([name, s], 1.0 if reading.state.value == s else 0.0)
            if reading.latency_ms is not None:
                latency.add_metric([name], reading.latency_ms / 1000)
        yield state
        yield latency
        overall = GaugeMetricFamily(
            "piyasa_health_overall", "1 for the overall (worst) state, else 0", labels=["state"]
        )
        for s in STATES:
            overall.add_metric([s], 1.0 if snap.overall.value == s else 0.0)
        yield overall
        refresh = GaugeMetricFamily(
            "piyasa_health_refresh_seconds", "Duration of the last health refresh round"
        )
        refresh.add_metric([], (snap.refresh_ms or 0.0) / 1000)
        yield refresh
        transitions = CounterMetricFamily(
            "piyasa_health_transitions",
            "State changes seen by this process",
            labels=["component", "state"],
        )
        for (component, s), n in sorted(self.health.transition_counts.items()):
            transitions.add_metric([component, s], n)
        yield transitions
        pending = GaugeMetricFamily(
            "piyasa_health_pending_records",
            "State changes waiting to be written (database unreachable)",
        )
        pending.add_metric([], self.health.pending_records)
        yield pending
