"""Clocks for the Telegram sandbox.

Rate limits are all about time, and tests must not sleep to cross a window, so every
time read in the sandbox goes through a clock object that tests can drive by hand.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the sandbox needs from a clock: seconds that only move forward."""

    def now(self) -> float:
        """Seconds for rate limits and for message dates (unix epoch-like)."""
        ...


class RealClock:
    """Wall-clock time; used when no clock is injected (demo mode, benchmarks)."""

    def now(self) -> float:
        return time.time()


class SandboxClock:
    """A manual clock: time moves only when a test calls :meth:`advance`.

    It starts at an integral unix time so that windows like "60 s after 1700000000.0" are
    exact in floating point and tests can assert exact ``retry_after`` values.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a SandboxClock cannot go backwards")
        self._now += seconds
        return self._now
