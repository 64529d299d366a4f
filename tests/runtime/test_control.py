"""Run-time control: rate, scale and pause applied within seconds; crashed workers restarted."""

from __future__ import annotations

from sqlalchemy import select

from piyasa.db.models import Setting
from piyasa.db.runtime_models import WorkerEvent
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OfflineProvider
from tests.runtime.helpers import drive, gate_passes, namespace, seed, until, with_sandbox


def decided(fleet: Fleet) -> float:
    return fleet.metrics.messages.labels("decided")._value.get()


async def write_setting(services, key: str, value) -> None:
    """What another instance, or an admin surface, does: write the settings table."""
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=value))
        else:
            row.value = value
            row.version += 1


async def rate_over(fleet: Fleet, clock, seconds: float) -> float:
    """Decisions per simulated minute over ``seconds`` of simulated time."""
    before = decided(fleet)
    target = clock.now() + seconds
    await drive(clock, fleet, lambda: clock.now() >= target, 1.0, f"{seconds}s to pass")
    return (decided(fleet) - before) * 60.0 / seconds


async def test_rate_scale_and_pause_take_effect_within_seconds(services, sandbox, clock):
    await seed(services, sandbox, bots=4, chats=4)  # room for 320 msgs/min: the budget binds
    with_sandbox(services, sandbox.base_url)
    fleet = Fleet(
        services,
        receive="off",
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
        settings_refresh_s=0.2,
        planner_tick_s=0.005,  # tick at least once per simulated step: no budget overflow
    )
    await fleet.control.set_max_msgs_per_min(60)
    await fleet.start()
    # Simulated time runs ~50x faster than delivery here; without this the planner would
    # (rightly) see chats lagging or full and hold back, and the budget would not bind.
    fleet.planner.max_lag_s = None
    fleet.planner.max_pending_per_chat = 10**6
    fleet.min_outstanding = 10**6
    try:
        await rate_over(fleet, clock, 10)  # spend the initial burst
        assert 50 <= await rate_over(fleet, clock, 30) <= 70
        # the settings table (another instance, an admin surface): picked up by the refresh
        await write_setting(services, "max_msgs_per_min", 120)
        await until(lambda: fleet.settings_store.number("max_msgs_per_min") == 120, "refresh")
        await rate_over(fleet, clock, 5)
        assert 105 <= await rate_over(fleet, clock, 30) <= 135
        await fleet.control.set_scale(0.25)  # 120 x 0.25 = 30/min
        await rate_over(fleet, clock, 10)  # spend what the bucket saved at 120/min
        assert 20 <= await rate_over(fleet, clock, 30) <= 40
        # pause through the table: no decision and no send while paused
        await write_setting(services, "fleet_paused", True)
        await until(lambda: fleet.gate.paused, "pause applied")
        await fleet.gate.quiesce()  # a dispatch under way when the pause landed may still send
        sends = len(sandbox.calls("sendMessage"))
        assert await rate_over(fleet, clock, 20) == 0
        await gate_passes(fleet, 1)
        assert len(sandbox.calls("sendMessage")) == sends
        assert fleet.snapshot()["paused"] is True
        await fleet.control.resume()
        await drive(
            clock,
            fleet,
            lambda: len(sandbox.calls("sendMessage")) > sends,
            0.5,
            "sending again after resume",
        )
    finally:
        await fleet.stop()


class Crashing(OfflineProvider):
    """An in-process generator with a bug that fires on the first ``n`` calls."""

    def __init__(self, n: int) -> None:
        super().__init__(seed=1)
        self.left = n

    async def complete(self, prompt):  # type: ignore[no-untyped-def]
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("boom: generator bug")
        return await super().complete(prompt)


async def test_a_crashed_worker_is_restarted_with_backoff_and_the_reason_recorded(
    services, sandbox
):
    await seed(services, sandbox, bots=2, chats=1)
    with_sandbox(services, sandbox.base_url)
    fleet = Fleet(
        services,
        receive="off",
        workers=1,
        provider=Crashing(2),
        settings_overrides={"max_msgs_per_min": 600},
        limiter_namespace=namespace(),
        supervisor_backoff=(0.05, 1.0),
    )
    await fleet.start()
    try:
        await until(lambda: sandbox.sent(), "messages after the restarts")
        worker = fleet.supervisor.workers["generator-0"]
        assert worker.restarts == 2 and worker.backoff == 0.1  # 0.05, then doubled
        snap = fleet.snapshot()
        detail = snap["workers"]["detail"]["generator-0"]
        assert detail["restarts"] == 2 and "RuntimeError: boom" in detail["last_error"]
        assert snap["workers"]["active"] == snap["workers"]["total"]
        assert any(e["kind"] == "crashed" and "boom" in e["error"] for e in snap["recent_errors"])

        async def events():
            async with services.sessions() as session:
                return (await session.scalars(select(WorkerEvent))).all()

        rows = await until(lambda: _two(events), "worker_events rows")
    finally:
        await fleet.stop()
    assert {(r.worker, r.kind) for r in rows} == {("generator-0", "crashed")}
    assert all("RuntimeError: boom: generator bug" in r.detail for r in rows)
    assert all(r.instance == fleet.instance for r in rows)


async def _two(events):  # type: ignore[no-untyped-def]
    rows = await events()
    return rows if len(rows) >= 2 else None
