"""The cache behaves the same in memory and on Redis."""

from __future__ import annotations

import asyncio

from piyasa.cache import MemoryCache
from tests.waiting import until


async def test_set_get_delete(cache) -> None:  # type: ignore[no-untyped-def]
    await cache.set("a", {"x": 1})
    assert await cache.get("a") == {"x": 1}
    assert await cache.delete("a") is True
    assert await cache.get("a") is None
    assert await cache.delete("a") is False


async def test_add_only_once_and_pop_is_single_use(cache) -> None:  # type: ignore[no-untyped-def]
    assert await cache.add("code", "u1", ttl=60) is True
    assert await cache.add("code", "u2", ttl=60) is False
    results = await asyncio.gather(*(cache.pop("code") for _ in range(5)))
    assert sorted(map(str, results)) == ["None"] * 4 + ["u1"]


async def test_incr_and_prefix_listing(cache) -> None:  # type: ignore[no-untyped-def]
    assert await cache.incr("n", ttl=60) == 1
    assert await cache.incr("n", 2, ttl=60) == 3
    await cache.set("p:1", 1)
    await cache.set("p:2", 2)
    assert sorted(await cache.keys("p:")) == ["p:1", "p:2"]
    assert await cache.clear("p:") == 2
    assert await cache.keys("p:") == []


async def test_ttl_expires(cache) -> None:  # type: ignore[no-untyped-def]
    if isinstance(cache, MemoryCache):
        now = [0.0]
        cache = MemoryCache(clock=lambda: now[0])
        await cache.set("t", 1, ttl=5)
        now[0] = 4.9
        assert await cache.get("t") == 1
        now[0] = 5.0
        assert await cache.get("t") is None
        return
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cache.set("t", 1, ttl=0.2)
    value = await cache.get("t")
    if loop.time() - started < 0.2:  # read back within its TTL (a stalled machine may not)
        assert value == 1

    async def expired() -> bool:
        return await cache.get("t") is None

    await until(expired, "the key to expire after its 0.2 s TTL")
    assert await cache.ping() >= 0
