"""A small key/value cache with TTLs: in-process by default, Redis when configured.

Button tokens, parked step-up requests, failure counters and rate buckets live here, so the
same code runs embedded (one process) and scaled out (Redis shared by several processes).
What another process must see at once (who may do what, step-up elevations, one-time
codes) lives in the database instead: see ``piyasa.db.principals``.
Values are JSON-serialisable; operations that must be atomic are atomic on both.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Protocol


class Cache(Protocol):
    """What every cache backend offers."""

    kind: str

    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...
    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool: ...
    async def delete(self, key: str) -> bool: ...
    async def pop(self, key: str) -> Any | None: ...
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int: ...
    async def keys(self, prefix: str) -> list[str]: ...
    async def clear(self, prefix: str = "") -> int: ...
    async def ping(self) -> float: ...
    async def close(self) -> None: ...


class MemoryCache:
    """Process-local cache; expiry checked lazily on read, swept on write."""

    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._clock = clock
        self._lock = asyncio.Lock()
        self._writes = 0

    def _alive(self, key: str) -> bool:
        item = self._data.get(key)
        if item is None:
            return False
        if item[1] is not None and item[1] <= self._clock():
            del self._data[key]
            return False
        return True

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def _sweep(self) -> None:
        self._writes += 1
        if self._writes % 1000 == 0:
            for key in list(self._data):
                self._alive(key)

    async def get(self, key: str) -> Any | None:
        return self._data[key][0] if self._alive(key) else None

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._sweep()
        self._data[key] = (json.loads(json.dumps(value)), self._expiry(ttl))

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        if self._alive(key):
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> bool:
        existed = self._alive(key)
        self._data.pop(key, None)
        return existed

    async def pop(self, key: str) -> Any | None:
        if not self._alive(key):
            return None
        return self._data.pop(key)[0]

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if self._alive(key):
            value, expiry = self._data[key]
            self._data[key] = (int(value) + amount, expiry)
        else:
            self._data[key] = (amount, self._expiry(ttl))
        return int(self._data[key][0])

    async def keys(self, prefix: str) -> list[str]:
        return [k for k in list(self._data) if k.startswith(prefix) and self._alive(k)]

    async def clear(self, prefix: str = "") -> int:
        doomed = [k for k in self._data if k.startswith(prefix)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    async def ping(self) -> float:
        return 0.0

    async def close(self) -> None:
        return None


class RedisCache:
    """Redis-backed cache; keys are namespaced so several deployments can share a server."""

    kind = "redis"

    def __init__(self, url: str, namespace: str = "piyasa:") -> None:
        import redis.asyncio as aioredis  # ~0.1 s CPU: only when Redis is configured

        self.url = url
        self.namespace = namespace
        self.client = aioredis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )

    def _k(self, key: str) -> str:
        return self.namespace + key

    @staticmethod
    def _ms(ttl: float | None) -> int | None:
        return None if ttl is None else max(1, int(ttl * 1000))

    async def get(self, key: str) -> Any | None:
        raw = await self.client.get(self._k(key))
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        await self.client.set(self._k(key), json.dumps(value), px=self._ms(ttl))

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return bool(
            await self.client.set(self._k(key), json.dumps(value), px=self._ms(ttl), nx=True)
        )

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self._k(key)))

    async def pop(self, key: str) -> Any | None:
        raw = await self.client.getdel(self._k(key))
        return None if raw is None else json.loads(raw)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(self._k(key), amount)
            if ttl is not None:
                pipe.pexpire(self._k(key), self._ms(ttl), nx=True)
            result = await pipe.execute()
        return int(result[0])

    async def keys(self, prefix: str) -> list[str]:
        cut = len(self.namespace)
        return [
            k.decode()[cut:]
            async for k in self.client.scan_iter(match=self._k(prefix) + "*", count=500)
        ]

    async def clear(self, prefix: str = "") -> int:
        keys = [k async for k in self.client.scan_iter(match=self._k(prefix) + "*", count=500)]
        return int(await self.client.delete(*keys)) if keys else 0

    async def ping(self) -> float:
        start = time.perf_counter()
        await self.client.ping()
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        await self.client.aclose()


def make_cache(redis_url: str = "", namespace: str = "piyasa:") -> MemoryCache | RedisCache:
    """Redis when a URL is configured, else the in-process cache."""
    return RedisCache(redis_url, namespace) if redis_url else MemoryCache()
