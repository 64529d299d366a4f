"""A chat world with a health monitor: sandbox Telegram, the admin bot, users at every role,
a HealthService on scriptable probes (fast rounds) and the alerter posting to the admin
group. SQLite only: these tests are about chat behaviour; the database matrix is covered
by tests/chatops and tests/health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chatops.alerts import ChatAlerts
from chatops.commands.health import LiveViews
from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health.alerts import Alerter
from piyasa.config import Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.services import Services
from tests.chatops.conftest import slack_server, start_telegram  # noqa: F401  (fixture)
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, TelegramWorld, seed_people
from tests.health.conftest import Scripted
from tests.waiting import HANG_S

FAST = Thresholds(interval_s=0.2, probe_timeout_s=1.0)


@pytest.fixture
async def services(settings: Settings, tmp_path: Path) -> AsyncIterator[Services]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'health_chat.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    svc = Services.build(settings, engine=engine)
    yield svc
    await svc.close()


class HealthWorld(TelegramWorld):
    health: HealthService
    alerter: Alerter
    probes: dict[str, Scripted]
    live: LiveViews


async def start_health(
    services: Services, probes: list[Any], *, thresholds: Thresholds = FAST
) -> HealthService:
    health = HealthService(services, probes=probes, thresholds=thresholds, record_stop=False)
    services.extras["health"] = health
    await health.start()
    return health


async def start_alerter(
    services: Services, telegram: Any, slack: Any = None, resolve_after_s: float = 0.5
) -> Alerter:
    alerter = Alerter(services.extras["health"], retry_s=0.1, resolve_after_s=resolve_after_s)
    surfaces = SimpleNamespace(telegram=telegram, slack=slack)
    for name, sink in ChatAlerts(services, surfaces).sinks().items():
        alerter.add_sink(name, sink)
    services.extras["health.alerts"] = alerter
    await alerter.start()
    return alerter


@pytest.fixture
async def hw(services: Services) -> AsyncIterator[Any]:
    """Telegram world + health on two scripted components + alerts to the admin group."""
    people = await seed_people(services)
    probes = {"database": Scripted("database"), "redis": Scripted("redis")}
    health = await start_health(services, list(probes.values()))
    # A live view that outlasts the test (one test sets its own short duration).
    live = services.extras["health.live"] = LiveViews(interval_s=0.05, duration_s=HANG_S)
    async for world in start_telegram(services):
        world.user_ids = people
        alerter = await start_alerter(services, world.surface)
        world.health, world.alerter, world.probes, world.live = health, alerter, probes, live  # type: ignore[attr-defined]
        try:
            yield world
        finally:
            await live.stop_all()
            await alerter.stop()
            await health.stop()


class FakeControl:
    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet

    async def pause(self, actor: str = "operator") -> None:
        self.fleet.paused_by.append(actor)

    async def resume(self, actor: str = "operator") -> None:
        self.fleet.paused_by.clear()

    async def restart_workers(self) -> int:
        return 3

    def reset_breaker(self, bot_id: int | None = None) -> int:
        return 1


class FakeFleet:
    """Stands in for the fleet where only the control surface matters (real fleet:
    test_quick_actions)."""

    started = True

    def __init__(self) -> None:
        self.paused_by: list[str] = []
        self.control = FakeControl(self)

    def snapshot(self) -> dict[str, Any]:
        return {"running": True, "paused": bool(self.paused_by)}


async def fleet_world(
    services: Services,
    *,
    provider: Any = None,
    probes: list[Any] | None = None,
    thresholds: Thresholds = FAST,
    resolve_after_s: float = 0.5,
) -> AsyncIterator[Any]:
    """Admin bot + a 2-bot fleet in one group, health on the fleet's real probes, alerts."""
    from piyasa.admin.health.fleet_probes import RuntimeProbe
    from piyasa.admin.health.llm_probe import LLMProbe
    from piyasa.admin.health.telegram_probe import TelegramProbe
    from piyasa.runtime.fleet import Fleet
    from tests.runtime.helpers import namespace, seed

    people = await seed_people(services)
    async for world in start_telegram(services):
        world.user_ids = people
        bots, chats = await seed(services, world.sb, bots=2, chats=1)
        fleet = Fleet(
            services,
            receive="off",
            settings_overrides={"max_msgs_per_min": 6000},
            limiter_namespace=namespace(),
            provider=provider,
        )
        services.extras["fleet"] = fleet
        await fleet.start()
        health = await start_health(
            services,
            probes or [RuntimeProbe(), TelegramProbe(), LLMProbe()],
            thresholds=thresholds,
        )
        health.set_fleet(fleet)
        alerter = await start_alerter(services, world.surface, resolve_after_s=resolve_after_s)
        world.fleet, world.health, world.alerter = fleet, health, alerter  # type: ignore[attr-defined]
        world.bots, world.chat = bots, chats[0].telegram_id  # type: ignore[attr-defined]
        try:
            yield world
        finally:
            await alerter.stop()
            await health.stop()
            await fleet.stop()


@pytest.fixture
async def fw(services: Services) -> AsyncIterator[Any]:
    async for world in fleet_world(services):
        yield world


def group_texts(world: Any) -> list[str]:
    return [m.get("text") or "" for m in world.sb.sent(chat_id=ADMIN_GROUP)]


def kb(message: dict) -> dict[str, str]:
    """Button label -> callback_data."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


def button(message: dict, starts: str) -> str:
    for label, data in kb(message).items():
        if label.startswith(starts) or starts in label:
            return data
    raise AssertionError(f"no button {starts!r} in {list(kb(message))}")


__all__ = ["ADMIN_GROUP", "PEOPLE", "State", "button", "group_texts", "kb"]
