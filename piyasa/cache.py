"""A small key/value cache with TTLs: in-process by default, Redis when configured.

Button tokens, parked step-up requests, failure counters and rate buckets live here, so the
same code runs embedded (one process) and scaled out (Redis shared by several processes).
What another process must see at once (who may do what, step-up elevations, one-time
codes) lives in the database instead: see ``piyasa.db.principals``.
Values are JSON-serialisable; operations that must be atomic are atomic on both.

Redis going away degrades, never silences: :class:`RedisCache` then serves from an
in-process cache (new keys live there), keeps local copies of the prefixes a caller asked
for with :meth:`RedisCache.keep_local` (button tokens made before the outage still
resolve), and on recovery writes what it made locally back to Redis and deletes there what
was consumed locally, so a single-use token stays single-use. ``ping`` is never degraded:
the health probe must see the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 1.0
"""Redis connect timeout in the request path: a chat answer is due within about 2 s."""
RECHECK_S = 2.0
"""After a failed call, how long every call goes straight to the in-process cache before
Redis is tried again (so an outage costs one connect attempt per window, not per call)."""
LOCAL_ONLY_MAX = 10_000
"""Keys made or consumed locally during an outage that are remembered for the write-back."""


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
    def keep_local(self, prefix: str) -> None: ...


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

    def keep_local(self, prefix: str) -> None:
        """Everything is local already."""

    def remaining_ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left (None: no expiry); raises KeyError when absent."""
        if not self._alive(key):
            raise KeyError(key)
        expiry = self._data[key][1]
        return None if expiry is None else max(0.001, expiry - self._clock())


class RedisCache:
    """Redis-backed cache; keys are namespaced so several deployments can share a server.

    While Redis does not answer (connection refused, reset, timed out) every call is served
    by :attr:`local`, an in-process :class:`MemoryCache`, and Redis is tried again every
    :data:`RECHECK_S`. Outage semantics, per process: keys set during the outage live
    locally and are written back (``SET NX``, remaining TTL) on recovery; keys popped or
    deleted during the outage are deleted in Redis on recovery; prefixes named with
    :meth:`keep_local` are also copied locally while Redis is up, so they survive its loss.
    Another instance's keys are out of reach during an outage (it has its own fallback).
    """

    kind = "redis"

    def __init__(self, url: str, namespace: str = "piyasa:") -> None:
        import redis.asyncio as aioredis  # ~0.1 s CPU: only when Redis is configured
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self.url = url
        self.namespace = namespace
        # One immediate retry on a dropped connection (a pooled one that died with a
        # restarted server reconnects), none on a timeout, no backoff: redis-py's default
        # retries with backoff for seconds while a chat answer is due in about 2 s.
        self.client = aioredis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=2,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.local = MemoryCache()
        self.down = False
        self._errors = (RedisConnectionError, RedisTimeoutError, OSError)
        self._retry_at = 0.0
        self._kept: tuple[str, ...] = ()
        self._made: set[str] = set()  # set locally during an outage: write back
        self._gone: set[str] = set()  # consumed locally during an outage: delete in Redis
        self._sync_lock = asyncio.Lock()

    def _k(self, key: str) -> str:
        return self.namespace + key

    @staticmethod
    def _ms(ttl: float | None) -> int | None:
        return None if ttl is None else max(1, int(ttl * 1000))

    def keep_local(self, prefix: str) -> None:
        """Also copy keys under ``prefix`` into the process, so they resolve without Redis."""
        if prefix not in self._kept:
            self._kept += (prefix,)

    def _kept_key(self, key: str) -> bool:
        return key.startswith(self._kept) if self._kept else False

    # -- availability ------------------------------------------------------------------

    async def _usable(self) -> bool:
        """False while inside a recheck window after a failure. On the first call after
        the window, a down cache writes its local changes back before serving again."""
        if not self.down:
            return True
        if time.monotonic() < self._retry_at:
            return False
        async with self._sync_lock:
            if not self.down:
                return True
            try:
                await self._write_back()
            except self._errors as exc:
                self._failed(exc)
                return False
            self.down = False
            log.warning("Redis answers again: the cache is shared again")
        return True

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + RECHECK_S
        if not self.down:
            self.down = True
            log.warning(
                "Redis unreachable (%s): using the in-process cache until it answers",
                type(exc).__name__,
            )

    async def _write_back(self) -> None:
        for key in list(self._gone):
            await self.client.delete(self._k(key))
            self._gone.discard(key)
        for key in list(self._made):
            value = await self.local.get(key)
            if value is not None:
                try:
                    ttl = self.local.remaining_ttl(key)
                except KeyError:
                    ttl = None
                else:
                    await self.client.set(
                        self._k(key), json.dumps(value), px=self._ms(ttl), nx=True
                    )
            self._made.discard(key)
            if not self._kept_key(key):
                await self.local.delete(key)

    def _note(self, bucket: set[str], key: str) -> None:
        if len(bucket) >= LOCAL_ONLY_MAX:
            log.error(
                "Redis outage: more than %d keys changed locally; older ones will not be "
                "written back",
                LOCAL_ONLY_MAX,
            )
            bucket.clear()
        bucket.add(key)

    def _made_locally(self, key: str) -> None:
        self._gone.discard(key)
        self._note(self._made, key)

    def _consumed_locally(self, key: str) -> None:
        self._made.discard(key)
        self._note(self._gone, key)

    # -- operations --------------------------------------------------------------------

    async def get(self, key: str) -> Any | None:
        if await self._usable():
            try:
                raw = await self.client.get(self._k(key))
                return None if raw is None else json.loads(raw)
            except self._errors as exc:
                self._failed(exc)
        return await self.local.get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if await self._usable():
            try:
                await self.client.set(self._k(key), json.dumps(value), px=self._ms(ttl))
                if self._kept_key(key):
                    await self.local.set(key, value, ttl)
                return
            except self._errors as exc:
                self._failed(exc)
        await self.local.set(key, value, ttl)
        self._made_locally(key)

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        if await self._usable():
            try:
                added = bool(
                    await self.client.set(
                        self._k(key), json.dumps(value), px=self._ms(ttl), nx=True
                    )
                )
                if added and self._kept_key(key):
                    await self.local.set(key, value, ttl)
                return added
            except self._errors as exc:
                self._failed(exc)
        added = await self.local.add(key, value, ttl)
        if added:
            self._made_locally(key)
        return added

    async def delete(self, key: str) -> bool:
        if await self._usable():
            try:
                existed = bool(await self.client.delete(self._k(key)))
                await self.local.delete(key)
                return existed
            except self._errors as exc:
                self._failed(exc)
        self._consumed_locally(key)
        return await self.local.delete(key)

    async def pop(self, key: str) -> Any | None:
        if await self._usable():
            try:
                raw = await self.client.getdel(self._k(key))
                await self.local.delete(key)
                return None if raw is None else json.loads(raw)
            except self._errors as exc:
                self._failed(exc)
        self._consumed_locally(key)
        return await self.local.pop(key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if await self._usable():
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.incrby(self._k(key), amount)
                    if ttl is not None:
                        pipe.pexpire(self._k(key), self._ms(ttl), nx=True)
                    result = await pipe.execute()
                return int(result[0])
            except self._errors as exc:
                self._failed(exc)
        self._made_locally(key)
        return await self.local.incr(key, amount, ttl)

    async def keys(self, prefix: str) -> list[str]:
        if await self._usable():
            cut = len(self.namespace)
            try:
                return [
                    k.decode()[cut:]
                    async for k in self.client.scan_iter(match=self._k(prefix) + "*", count=500)
                ]
            except self._errors as exc:
                self._failed(exc)
        return await self.local.keys(prefix)

    async def clear(self, prefix: str = "") -> int:
        local = await self.local.clear(prefix)
        if await self._usable():
            try:
                keys = [
                    k async for k in self.client.scan_iter(match=self._k(prefix) + "*", count=500)
                ]
                return int(await self.client.delete(*keys)) if keys else 0
            except self._errors as exc:
                self._failed(exc)
        return local

    async def ping(self) -> float:
        """Round trip in ms; raises when Redis does not answer (never degraded)."""
        start = time.perf_counter()
        await self.client.ping()
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        await self.client.aclose()


def make_cache(redis_url: str = "", namespace: str = "piyasa:") -> MemoryCache | RedisCache:
    """Redis when a URL is configured, else the in-process cache."""
    return RedisCache(redis_url, namespace) if redis_url else MemoryCache()
