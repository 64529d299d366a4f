"""What the delivery gate sent and what Telegram refused with 429, per bot and chat.

The gate's buckets know how much room is left *now*; operators also want how much was
used (messages in the last minute and hour against Telegram's limits) and how often
Telegram said "slow down" (429 with ``retry_after``). The fleet feeds every accepted send
and every 429 here; ``piyasa.fleetadmin.limits`` reads it for `/limits`, and
``piyasa.fleetadmin.autoadjust`` for the 429 trend. Memory is bounded: single sends are
kept for ``window_s`` (a minute), older ones only as per-minute counts for an hour.

Time is the fleet's monotonic clock (injectable, so tests and benchmarks move it).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

HOUR_S = 3600.0


@dataclass(frozen=True)
class Send:
    at: float
    bot_id: int
    chat_id: int  # Telegram chat id
    is_group: bool


@dataclass(frozen=True)
class Refusal:
    """One 429 answer: which pair, when, and the ``retry_after`` (seconds) it carried."""

    at: float
    bot_id: int
    chat_id: int
    retry_after: float


class RateWatch:
    """Recent sends and 429s of one fleet process (bounded; see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = 60.0):
        self.clock = clock
        self.window_s = window_s
        self.recent: deque[Send] = deque()
        # (bot, chat) -> [[minute index, count], ...] for the last hour
        self.minutes: dict[tuple[int, int], deque[list[int]]] = {}
        self.refusals: deque[Refusal] = deque()
        self.groups: dict[int, bool] = {}  # Telegram chat id -> is a group
        self.total_sent = 0
        self.total_429 = 0

    def sent(self, bot_id: int, chat_id: int, is_group: bool) -> None:
        """Telegram accepted a message of ``bot_id`` in ``chat_id``."""
        now = self.clock()
        self.total_sent += 1
        self.groups[chat_id] = is_group
        self.recent.append(Send(now, bot_id, chat_id, is_group))
        minute = int(now // 60)
        dq = self.minutes.setdefault((bot_id, chat_id), deque())
        if dq and dq[-1][0] == minute:
            dq[-1][1] += 1
        else:
            dq.append([minute, 1])
        self._trim(now)

    def limited(self, bot_id: int, chat_id: int, retry_after: float) -> None:
        """Telegram answered 429 with ``retry_after`` seconds."""
        now = self.clock()
        self.total_429 += 1
        self.refusals.append(Refusal(now, bot_id, chat_id, float(retry_after)))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.recent and self.recent[0].at <= now - self.window_s:
            self.recent.popleft()
        while self.refusals and self.refusals[0].at <= now - HOUR_S:
            self.refusals.popleft()
        oldest = int((now - HOUR_S) // 60)
        for pair in [p for p, dq in self.minutes.items() if dq and dq[-1][0] <= oldest]:
            del self.minutes[pair]

    def sends_since(self, seconds: float) -> list[Send]:
        """Sends in the last ``seconds`` (at most ``window_s``), oldest first."""
        now = self.clock()
        self._trim(now)
        return [s for s in self.recent if s.at > now - seconds]

    def refusals_since(self, seconds: float) -> list[Refusal]:
        """429s in the last ``seconds`` (at most an hour), oldest first."""
        now = self.clock()
        self._trim(now)
        return [r for r in self.refusals if r.at > now - seconds]

    def hour_counts(self) -> dict[tuple[int, int], int]:
        """(bot id, Telegram chat id) -> sends in the last hour (whole minutes: the current
        one and the 59 before it)."""
        now = self.clock()
        self._trim(now)
        first = int(now // 60) - 59
        return {
            pair: sum(n for m, n in dq if m >= first) for pair, dq in self.minutes.items() if dq
        }
