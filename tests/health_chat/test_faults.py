"""Stop things for real and watch the chat: critical, the alert posted once, the quick
action fixing it where one can, the recovery posted. (Transitions, not how fast they come.)

The sandbox Telegram answers the fleet's sends with 429s until cleared; the fleet's LLM is
a FakeOpenAIServer that fails with 500s; Redis and PostgreSQL are servers each test owns
(helpers from tests/health/test_faults.py); the shared ones are never touched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from piyasa.admin.health import State, Thresholds
from piyasa.admin.health.server_probes import DatabaseProbe, RedisProbe
from piyasa.config import Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.runtime.llm import OpenAIProvider
from piyasa.sandbox.llm_server import FakeOpenAIServer
from piyasa.services import Services
from tests.chatops.conftest import start_telegram
from tests.chatops.harness import ADMIN_GROUP, seed_people
from tests.health.conftest import EventWaiter, states_of
from tests.health_chat.conftest import button, fleet_world, group_texts, kb, start_alerter
from tests.runtime.helpers import token_for, until
from tests.servers import OwnPostgres, OwnRedis
from tests.waiting import HANG_S

# Time runs 10x fast: rounds of 0.5 s instead of 5, and rates over the last 4 s of rounds
# instead of a minute (so a storm ended by the quick action clears in seconds). These tests
# are about down and back up, not latency classes: any answer within the probe timeout
# reads healthy, so a loaded machine's 100+ ms round trip to a restarted server cannot
# hold back the "resolved" notice (alerts resolve on healthy). Down is still critical.
FAULT = Thresholds(
    interval_s=0.5,
    probe_timeout_s=1.0,
    error_rate_window_s=4.0,
    latency_warning_ms=1000.0,
    latency_critical_ms=1000.0,
)


def count(world: Any, prefix: str) -> int:
    return sum(t.startswith(prefix) for t in group_texts(world))


async def critical_alert(world: Any, waiter: EventWaiter, component: str, title: str) -> dict:
    """The component turns critical and its alert reaches the admin group."""
    await waiter.until(component, State.CRITICAL, after=len(waiter.events))
    return await world.sb.wait_for_message(
        lambda m: m["text"].startswith(f"🔴 Critical: {title}"), chat_id=ADMIN_GROUP, after=0
    )


async def resolved(world: Any, title: str) -> dict:
    return await world.sb.wait_for_message(
        lambda m: m["text"].startswith(f"✅ Resolved: {title} is healthy again"),
        chat_id=ADMIN_GROUP,
        after=0,
    )


async def operator_confirms(world: Any, alert: dict, label: str) -> dict:
    """An operator presses ``label`` on the alert and confirms in the new message."""
    mark = await world.press("operator", ADMIN_GROUP, alert, button(alert, label))
    ask = await world.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert "Are you sure?" in ask["text"]
    mark = await world.press("operator", ADMIN_GROUP, ask, button(ask, "Yes"))
    return await world.sb.wait_for_message(chat_id=ADMIN_GROUP, edits=True, after=mark)


async def test_telegram_429_storm(services: Services) -> None:
    # A hold longer than the 429's retry_after: the gaps while the fleet waits are not
    # recoveries (see piyasa.admin.health.alerts).
    async for world in fleet_world(services, thresholds=FAULT, resolve_after_s=3.0):
        waiter = EventWaiter(world.health)
        await until(lambda w=world: len(w.sb.sent(chat_id=w.chat)) >= 1, "fleet chatting")
        for i in range(len(world.bots)):
            world.sb.inject_error(
                token=token_for(i), method="sendMessage", error_code=429, retry_after=1, count=None
            )
        alert = await critical_alert(world, waiter, "telegram", "Telegram")
        assert "429" in alert["text"] and "⏸ Pause fleet" in kb(alert)

        done = await operator_confirms(world, alert, "Pause fleet")
        assert "Fleet paused" in done["text"]
        await resolved(world, "Telegram")
        assert count(world, "🔴 Critical: Telegram") == 1
        assert count(world, "✅ Resolved: Telegram") == 1
        # Not only the alerts: the state itself held through the storm (rates over a window).
        assert states_of(waiter.events, "telegram").count(State.CRITICAL) == 1

        world.sb.clear_errors()
        sent = len(world.sb.sent(chat_id=world.chat))
        await world.fleet.control.resume()
        await until(lambda w=world, n=sent: len(w.sb.sent(chat_id=w.chat)) > n, "sends again")


async def test_llm_server_failing(services: Services) -> None:
    llm = FakeOpenAIServer(latency=(0.0, 0.01), seed=7)
    base = await llm.start()
    provider = OpenAIProvider("sk-test", base, "gpt-4o-mini", timeout=HANG_S)  # 500s, no hangs
    try:
        async for world in fleet_world(services, provider=provider, thresholds=FAULT):
            waiter = EventWaiter(world.health)
            await until(lambda w=world: w.fleet.generated >= 1, "the LLM answering")
            llm.set_failing(500)
            alert = await critical_alert(world, waiter, "llm", "LLM provider")
            assert "🔌 Reset breaker" in kb(alert)

            llm.set_failing(None)
            mark = await world.press("operator", ADMIN_GROUP, alert, button(alert, "Reset"))
            done = await world.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
            assert "Circuit breakers reset" in done["text"]
            assert world.fleet.generator.breaker.state == "closed"
            await resolved(world, "LLM provider")
            generated = world.fleet.generated
            await until(lambda w=world, n=generated: w.fleet.generated > n, "generating again")
            assert count(world, "🔴 Critical: LLM provider") == 1
            assert count(world, "✅ Resolved: LLM provider") == 1
    finally:
        await llm.stop()


async def _world_on(services: Services, probes: list[Any]) -> Any:
    from tests.health_chat.conftest import start_health

    people = await seed_people(services)
    health = await start_health(services, probes, thresholds=FAULT)
    return people, health


async def test_redis_killed(settings: Settings, own_redis: OwnRedis, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    services = Services.build(dataclasses.replace(settings, redis_url=url), engine=engine)
    try:
        people, health = await _world_on(services, [RedisProbe(), DatabaseProbe()])
        waiter = EventWaiter(health)
        async for world in start_telegram(services):
            world.user_ids = people
            alerter = await start_alerter(services, world.surface)
            try:
                own_redis.kill()
                alert = await critical_alert(world, waiter, "redis", "Redis")
                # buttons live in Redis, and fall back to the process while it is down:
                # the alert keeps its buttons, and they answer
                mark = await world.press("operator", ADMIN_GROUP, alert, button(alert, "Details"))
                shown = await world.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
                assert shown["text"].startswith("🔎 Redis"), shown["text"]
                own_redis.start()  # nothing in chat can start Redis: an operator does
                await resolved(world, "Redis")
                assert count(world, "🔴 Critical: Redis") == 1
                await until(lambda a=alerter: not a.pending(), "nothing left pending")
            finally:
                await alerter.stop()
                await health.stop()
    finally:
        await services.close()


async def test_postgres_killed(settings: Settings, own_postgres: OwnPostgres) -> None:
    engine = create_engine(own_postgres.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    try:
        people, health = await _world_on(services, [DatabaseProbe()])
        waiter = EventWaiter(health)
        async for world in start_telegram(services):
            world.user_ids = people
            alerter = await start_alerter(services, world.surface)
            try:
                own_postgres.kill()
                alert = await critical_alert(world, waiter, "database", "Database")
                assert "unreachable" in alert["text"]
                assert "🩺 Run all checks now" in kb(alert)
                own_postgres.start()
                await resolved(world, "Database")
                assert count(world, "🔴 Critical: Database") == 1
            finally:
                await alerter.stop()
                await health.stop()
    finally:
        await services.close()
