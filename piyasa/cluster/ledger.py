"""The planner's fleet-wide ledger: budget, hourly counts and last speaker, shared.

Each instance's :class:`piyasa.runtime.planner.Planner` decides on its own view (fast, in
memory); before a decision goes to generation the fleet *confirms* it here, in one atomic
step for the whole tick's batch. A confirmed decision has taken, fleet-wide:

* one token of the fleet budget (``max_msgs_per_min`` × ``scale_factor`` per minute, a
  bucket of five seconds' worth, full at first; a reply may borrow ``debt`` tokens);
* one place in its bot's hourly window (``hourly_limit`` in any 3600 s);
* one place in its chat's hourly window (``msg_budget``, when the chat has one);
* the chat's last speaker (refused when that bot spoke last there, anywhere).

A refused decision is handed back to the planner (:meth:`Planner.retract`) with the
reason, so N instances together honour the caps of one. Backends:

* :class:`RedisLedger` — one Lua script per batch (atomic, on the Redis server's clock);
* :class:`SqlLedger` — ``shared_counters`` rows locked in one transaction
  (:class:`piyasa.cluster.counters.SqlState`), on the database's clock;
* none on SQLite (one process): the planner's memory is the whole truth, unchanged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from piyasa.cluster.counters import SqlState, State

HOUR_S = 3600.0
OK = ""
BUDGET, BOT_HOURLY, CHAT_HOURLY, LAST_SPEAKER = "budget", "bot_hourly", "chat_hourly", "last"


@dataclass(frozen=True)
class Claim:
    bot_id: int
    chat_id: int  # database chat id (the planner's)
    bot_limit: int  # the bot's hourly limit
    chat_budget: int | None  # the chat's hourly budget; None: none of its own
    debt: float = 0.0  # a reply may take the budget down to -debt


@dataclass(frozen=True)
class Verdict:
    reason: str  # OK, or BUDGET / BOT_HOURLY / CHAT_HOURLY / LAST_SPEAKER
    tokens: float  # fleet budget tokens left after this claim
    last: int | None  # the chat's last speaker (a bot id, or -1 for a person)

    @property
    def ok(self) -> bool:
        return self.reason == OK


def budget_shape(per_min: float) -> tuple[float, float]:
    """(tokens per second, bucket size): the planner's ``_refill_budget`` rule."""
    rate = max(0.0, per_min) / 60.0
    return rate, (max(1.0, rate * 5.0) if rate > 0 else 0.0)


def decide(claims: Sequence[Claim], per_min: float, now: float, st: State) -> list[Verdict]:
    """Check and take ``claims`` in order against ``st`` (changed in place); the one rule
    for the SQL backend and the reference the Lua script follows."""
    rate, burst = budget_shape(per_min)
    b = st.setdefault("budget", {})
    tokens = burst if "t" not in b else min(burst, b["t"] + max(0.0, now - b["at"]) * rate)
    out: list[Verdict] = []
    for c in claims:
        bot = st.setdefault(f"bot:{c.bot_id}", {})
        chat = st.setdefault(f"chat:{c.chat_id}", {})
        bot_h = [t for t in bot.get("h", []) if t > now - HOUR_S]
        chat_h = [t for t in chat.get("h", []) if t > now - HOUR_S]
        last = chat.get("last")
        if tokens < 1 - c.debt:
            reason = BUDGET
        elif c.bot_limit <= 0 or len(bot_h) >= c.bot_limit:
            reason = BOT_HOURLY
        elif c.chat_budget is not None and len(chat_h) >= c.chat_budget:
            reason = CHAT_HOURLY
        elif last == c.bot_id:
            reason = LAST_SPEAKER
        else:
            reason = OK
            tokens -= 1
            bot_h.append(now)
            chat_h.append(now)
            last = c.bot_id
        bot["h"], chat["h"], chat["last"] = bot_h, chat_h, last
        out.append(Verdict(reason, tokens, last))
    b["t"], b["at"] = tokens, max(now, b.get("at", now))
    return out


class SqlLedger:
    """The ledger in ``shared_counters`` (PostgreSQL without Redis)."""

    kind = "postgresql"

    def __init__(self, engine: Any, prefix: str = "ledger:") -> None:
        self.state = SqlState(engine, prefix)

    async def claim_many(self, claims: Sequence[Claim], per_min: float) -> list[Verdict]:
        if not claims:
            return []
        keys = ["budget"]
        for c in claims:
            keys += [f"bot:{c.bot_id}", f"chat:{c.chat_id}"]
        out: list[Verdict] = []

        def change(now: float, st: State) -> list[str]:
            out.extend(decide(claims, per_min, now, st))
            return keys

        await self.state.update(keys, change)
        return out

    async def note_human(self, chat_id: int) -> None:
        def change(_now: float, st: State) -> list[str]:
            st[f"chat:{chat_id}"]["last"] = -1
            return [f"chat:{chat_id}"]

        await self.state.update([f"chat:{chat_id}"], change)

    async def clear(self) -> None:
        await self.state.clear()

    async def close(self) -> None:
        return None


# KEYS: budget hash, then per claim: bot window (zset), chat window (zset), chat last (str).
# ARGV: per_s, burst, ttl_ms, member prefix, then per claim: bot_id, bot_limit,
# chat_budget (-1: none), debt. Returns per claim {reason, tokens, last}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = burst
if b[1] then tokens = math.min(burst, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * rate) end
local out = {}
local n = (#KEYS - 1) / 3
for i = 0, n - 1 do
  local bw, cw, lk = KEYS[2 + i * 3], KEYS[3 + i * 3], KEYS[4 + i * 3]
  local bot, limit = ARGV[5 + i * 4], tonumber(ARGV[6 + i * 4])
  local cap, debt = tonumber(ARGV[7 + i * 4]), tonumber(ARGV[8 + i * 4])
  redis.call('ZREMRANGEBYSCORE', bw, '-inf', now - 3600)
  redis.call('ZREMRANGEBYSCORE', cw, '-inf', now - 3600)
  local last = redis.call('GET', lk)
  local reason = ''
  if tokens < 1 - debt then reason = 'budget'
  elseif limit <= 0 or redis.call('ZCARD', bw) >= limit then reason = 'bot_hourly'
  elseif cap >= 0 and redis.call('ZCARD', cw) >= cap then reason = 'chat_hourly'
  elseif last == bot then reason = 'last'
  else
    tokens = tokens - 1
    local m = ARGV[4] .. ':' .. i .. ':' .. now
    redis.call('ZADD', bw, now, m)
    redis.call('ZADD', cw, now, m)
    redis.call('PEXPIRE', bw, ttl)
    redis.call('PEXPIRE', cw, ttl)
    redis.call('SET', lk, bot, 'PX', ttl)
    last = bot
  end
  out[i + 1] = {reason, tostring(tokens), last or ''}
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return out
"""


class RedisLedger:
    """The ledger in Redis (``PIYASA_REDIS_URL``): one script per batch."""

    kind = "redis"

    def __init__(self, client: Any, namespace: str = "piyasa:ledger:") -> None:
        self.client = client
        self.ns = namespace
        self._script = client.register_script(_LUA)
        self._tag = uuid.uuid4().hex[:8]
        self._seq = 0

    async def claim_many(self, claims: Sequence[Claim], per_min: float) -> list[Verdict]:
        if not claims:
            return []
        rate, burst = budget_shape(per_min)
        self._seq += 1
        keys = [self.ns + "budget"]
        argv: list[Any] = [rate, burst, int((HOUR_S + 60) * 1000), f"{self._tag}:{self._seq}"]
        for c in claims:
            keys += [f"{self.ns}bh:{c.bot_id}", f"{self.ns}ch:{c.chat_id}"]
            keys.append(f"{self.ns}last:{c.chat_id}")
            cap = -1 if c.chat_budget is None else c.chat_budget
            argv += [c.bot_id, c.bot_limit, cap, c.debt]
        raw = await self._script(keys=keys, args=argv)
        out = []
        for reason, tokens, last in raw:
            r = reason.decode() if isinstance(reason, bytes) else reason
            lv = last.decode() if isinstance(last, bytes) else last
            out.append(Verdict(r, float(tokens), int(lv) if lv else None))
        return out

    async def note_human(self, chat_id: int) -> None:
        await self.client.set(f"{self.ns}last:{chat_id}", "-1", px=int(HOUR_S * 1000))

    async def clear(self) -> None:
        keys = [k async for k in self.client.scan_iter(match=self.ns + "*", count=500)]
        if keys:
            await self.client.delete(*keys)

    async def close(self) -> None:
        return None


Ledger = SqlLedger | RedisLedger


def scope_of(database_url: str) -> str:
    """One deployment's keys: a hash of its database URL (two deployments may share Redis)."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def make_ledger(settings: Any, engine: Any, cache: Any) -> Ledger | None:
    """None on SQLite (one process: the planner's memory); Redis when configured (the
    cache's client); else the database."""
    if settings.sqlite_default or engine.dialect.name != "postgresql":
        return None
    client = getattr(cache, "client", None)
    if settings.redis_url and client is not None:
        ns = getattr(cache, "namespace", "piyasa:")
        return RedisLedger(client, f"{ns}ledger:{scope_of(settings.database_url)}:")
    return SqlLedger(engine)
