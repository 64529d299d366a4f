"""Redis goes away and comes back: the cache keeps answering from the process, keeps the
prefixes it was asked to keep, and on recovery writes back what it made and deletes what
was consumed, so a single-use token stays single-use.

The Redis server is the test's own (frozen with SIGSTOP, so its data outlives the outage);
the shared one is never touched.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from piyasa.cache import RedisCache
from tests.servers import OwnRedis
from tests.waiting import until


@pytest.fixture
def frozen(own_redis: OwnRedis) -> Iterator[OwnRedis]:
    """``own_redis``; ``freeze()``/``thaw()`` stop and continue the server process."""
    pid = own_redis.proc.pid  # type: ignore[union-attr]
    own_redis.freeze = lambda: os.kill(pid, signal.SIGSTOP)  # type: ignore[attr-defined]
    own_redis.thaw = lambda: os.kill(pid, signal.SIGCONT)  # type: ignore[attr-defined]
    try:
        yield own_redis
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_redis_outage_keeps_tokens_and_single_use(frozen: OwnRedis) -> None:
    url = f"redis://127.0.0.1:{frozen.port}/0"
    ns = f"t:{uuid.uuid4().hex[:8]}:"
    cache = RedisCache(url, namespace=ns)
    other = RedisCache(url, namespace=ns)  # another process's view of the same Redis
    cache.keep_local("btn:")
    try:
        await cache.set("btn:old", {"a": 1}, ttl=600)
        await cache.set("btn:once", {"a": 2}, ttl=600)
        await cache.set("plain", 1, ttl=600)

        frozen.freeze()  # type: ignore[attr-defined]
        try:
            assert await cache.get("btn:old") == {"a": 1}  # kept locally: still there
            assert cache.down
            assert await cache.get("plain") is None  # not kept: out of reach meanwhile
            assert await cache.pop("btn:once") == {"a": 2}
            assert await cache.pop("btn:once") is None
            await cache.set("btn:new", {"a": 3}, ttl=600)
            assert await cache.get("btn:new") == {"a": 3}
            with pytest.raises((RedisTimeoutError, RedisConnectionError)):
                await cache.ping()  # never degraded: the health probe sees the truth
        finally:
            frozen.thaw()  # type: ignore[attr-defined]

        async def back() -> bool:
            return await cache.get("plain") == 1 and not cache.down

        await until(back, "the cache to use Redis again")
        assert await other.get("btn:new") == {"a": 3}  # written back, with its TTL
        assert await other.client.pttl(ns + "btn:new") > 0
        assert await other.get("btn:once") is None  # consumed during the outage: gone
        assert await cache.pop("btn:once") is None
        assert await other.get("btn:old") == {"a": 1}
    finally:
        await cache.close()
        await other.close()
