"""Prometheus collectors of the fleet, on a registry the fleet owns.

A registry per fleet (not the global one) lets tests build many fleets in one process
without "duplicated timeseries" errors; the web layer renders ``fleet.metrics.registry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class FleetMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(
            "piyasa_fleet_messages_total",
            "Fleet messages by status (decided, sent, failed, retried, generation_failed)",
            ["status"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "piyasa_llm_latency_seconds",
            "LLM generation latency",
            ["model"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.llm_tokens = Counter(
            "piyasa_llm_tokens_total",
            "LLM tokens by kind (prompt, completion, cached)",
            ["kind"],
            registry=r,
        )
        self.llm_cost = Counter("piyasa_llm_cost_usd_total", "LLM cost in USD", registry=r)
        self.llm_errors = Counter(
            "piyasa_llm_errors_total", "LLM errors by class", ["kind"], registry=r
        )
        self.telegram_errors = Counter(
            "piyasa_telegram_errors_total", "Telegram API errors by code", ["code"], registry=r
        )
        self.outbox_depth = Gauge(
            "piyasa_outbox_depth", "Decided messages not yet sent", registry=r
        )
        self.breaker_state = Gauge(
            "piyasa_breaker_state",
            "Breaker state (0 closed, 1 half-open, 2 open)",
            ["breaker"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "piyasa_worker_restarts_total", "Supervised worker restarts", ["worker"], registry=r
        )
        self.decision_to_send = Histogram(
            "piyasa_decision_to_send_seconds",
            "Time from a message's decision to Telegram accepting it",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
