from __future__ import annotations

import time

import pytest

from piyasa.runtime.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from piyasa.runtime.buckets import DeliveryLimits, MemoryLimiter, RedisLimiter, SendKey
from tests.runtime.helpers import namespace


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_half_opens_and_closes():
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=3, reset_timeout=5.0, clock=clock)
    for _ in range(3):
        assert b.allow()
        b.failure("boom")
    assert b.state == OPEN and not b.allow()
    clock.t += 5.0
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.failure("still down")  # the probe failed: open again, longer
    assert b.state == OPEN and b.wait() == pytest.approx(10.0)
    clock.t += 10.0
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.allow()
    b.trip(3.0)
    assert b.state == OPEN and b.wait() == pytest.approx(3.0)
    b.reset()
    assert b.state == CLOSED


async def test_limiter_follows_telegram_limits(limiter_url):
    limits = DeliveryLimits(margin_s=0.0)
    if limiter_url:
        lim = RedisLimiter.from_url(limiter_url, limits, namespace())
    else:
        lim = MemoryLimiter(limits)
    try:
        key = SendKey(1, -100, True)
        # burst of 3, then the bucket is empty (~1 s to the next token)
        waits = await lim.acquire_many([key, key, key, key])
        assert waits[:3] == [0.0, 0.0, 0.0] and 0.9 < waits[3] <= 1.0
        # another chat of the same bot is independent
        assert (await lim.acquire_many([SendKey(1, -200, True)]))[0] == 0.0
        # an active retry_after block wins: 7 s less the real time since it was set (Redis
        # counts on its own clock, so that time is measured, not assumed to be short)
        started = time.monotonic()
        await lim.block(2, -100, 7.0)
        wait = (await lim.acquire_many([SendKey(2, -100, True)]))[0]
        assert 7.0 - (time.monotonic() - started) - 0.05 < wait <= 7.0
    finally:
        if limiter_url:
            await lim.clear()
        await lim.close()


async def test_memory_limiter_group_and_bot_windows():
    clock = Clock()
    lim = MemoryLimiter(DeliveryLimits(margin_s=0.0), clock=clock)
    key = SendKey(1, -100, True)
    sent = 0
    for _ in range(600):
        if (await lim.acquire_many([key]))[0] == 0.0:
            sent += 1
        clock.t += 0.1
    assert sent == 20  # 20 per minute in a group
    lim2 = MemoryLimiter(DeliveryLimits(margin_s=0.0), clock=clock)
    waits = await lim2.acquire_many([SendKey(5, 1000 + i, False) for i in range(40)])
    assert waits.count(0.0) == 30  # 30 per second per bot
