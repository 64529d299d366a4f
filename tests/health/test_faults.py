"""Stop real servers and watch health notice (critical), then recover (not critical).

Each test owns its server (a Redis or a throwaway PostgreSQL cluster on a free port);
the shared ones on 6379/5432 are never touched (`tests/servers.py`). The tests assert the transitions that
matter, never how fast they came or a latency class: after recovery a loaded machine's
round trip may read as warning, which is recovered all the same.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health.server_probes import DatabaseProbe, RedisProbe
from piyasa.admin.users import CLI, add_user, new_api_key, regenerate_api_key
from piyasa.cache import RedisCache
from piyasa.config import Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.services import Services
from tests.health.conftest import UP, EventWaiter
from tests.servers import OwnPostgres, OwnRedis

# Critical means down or no answer within the probe timeout; a slow answer is a warning at
# worst (a loaded machine's round trip is no outage).
FAST = Thresholds(interval_s=0.5, probe_timeout_s=1.0, latency_critical_ms=1000.0)


def _critical_flags(states: list[State]) -> list[bool]:
    """Down or not, each change of that once: [up, down, up] however warning came and went."""
    flags = [s is State.CRITICAL for s in states]
    return [f for i, f in enumerate(flags) if i == 0 or f != flags[i - 1]]


# --- Redis ----------------------------------------------------------------------------


async def test_redis_killed_goes_critical_and_recovers(
    settings: Settings, own_redis: OwnRedis, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    import dataclasses

    services = Services.build(dataclasses.replace(settings, redis_url=url), engine=engine)
    assert isinstance(services.cache, RedisCache)
    health = HealthService(services, probes=[RedisProbe(), DatabaseProbe()], thresholds=FAST)
    waiter = EventWaiter(health)
    await services.cache.set("k", 1)
    await health.start()
    try:
        redis = health.snapshot().get("redis")
        assert redis.state in UP, redis.summary
        assert redis.details["keys"] >= 1 and redis.details["used_memory_bytes"] > 0

        own_redis.kill()
        mark = len(waiter.events)
        event = await waiter.until("redis", State.CRITICAL, after=mark)
        assert "unreachable" in event.summary
        assert health.snapshot().get("database").state in UP  # nothing else blamed

        own_redis.start()
        mark = len(waiter.events)
        await waiter.until("redis", UP, after=mark)
    finally:
        await health.stop()
        await services.close()
    states = [t.state for t in reversed(await health.history.transitions("redis"))]
    assert _critical_flags(states)[:3] == [False, True, False], states


# --- PostgreSQL -----------------------------------------------------------------------


async def test_postgres_killed_goes_critical_readyz_503_then_recovers(
    settings: Settings, own_postgres: OwnPostgres
) -> None:
    engine = create_engine(own_postgres.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    health = HealthService(services, probes=[DatabaseProbe()], thresholds=FAST)
    services.extras["health"] = health
    waiter = EventWaiter(health)
    await health.start()
    try:
        async with TestClient(TestServer(make_web_app(services))) as client:
            db = health.snapshot().get("database")
            assert db.state in UP and db.details["type"] == "postgresql"
            assert db.details["size_bytes"] > 0
            assert (await client.get("/readyz")).status == 200
            await add_user(services, "monitor", "viewer")
            key = (await regenerate_api_key(services, CLI, "monitor"))[1]
            stranger = new_api_key()  # never issued: unknown to the database
            bearer = {"Authorization": f"Bearer {key}"}
            assert (await client.get("/api/health", headers=bearer)).status == 200

            own_postgres.kill()
            await waiter.until("database", State.CRITICAL, after=len(waiter.events))
            assert (await client.get("/readyz")).status == 503
            public = await (await client.get("/api/health")).json()
            assert public["status"] == "critical"
            # The key the database confirmed before still opens the full view, which says
            # why; a key it never confirmed cannot be checked now: 503, not 401, not 500.
            resp = await client.get("/api/health", headers=bearer)
            assert resp.status == 200, await resp.text()
            full = {c["name"]: c for c in (await resp.json())["components"]}
            assert full["database"]["state"] == "critical", full
            assert "unreachable" in full["database"]["summary"], full
            resp = await client.get("/api/health", headers={"Authorization": f"Bearer {stranger}"})
            assert resp.status == 503 and "database is unavailable" in await resp.text()

            own_postgres.start()
            await waiter.until("database", UP, after=len(waiter.events))
            assert (await client.get("/readyz")).status == 200
    finally:
        await health.stop()
        await services.close()
    # The outage could not be written while the database was down; it was kept and
    # written after recovery, in order.
    check = create_engine(own_postgres.url)
    from piyasa.admin.health import History

    try:
        states = [t.state for t in reversed(await History(make_sessionmaker(check)).transitions())]
    finally:
        await check.dispose()
    assert _critical_flags(states)[:3] == [False, True, False], states
