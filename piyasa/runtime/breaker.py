"""One circuit breaker, reused for every bot token and every LLM provider.

closed: calls flow; ``failure_threshold`` consecutive failures open it.
open: calls are refused until ``retry_at``; then it is half-open.
half-open: exactly one probe is let through; success closes the breaker, failure opens it
again with a doubled (capped) cool-down. ``trip(seconds)`` opens it for a known time, e.g.
an upstream that said "retry after N s" or a token Telegram calls Unauthorized.

Time comes from an injectable monotonic clock so tests never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    reset_timeout: float = 5.0
    max_timeout: float = 300.0
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[CircuitBreaker], None] | None = None
    state: str = CLOSED
    failures: int = 0
    opened_count: int = 0
    retry_at: float = 0.0
    last_error: str | None = None
    _timeout: float = field(default=0.0, repr=False)
    _probe_out: bool = field(default=False, repr=False)

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(self)

    def allow(self) -> bool:
        """May a call go now? In half-open state only one caller gets True until it reports."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.clock() < self.retry_at:
                return False
            self._set(HALF_OPEN)
            self._probe_out = False
        if self._probe_out:
            return False
        self._probe_out = True
        return True

    def wait(self) -> float:
        """Seconds until a call may be attempted (0 when one may go now)."""
        if self.state == OPEN:
            return max(0.0, self.retry_at - self.clock())
        if self.state == HALF_OPEN and self._probe_out:
            return 0.5
        return 0.0

    def release_probe(self) -> None:
        """A half-open probe that was granted but never made: let the next caller probe."""
        self._probe_out = False

    def success(self) -> None:
        self.failures = 0
        self._timeout = 0.0
        self._probe_out = False
        self.last_error = None
        self._set(CLOSED)

    def failure(self, error: str | None = None) -> None:
        self.failures += 1
        self.last_error = error
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self._timeout = min(
                self.max_timeout, self._timeout * 2 if self._timeout else self.reset_timeout
            )
            self._open(self._timeout)

    def trip(self, seconds: float, error: str | None = None) -> None:
        """Open for exactly ``seconds`` (an upstream told us when to come back)."""
        self.last_error = error or self.last_error
        self._open(max(seconds, 0.0))

    def _open(self, seconds: float) -> None:
        self.retry_at = self.clock() + seconds
        self._probe_out = False
        self.opened_count += 1
        self._set(OPEN)

    def reset(self) -> None:
        """Operator override: close now and forget the failures."""
        self.success()

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "opened_count": self.opened_count,
            "retry_in_s": round(self.wait(), 2) if self.state != CLOSED else 0.0,
            "last_error": self.last_error,
        }


class BreakerBoard:
    """Breakers by name, created on first use with shared defaults."""

    def __init__(self, prefix: str, **defaults: Any) -> None:
        self.prefix = prefix
        self.defaults = defaults
        self._breakers: dict[Any, CircuitBreaker] = {}

    def get(self, key: Any) -> CircuitBreaker:
        b = self._breakers.get(key)
        if b is None:
            b = self._breakers[key] = CircuitBreaker(name=f"{self.prefix}:{key}", **self.defaults)
        return b

    def reset(self, key: Any | None = None) -> int:
        targets = list(self._breakers.values()) if key is None else [self.get(key)]
        for b in targets:
            b.reset()
        return len(targets)

    def items(self) -> list[tuple[Any, CircuitBreaker]]:
        return list(self._breakers.items())
