"""Token buckets and sliding windows that mirror Telegram's send limits, memory or Redis.

Every send must pass, atomically and all at once:

* the (bot, chat) token bucket: ``chat_rate``/s, at most ``chat_burst`` tokens;
* for groups, at most ``group_max`` sends per (bot, group) in any ``group_window`` seconds;
* at most ``bot_max`` sends per bot token in any ``bot_window`` seconds;
* at most ``global_max`` sends for the whole fleet in any ``global_window`` seconds;
* no active ``retry_after`` block for the (bot, chat) pair or the bot.

A refused request consumes nothing and learns how long to wait.

``margin_s`` absorbs jitter between our clock (we read the time when we send) and
Telegram's (it reads the time when the request arrives). It is a constant offset, never a
per-interval stretch: the bucket is a GCRA (virtual scheduling) whose conformance test runs
at ``now - margin_s`` (never before the pair's previous send: one pair's requests arrive
in order), and the windows are ``window + margin_s`` long. So a steady stream
is spaced at exactly ``1 / chat_rate`` after its first send, and a burst's first message
waits for nothing; stretching every interval instead cost 8 % of the throughput a chat
allows.

Memory limiters serve one process. With Redis, one Lua script checks and consumes for a
whole batch of requests in one round trip, using the Redis server's clock, so several
processes share the same budget (tests may inject a clock instead, to skip waits).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

EPS = 1e-9


@dataclass(frozen=True)
class DeliveryLimits:
    chat_rate: float = 1.0
    chat_burst: int = 3
    group_max: int = 20
    group_window: float = 60.0
    bot_max: int = 30
    bot_window: float = 1.0
    global_max: int = 200
    global_window: float = 1.0
    margin_s: float = 0.1

    @property
    def chat_interval(self) -> float:
        return 1.0 / self.chat_rate

    @property
    def chat_tolerance(self) -> float:
        """How far ahead of real time the bucket's virtual schedule may run (the burst)."""
        return max(0, self.chat_burst - 1) * self.chat_interval


@dataclass(frozen=True)
class SendKey:
    bot_id: int
    chat_id: int  # Telegram chat id
    is_group: bool


class Limiter(Protocol):
    kind: str
    limits: DeliveryLimits

    async def acquire_many(self, keys: Sequence[SendKey]) -> list[float]: ...
    async def peek_many(self, keys: Sequence[SendKey]) -> list[float]: ...
    async def block(self, bot_id: int, chat_id: int | None, seconds: float) -> None: ...
    async def tokens_many(self, keys: Sequence[SendKey]) -> list[float]: ...
    async def close(self) -> None: ...


def _tokens(limits: DeliveryLimits, tat: float | None, now: float) -> float:
    """Messages a (bot, chat) bucket would admit at once, from its GCRA state."""
    ahead = 0.0 if tat is None else max(0.0, tat - now)
    return max(0.0, min(float(limits.chat_burst), limits.chat_burst - ahead / limits.chat_interval))


def _window_wait(dq: deque[float], now: float, window: float, cap: int) -> float:
    while dq and dq[0] <= now - window:
        dq.popleft()
    if cap <= 0 or len(dq) < cap:
        return 0.0
    return dq[len(dq) - cap] + window - now


@dataclass
class MemoryLimiter:
    """In-process limiter; ``clock`` is injectable so tests can drive time."""

    limits: DeliveryLimits = field(default_factory=DeliveryLimits)
    clock: Callable[[], float] = time.monotonic
    kind: str = "memory"
    _tat: dict[tuple[int, int], float] = field(default_factory=dict)  # theoretical arrival
    _last: dict[tuple[int, int], float] = field(default_factory=dict)  # last send
    _groups: dict[tuple[int, int], deque[float]] = field(default_factory=dict)
    _bots: dict[int, deque[float]] = field(default_factory=dict)
    _global: deque[float] = field(default_factory=deque)
    _blocks: dict[tuple[int, int | None], float] = field(default_factory=dict)

    def wait_one(self, key: SendKey, now: float) -> float:
        lim = self.limits
        pair = (key.bot_id, key.chat_id)
        tat = self._tat.get(pair)
        # Sends of one pair reach Telegram in order, so jitter never makes an arrival
        # earlier than the previous send: test at now - margin, but not before that send.
        at = max(now - lim.margin_s, self._last.get(pair, -1e18))
        early = 0.0 if tat is None else tat - lim.chat_tolerance - at
        waits = [max(0.0, early)]
        if key.is_group:
            dq = self._groups.setdefault(pair, deque())
            waits.append(_window_wait(dq, now, lim.group_window + lim.margin_s, lim.group_max))
        waits.append(
            _window_wait(
                self._bots.setdefault(key.bot_id, deque()),
                now,
                lim.bot_window + lim.margin_s,
                lim.bot_max,
            )
        )
        waits.append(
            _window_wait(self._global, now, lim.global_window + lim.margin_s, lim.global_max)
        )
        for block_key in (pair, (key.bot_id, None)):
            until = self._blocks.get(block_key)
            if until is not None:
                if until > now:
                    waits.append(until - now)
                else:
                    del self._blocks[block_key]
        w = max(waits)
        return w if w > EPS else 0.0

    def consume(self, key: SendKey, now: float) -> None:
        pair = (key.bot_id, key.chat_id)
        lim = self.limits
        self._tat[pair] = max(self._tat.get(pair, now), now) + lim.chat_interval
        self._last[pair] = now
        if key.is_group:
            self._groups.setdefault(pair, deque()).append(now)
        self._bots.setdefault(key.bot_id, deque()).append(now)
        self._global.append(now)

    async def acquire_many(self, keys: Sequence[SendKey]) -> list[float]:
        now = self.clock()
        out = []
        for key in keys:
            w = self.wait_one(key, now)
            if w == 0.0:
                self.consume(key, now)
            out.append(w)
        return out

    async def peek_many(self, keys: Sequence[SendKey]) -> list[float]:
        """Waits as ``acquire_many`` would answer them, consuming nothing."""
        now = self.clock()
        return [self.wait_one(key, now) for key in keys]

    async def tokens_many(self, keys: Sequence[SendKey]) -> list[float]:
        """Tokens left in each (bot, chat) bucket now (``chat_burst`` when untouched)."""
        now = self.clock()
        return [_tokens(self.limits, self._tat.get((k.bot_id, k.chat_id)), now) for k in keys]

    async def block(self, bot_id: int, chat_id: int | None, seconds: float) -> None:
        """Honour a ``retry_after``: nothing for this pair (or bot) until it has passed."""
        until = self.clock() + seconds
        key = (bot_id, chat_id)
        self._blocks[key] = max(until, self._blocks.get(key, 0.0))

    async def close(self) -> None:
        return None


# KEYS per request (6): bucket, group window, bot window, global window, pair block, bot block.
# ARGV: 12 shared values (10th: "now" or "" for the server's clock; 11th: the margin; 12th:
# "1" to only look, consuming nothing), then per request:
# is_group, member. The bucket hash holds the GCRA's theoretical arrival time ``tat``;
# a block key holds the time it ends.
_NOW = """
local now
if ARGV[%d] ~= nil and ARGV[%d] ~= '' then
  now = tonumber(ARGV[%d])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

_LUA = (
    _NOW % (10, 10, 10)
    + """
local iv = tonumber(ARGV[1])
local tol = tonumber(ARGV[2])
local gmax = tonumber(ARGV[3])
local gwin = tonumber(ARGV[4])
local bmax = tonumber(ARGV[5])
local bwin = tonumber(ARGV[6])
local xmax = tonumber(ARGV[7])
local xwin = tonumber(ARGV[8])
local ttl_ms = tonumber(ARGV[9])
local margin = tonumber(ARGV[11])
local dry = ARGV[12] == '1'
local out = {}
local function window(key, max, win)
  if max <= 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
  local n = redis.call('ZCARD', key)
  if n < max then return 0 end
  local oldest = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
  return tonumber(oldest[2]) + win - now
end
local function blocked(key)
  local v = redis.call('GET', key)
  if v then return tonumber(v) - now end
  return 0
end
local n = #KEYS / 6
for i = 0, n - 1 do
  local k = i * 6
  local is_group = ARGV[13 + i * 2] == '1'
  local member = ARGV[14 + i * 2]
  local b = redis.call('HMGET', KEYS[k + 1], 'tat', 'last')
  local tat = tonumber(b[1])
  local at = math.max(now - margin, tonumber(b[2]) or -1e18)
  local wait = 0
  if tat ~= nil then wait = math.max(0, tat - tol - at) end
  if is_group then wait = math.max(wait, window(KEYS[k + 2], gmax, gwin)) end
  wait = math.max(wait, window(KEYS[k + 3], bmax, bwin))
  wait = math.max(wait, window(KEYS[k + 4], xmax, xwin))
  wait = math.max(wait, blocked(KEYS[k + 5]), blocked(KEYS[k + 6]))
  if wait > 1e-9 then
    out[i + 1] = tostring(wait)
  elseif dry then
    out[i + 1] = '0'
  else
    if tat == nil or tat < now then tat = now end
    redis.call('HSET', KEYS[k + 1], 'tat', tostring(tat + iv), 'last', tostring(now))
    redis.call('PEXPIRE', KEYS[k + 1], ttl_ms)
    if is_group then
      redis.call('ZADD', KEYS[k + 2], now, member)
      redis.call('PEXPIRE', KEYS[k + 2], ttl_ms)
    end
    redis.call('ZADD', KEYS[k + 3], now, member)
    redis.call('PEXPIRE', KEYS[k + 3], ttl_ms)
    redis.call('ZADD', KEYS[k + 4], now, member)
    redis.call('PEXPIRE', KEYS[k + 4], ttl_ms)
    out[i + 1] = '0'
  end
end
return out
"""
)

# KEYS: the block key. ARGV: seconds, ttl ms, now (or ""). Keeps the later of two ends.
_BLOCK = (
    _NOW % (3, 3, 3)
    + """
local ends = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if ends > cur then redis.call('SET', KEYS[1], string.format('%.6f', ends), 'PX', ARGV[2]) end
return 1
"""
)


class RedisLimiter:
    """The same rules in Redis: one EVALSHA per batch, atomic, on the server's clock."""

    kind = "redis"

    def __init__(
        self,
        client: object,
        limits: DeliveryLimits | None = None,
        namespace: str = "piyasa:gate:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.limits = limits or DeliveryLimits()
        self.ns = namespace
        self.clock = clock  # None: the Redis server's clock (shared by every process)
        self._script = client.register_script(_LUA)  # type: ignore[attr-defined]
        self._block = client.register_script(_BLOCK)  # type: ignore[attr-defined]
        self._seq = 0
        self._tag = uuid.uuid4().hex[:8]

    @classmethod
    def from_url(
        cls,
        url: str,
        limits: DeliveryLimits | None = None,
        namespace: str = "piyasa:gate:",
        clock: Callable[[], float] | None = None,
    ):  # type: ignore[no-untyped-def]
        import redis.asyncio as aioredis

        return cls(
            aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5),
            limits,
            namespace,
            clock,
        )

    def _now(self) -> str:
        return "" if self.clock is None else repr(float(self.clock()))

    def _keys(self, key: SendKey) -> list[str]:
        ns, b, c = self.ns, key.bot_id, key.chat_id
        return [
            f"{ns}bk:{b}:{c}",
            f"{ns}gw:{b}:{c}",
            f"{ns}bw:{b}",
            f"{ns}xw",
            f"{ns}blk:{b}:{c}",
            f"{ns}blk:{b}",
        ]

    async def acquire_many(self, keys: Sequence[SendKey], dry: bool = False) -> list[float]:
        if not keys:
            return []
        lim = self.limits
        ttl_ms = int((max(lim.group_window, lim.bot_window, lim.global_window) + 5) * 1000)
        argv: list[object] = [
            lim.chat_interval,
            lim.chat_tolerance,
            lim.group_max,
            lim.group_window + lim.margin_s,
            lim.bot_max,
            lim.bot_window + lim.margin_s,
            lim.global_max,
            lim.global_window + lim.margin_s,
            ttl_ms,
            self._now(),
            lim.margin_s,
            "1" if dry else "0",
        ]
        all_keys: list[str] = []
        for key in keys:
            all_keys += self._keys(key)
            self._seq += 1
            argv += ["1" if key.is_group else "0", f"{self._tag}:{self._seq}"]
        result = await self._script(keys=all_keys, args=argv)
        return [float(x.decode() if isinstance(x, bytes) else x) for x in result]

    async def peek_many(self, keys: Sequence[SendKey]) -> list[float]:
        return await self.acquire_many(keys, dry=True)

    async def tokens_many(self, keys: Sequence[SendKey]) -> list[float]:
        """Tokens left in each (bot, chat) bucket now, read without consuming."""
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)  # type: ignore[attr-defined]
        if self.clock is None:
            pipe.time()
        for k in keys:
            pipe.hget(self._keys(k)[0], "tat")
        out = await pipe.execute()
        if self.clock is None:
            secs, micros = out.pop(0)
            now = float(secs) + float(micros) / 1e6
        else:
            now = float(self.clock())
        return [_tokens(self.limits, None if v is None else float(v), now) for v in out]

    async def block(self, bot_id: int, chat_id: int | None, seconds: float) -> None:
        key = f"{self.ns}blk:{bot_id}" if chat_id is None else f"{self.ns}blk:{bot_id}:{chat_id}"
        # The key expires a little after the block ends (by the real clock: only cleanup).
        ttl_ms = max(1, int((seconds + 5) * 1000))
        await self._block(keys=[key], args=[seconds, ttl_ms, self._now()])

    async def clear(self) -> None:
        keys = [k async for k in self.client.scan_iter(match=self.ns + "*", count=500)]  # type: ignore[attr-defined]
        if keys:
            await self.client.delete(*keys)  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.client.aclose()  # type: ignore[attr-defined]


def make_limiter(
    redis_url: str,
    limits: DeliveryLimits,
    namespace: str = "piyasa:gate:",
    clock: Callable[[], float] | None = None,
) -> MemoryLimiter | RedisLimiter:
    """Redis buckets when configured; ``clock`` None means the server's (Redis) or monotonic."""
    if redis_url:
        return RedisLimiter.from_url(redis_url, limits, namespace, clock)
    return MemoryLimiter(limits, clock=clock or time.monotonic)
