"""Typed events and the one bus every producer publishes on.

A producer (the health alerter, the fleet's breakers and disables, chat migrations, the
LLM watch, the user service's security events) builds an :class:`Event` and calls
:func:`emit`. Titles and bodies are catalogue keys plus parameters
(``chatops/locales/<lang>/alerts.json``), so every reader gets them in their own language.

Publishing never blocks and never raises: the bus hands the event to its subscribers
synchronously (the notification service queues it and stores it on its own task), and a
process without a notification service simply has no subscriber.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

Severity = Literal["critical", "warning", "info", "success"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info", "success")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2, "success": 3}
BUS_KEY = "notify.bus"  # services.extras key


@dataclass(frozen=True)
class Event:
    """One thing that happened.

    ``source`` names the producer ("health", "fleet", "llm", "security", "notify", ...),
    ``key`` the thing within it (a component, ``bot-7``); together they are the
    fingerprint that deduplicates. ``resolved`` events end the incident of that
    fingerprint. ``labels`` are extra matchable facts (``bot``, ``component``,
    ``depends`` for inhibition); silences and routes match on them and on ``source``,
    ``severity`` and ``key``."""

    source: str
    key: str
    severity: Severity
    title_key: str
    params: dict[str, Any] = field(default_factory=dict)
    body_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    resolved: bool = False
    at: datetime | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if not self.source or not self.key:
            raise ValueError("an event needs a source and a key")

    @property
    def fingerprint(self) -> str:
        """``source:key`` (at most 200 characters, the column's width)."""
        return f"{self.source}:{self.key}"[:200]

    def all_labels(self) -> dict[str, str]:
        """Every label a matcher can name."""
        return {
            **{k: str(v) for k, v in self.labels.items()},
            "source": self.source,
            "key": self.key,
            "severity": self.severity,
        }


Subscriber = Callable[[Event], None]


class Bus:
    """Synchronous fan-out to subscribers; one per process (``services.extras``)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn`` for every event from now on; returns the unsubscribe function."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; a subscriber that raises is logged, never
        propagated to the producer."""
        self.published += 1
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("notify: a subscriber failed on %s", event.fingerprint)


def bus_of(extras: dict[str, Any]) -> Bus:
    """The process's bus in ``extras`` (created on first use)."""
    bus = extras.get(BUS_KEY)
    if not isinstance(bus, Bus):
        bus = extras[BUS_KEY] = Bus()
    return bus


def emit(extras: dict[str, Any] | None, event: Event) -> bool:
    """Publish ``event`` on the bus in ``extras`` (``services.extras``); False when there
    is none (no notification service in this process: tests, the CLI)."""
    bus = (extras or {}).get(BUS_KEY)
    if not isinstance(bus, Bus):
        return False
    bus.publish(event)
    return True
