from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import REDIS_URL, SKIP_REDIS, redis_available, skip_or_fail
from tests.runtime.helpers import FleetClock
from tests.waiting import PatientSandbox


@pytest.fixture(params=["memory", "redis"])
def limiter_url(request: pytest.FixtureRequest) -> str:
    """'' for in-memory buckets, the test Redis URL for Lua buckets."""
    if request.param == "memory":
        return ""
    if not redis_available():
        skip_or_fail(SKIP_REDIS)
    return REDIS_URL


@pytest.fixture
def clock() -> FleetClock:
    """The test's timeline, shared by the sandbox and the fleet (see FleetClock)."""
    return FleetClock()


@pytest.fixture
async def sandbox(clock: FleetClock) -> AsyncIterator[PatientSandbox]:
    sb = PatientSandbox(clock=clock)
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()
