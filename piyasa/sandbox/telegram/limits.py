"""Telegram's published send limits, as the sandbox enforces them.

The Bot FAQ gives three limits without exact algorithms; this module pins them down so
the product's delivery gate and the benchmarks can aim at a precise target:

* per bot and chat: a token bucket, ``chat_rate`` tokens/s (1/s), holding at most
  ``chat_burst`` tokens (3). "About one message per second, short bursts tolerated"
  is exactly a bucket; a burst of 3 is what live bots observe before the first 429.
* per bot and group (chat id < 0 / group or supergroup): at most ``group_max`` (20) sends in
  any sliding window of ``group_window`` (60) seconds: a send at time ``t`` is refused when
  20 sends happened in ``(t - 60, t]``.
* per bot token: at most ``bot_max`` (30) sends in any sliding ``bot_window`` (1 s).

A send is admitted only when all three admit it; a refused send consumes nothing. The
``retry_after`` Telegram would answer is the wait until all three admit it, rounded up to
whole seconds (at least 1). Sends are: sendMessage, sendPhoto, sendDocument and edits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

EPS = 1e-9

RATE_LIMITED_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
    }
)


@dataclass(frozen=True)
class SandboxLimits:
    """The numbers behind every 429 and every size check of the sandbox."""

    chat_rate: float = 1.0
    chat_burst: int = 3
    group_max: int = 20
    group_window: float = 60.0
    bot_max: int = 30
    bot_window: float = 1.0
    text_max: int = 4096
    caption_max: int = 1024
    callback_data_max_bytes: int = 64
    callback_answer_text_max: int = 200
    callback_answer_timeout: float = 15.0
    inline_buttons_max: int = 100
    inline_buttons_per_row_max: int = 8
    photo_max_bytes: int = 10 * 1024 * 1024
    upload_max_bytes: int = 50 * 1024 * 1024
    download_max_bytes: int = 20 * 1024 * 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Stateful enforcement of :class:`SandboxLimits`; time is passed in, never read."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    _buckets: dict[tuple[int, int], _Bucket] = field(default_factory=dict)
    _groups: dict[tuple[int, int], deque[float]] = field(default_factory=dict)
    _bots: dict[int, deque[float]] = field(default_factory=dict)

    def _bucket(self, bot_id: int, chat_id: int, now: float) -> _Bucket:
        b = self._buckets.get((bot_id, chat_id))
        if b is None:
            b = self._buckets[(bot_id, chat_id)] = _Bucket(float(self.limits.chat_burst), now)
        elif now > b.updated:
            b.tokens = min(
                float(self.limits.chat_burst), b.tokens + (now - b.updated) * self.limits.chat_rate
            )
            b.updated = now
        return b

    @staticmethod
    def _window_wait(dq: deque[float], now: float, window: float, cap: int) -> float:
        while dq and dq[0] <= now - window + EPS:
            dq.popleft()
        if len(dq) < cap:
            return 0.0
        return dq[len(dq) - cap] + window - now

    def tokens(self, bot_id: int, chat_id: int, now: float) -> float:
        """Tokens left in the (bot, chat) bucket at ``now``."""
        return self._bucket(bot_id, chat_id, now).tokens

    def headroom(self, bot_id: int, chat_id: int, is_group: bool, now: float) -> float:
        """Sends the chat limits alone would admit right now (bucket, and group window)."""
        room = self._bucket(bot_id, chat_id, now).tokens
        if is_group:
            dq = self._groups.setdefault((bot_id, chat_id), deque())
            self._window_wait(dq, now, self.limits.group_window, self.limits.group_max)
            room = min(room, float(self.limits.group_max - len(dq)))
        return room

    def wait(self, bot_id: int, chat_id: int, is_group: bool, now: float) -> float:
        """Seconds until a send from ``bot_id`` to ``chat_id`` is admitted (0: admitted now)."""
        lim = self.limits
        b = self._bucket(bot_id, chat_id, now)
        waits = [0.0 if b.tokens >= 1 - EPS else (1 - b.tokens) / lim.chat_rate]
        if is_group:
            dq = self._groups.setdefault((bot_id, chat_id), deque())
            waits.append(self._window_wait(dq, now, lim.group_window, lim.group_max))
        dq = self._bots.setdefault(bot_id, deque())
        waits.append(self._window_wait(dq, now, lim.bot_window, lim.bot_max))
        w = max(waits)
        return w if w > EPS else 0.0

    def consume(self, bot_id: int, chat_id: int, is_group: bool, now: float) -> None:
        """Record an admitted send (call only after :meth:`wait` returned 0)."""
        b = self._bucket(bot_id, chat_id, now)
        b.tokens = max(0.0, b.tokens - 1)
        if is_group:
            self._groups.setdefault((bot_id, chat_id), deque()).append(now)
        self._bots.setdefault(bot_id, deque()).append(now)


def retry_after_seconds(wait: float) -> int:
    """Telegram answers whole seconds; never 0, or clients would retry at once."""
    return max(1, math.ceil(wait - EPS))


def allowed_max(
    limits: SandboxLimits, chats: Iterable[tuple[int, bool]], bot_count: int, seconds: float
) -> int:
    """Most sends ``bot_count`` bots can make to ``chats`` in the half-open span [0, seconds).

    Every bot starts with full buckets and empty windows, and the limits are per bot, so the
    answer is ``bot_count`` times the single-bot figure. That figure comes from simulating a
    sender that sends as early as the limits allow (earliest-send is optimal for
    "at most k per window" and token-bucket constraints), picking, when the per-bot cap
    binds, the chat with the most headroom so the least refill is wasted.

    Exact whenever the per-bot cap does not bind (fewer than ``bot_max / chat_burst`` chats)
    and checked against brute force on small configurations; when the per-bot cap binds the
    chat choice is a heuristic, so the figure is a schedule the limits admit (a lower bound)
    that matched brute force in almost all small random cases tried.
    """
    chat_list = list(dict.fromkeys(chats))
    if bot_count <= 0 or seconds <= 0 or not chat_list:
        return 0
    rl = RateLimiter(limits)
    t, sent = 0.0, 0
    while t < seconds - EPS:
        waits = [(rl.wait(0, cid, grp, t), cid, grp) for cid, grp in chat_list]
        ready = [(cid, grp) for w, cid, grp in waits if w == 0.0]
        if ready:
            cid, grp = max(ready, key=lambda c: rl.headroom(0, c[0], c[1], t))
            rl.consume(0, cid, grp, t)
            sent += 1
            continue
        t += min(w for w, _, _ in waits)
    return sent * bot_count
