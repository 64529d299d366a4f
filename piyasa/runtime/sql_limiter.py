"""The gate's token buckets shared through PostgreSQL, for several instances without Redis.

The same rules as :class:`piyasa.runtime.buckets.MemoryLimiter` — literally: each call
locks the rows its keys need in ``shared_counters`` (:class:`piyasa.cluster.counters.SqlState`),
loads them into a throwaway ``MemoryLimiter`` running on the database's clock, asks it,
and writes back what it consumed. Rows per send key: the (bot, chat) pair (GCRA state,
group window, ``retry_after`` block), the bot (its window and block) and the global
window. The global row is the one every send locks: instances take turns on it for a
transaction (about a millisecond), the price of one fleet-wide cap without Redis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from piyasa.cluster.counters import SqlState, State
from piyasa.runtime.buckets import DeliveryLimits, MemoryLimiter, SendKey

GLOBAL = "x"


def _pair(b: int, c: int) -> str:
    return f"p:{b}:{c}"


def _keys(keys: Sequence[SendKey]) -> list[str]:
    out = [GLOBAL]
    for k in keys:
        out += [_pair(k.bot_id, k.chat_id), f"b:{k.bot_id}"]
    return out


def _load(limits: DeliveryLimits, now: float, st: State) -> MemoryLimiter:
    m = MemoryLimiter(limits, clock=lambda: now)
    m._global = deque(st.get(GLOBAL, {}).get("w", []))
    for key, row in st.items():
        if key.startswith("p:"):
            _, b, c = key.split(":")
            pair = (int(b), int(c))
            if "tat" in row:
                m._tat[pair] = row["tat"]
                m._last[pair] = row["last"]
            m._groups[pair] = deque(row.get("w", []))
            if row.get("blk"):
                m._blocks[pair] = row["blk"]
        elif key.startswith("b:"):
            bot = int(key[2:])
            m._bots[bot] = deque(row.get("w", []))
            if row.get("blk"):
                m._blocks[(bot, None)] = row["blk"]
    return m


def _save(m: MemoryLimiter, now: float, st: State) -> list[str]:
    lim = m.limits

    def recent(dq: deque[float], window: float) -> list[float]:
        return [t for t in dq if t > now - window - lim.margin_s]

    st[GLOBAL] = {"w": recent(m._global, lim.global_window)}
    for key in list(st):
        if key.startswith("p:"):
            _, b, c = key.split(":")
            pair = (int(b), int(c))
            row: dict[str, Any] = {"w": recent(m._groups.get(pair, deque()), lim.group_window)}
            if pair in m._tat:
                row["tat"], row["last"] = m._tat[pair], m._last[pair]
            if m._blocks.get(pair, 0.0) > now:
                row["blk"] = m._blocks[pair]
            st[key] = row
        elif key.startswith("b:"):
            bot = int(key[2:])
            row = {"w": recent(m._bots.get(bot, deque()), lim.bot_window)}
            if m._blocks.get((bot, None), 0.0) > now:
                row["blk"] = m._blocks[(bot, None)]
            st[key] = row
    return list(st)


class SqlLimiter:
    """The :class:`~piyasa.runtime.buckets.Limiter` interface on PostgreSQL rows."""

    kind = "postgresql"

    def __init__(
        self, engine: Any, limits: DeliveryLimits | None = None, prefix: str = "gate:"
    ) -> None:
        self.limits = limits or DeliveryLimits()
        self.state = SqlState(engine, prefix)

    async def acquire_many(self, keys: Sequence[SendKey]) -> list[float]:
        """Waits in seconds (0: admitted and consumed), atomically across instances."""
        if not keys:
            return []
        out: list[float] = []

        def change(now: float, st: State) -> list[str]:
            m = _load(self.limits, now, st)
            for key in keys:
                w = m.wait_one(key, now)
                if w == 0.0:
                    m.consume(key, now)
                out.append(w)
            return _save(m, now, st) if any(w == 0.0 for w in out) else []

        await self.state.update(_keys(keys), change)
        return out

    async def peek_many(self, keys: Sequence[SendKey]) -> list[float]:
        """Waits as ``acquire_many`` would answer them, consuming nothing (no lock)."""
        if not keys:
            return []
        now, st = await self.state.read(_keys(keys))
        m = _load(self.limits, now, st)
        return [m.wait_one(k, now) for k in keys]

    async def tokens_many(self, keys: Sequence[SendKey]) -> list[float]:
        if not keys:
            return []
        now, st = await self.state.read(_keys(keys))
        m = _load(self.limits, now, st)
        return await m.tokens_many(keys)

    async def block(self, bot_id: int, chat_id: int | None, seconds: float) -> None:
        """Honour a ``retry_after`` on every instance: nothing for the pair (or bot)
        until it has passed (the later of two blocks wins)."""
        key = f"b:{bot_id}" if chat_id is None else _pair(bot_id, chat_id)

        def change(now: float, st: State) -> list[str]:
            st[key]["blk"] = max(float(st[key].get("blk", 0.0)), now + seconds)
            return [key]

        await self.state.update([key], change)

    async def clear(self) -> None:
        await self.state.clear()

    async def close(self) -> None:
        return None
