"""`/limits` reads each pair's bucket from the limiter the gate uses: memory or Redis."""

from __future__ import annotations

import pytest

from piyasa.runtime.buckets import DeliveryLimits, MemoryLimiter, RedisLimiter, SendKey
from tests.conftest import REDIS_URL, SKIP_REDIS, redis_available, skip_or_fail
from tests.runtime.helpers import namespace


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_bucket_tokens_show_what_a_burst_used_and_refill(kind: str) -> None:
    now = [1000.0]
    lim = DeliveryLimits()  # 1/s per chat, bursts of 3 (Telegram's, as the gate plans)
    if kind == "redis":
        if not redis_available():
            skip_or_fail(SKIP_REDIS)
        limiter = RedisLimiter.from_url(REDIS_URL, lim, namespace(), clock=lambda: now[0])
    else:
        limiter = MemoryLimiter(lim, clock=lambda: now[0])
    key, other = SendKey(1, -100, True), SendKey(2, -100, True)
    try:
        assert await limiter.tokens_many([key, other]) == [3.0, 3.0]
        assert await limiter.acquire_many([key, key]) == [0.0, 0.0]
        assert await limiter.tokens_many([key, other]) == [1.0, 3.0]
        now[0] += 1.5
        assert await limiter.tokens_many([key]) == [2.5]
    finally:
        await limiter.close()
