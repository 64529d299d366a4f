"""The fleet's message error rate over a sliding window, and the alarm it raises.

A message attempt ends in one of three outcomes the fleet already sees: Telegram accepted
it (``FleetPipeline._on_sent``), the LLM failed to write it (``generation_failed``) or
Telegram refused it for good (the gate's ``failed`` outcome, ``_on_failed``). The error
rate is ``failed / attempts`` over the last :data:`WINDOW_S` seconds, where ``failed``
counts LLM errors and Telegram send failures and ``attempts`` every ended attempt (sent +
failed). A 429 is not an outcome (the message is retried); the threshold watch alerts on
429s on its own (``piyasa.admin.notify.watch``).

The alarm fires (a warning, ``fleet:error_rate``) when the rate is above
:data:`FIRE_RATE` with at least :data:`MIN_ATTEMPTS` attempts in the window (three
failures out of ten messages are no sample), and resolves only once it is below
:data:`CLEAR_RATE` (hysteresis: a rate wobbling around 5 % is one incident, not a flap).
An empty window reads 0 %, so an alarm whose traffic stopped resolves when the failures
age out.

Time is the fleet's monotonic clock (seconds, injectable). Memory is bounded: counts are
kept per :data:`BUCKET_S`-second bucket, at most ``WINDOW_S / BUCKET_S + 1`` of them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 600.0  # ten minutes
BUCKET_S = 5.0
FIRE_RATE = 0.05  # above it (with MIN_ATTEMPTS): the alarm fires
CLEAR_RATE = 0.04  # below it: the alarm resolves
MIN_ATTEMPTS = 20


@dataclass(frozen=True)
class Transition:
    """The alarm changed: ``firing`` (True: fired, False: resolved) at ``failed`` of
    ``attempts`` (rate ``failed / attempts``, 0 when there were none)."""

    firing: bool
    failed: int
    attempts: int

    @property
    def rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0


class ErrorRate:
    """Sliding-window counts of message outcomes and the alarm over them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S):
        self.clock = clock
        self.window_s = window_s
        self._buckets: deque[list[int]] = deque()  # [bucket index, attempts, failed]
        self.firing = False

    def record(self, ok: bool) -> Transition | None:
        """One attempt ended (``ok``: Telegram accepted it); the alarm's change, if any."""
        index = int(self.clock() // BUCKET_S)
        if self._buckets and self._buckets[-1][0] == index:
            bucket = self._buckets[-1]
        else:
            bucket = [index, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += 0 if ok else 1
        return self.check()

    def counts(self) -> tuple[int, int]:
        """(failed, attempts) within the window ending now."""
        oldest = int((self.clock() - self.window_s) // BUCKET_S)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()
        return sum(b[2] for b in self._buckets), sum(b[1] for b in self._buckets)

    def check(self) -> Transition | None:
        """The alarm's change now (None: none), from the window's counts."""
        failed, attempts = self.counts()
        rate = failed / attempts if attempts else 0.0
        if not self.firing and attempts >= MIN_ATTEMPTS and rate > FIRE_RATE:
            self.firing = True
            return Transition(True, failed, attempts)
        if self.firing and rate < CLEAR_RATE:
            self.firing = False
            return Transition(False, failed, attempts)
        return None

    def describe(self) -> dict[str, float | int | bool]:
        """For the fleet's snapshot: the window's counts and whether the alarm fires."""
        failed, attempts = self.counts()
        return {
            "window_s": self.window_s,
            "failed": failed,
            "attempts": attempts,
            "firing": self.firing,
        }
