"""The refresher: readers never wait, hung probes time out, each change is recorded once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from piyasa.admin.health import HealthService, Reading, State, Thresholds
from piyasa.admin.health.fleet_probes import RuntimeProbe
from piyasa.admin.health.llm_probe import LLMProbe
from piyasa.admin.health.telegram_probe import TelegramProbe
from piyasa.db.health_models import HealthTransition
from piyasa.services import Services
from tests.health.conftest import UP, EventWaiter, FakeClock, Scripted, hanging, states_of
from tests.waiting import finishes

FAST = Thresholds(interval_s=0.1, probe_timeout_s=0.3)


async def _rows(services: Services) -> list[tuple[str, str, str | None]]:
    async with services.sessions() as s:
        rows = (await s.scalars(select(HealthTransition).order_by(HealthTransition.id))).all()
    return [(r.component, r.state, r.previous_state) for r in rows]


async def test_default_components_before_the_fleet_exists(services: Services) -> None:
    health = HealthService(services, thresholds=FAST, record_stop=False)
    snap = health.snapshot()
    assert snap.overall is State.UNKNOWN and snap.taken_at is None  # before the first round
    await health.run_all_now()
    snap = health.snapshot()
    assert set(snap.components) == {
        "runtime",
        "database",
        "redis",
        "telegram",
        "llm",
        "scheduler",
        "host",
    }
    assert snap.get("database").state in UP  # answering (a loaded machine's latency: warning)
    assert snap.get("database").details["type"] in {"sqlite", "postgresql"}
    # Redis not configured: unknown, never critical; fleet parts: "not running".
    assert snap.get("redis").state is State.UNKNOWN
    assert "not configured" in snap.get("redis").summary
    assert snap.get("runtime").summary == "not running"
    assert snap.overall is not State.HEALTHY  # unknown parts are not hidden behind green
    await health.stop()


async def test_a_hanging_probe_times_out_and_readers_never_wait(services: Services) -> None:
    started = asyncio.Event()
    ok = Scripted("ok")
    health = HealthService(
        services, probes=[ok, hanging("slow", started)], thresholds=FAST, record_stop=False
    )
    await health.run_all_now()
    first = health.snapshot()
    assert first.get("slow").state is State.CRITICAL
    assert "no answer within 0.3 s" in first.get("slow").summary
    assert first.get("ok").state is State.HEALTHY
    assert first.overall is State.CRITICAL

    started.clear()
    round_task = asyncio.create_task(health.run_all_now())
    await finishes(started.wait(), "a round to reach the hanging probe")
    reading = health.snapshot()  # a plain call: it cannot wait for the round in flight
    assert reading is first  # the last finished round, served at once
    # The probe never answers: only its timeout ends the round.
    await finishes(round_task, "the round to end at the hanging probe's timeout")
    assert health.snapshot().sequence == first.sequence + 1
    await health.stop()


async def test_a_probe_that_ignores_cancellation_is_not_started_twice(services: Services) -> None:
    release = asyncio.Event()
    calls = 0

    async def stubborn(ctx):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # refuses to stop
        return Reading("stubborn", State.HEALTHY)

    from piyasa.admin.health.probes import FunctionProbe

    health = HealthService(
        services, probes=[FunctionProbe("stubborn", stubborn)], thresholds=FAST, record_stop=False
    )
    await health.run_all_now()
    # The probe is still running until `release` is set below: waiting for it would hang.
    snap = await finishes(health.run_all_now(), "a round that does not wait for the stubborn probe")
    assert snap.get("stubborn").state is State.CRITICAL
    assert "still running" in snap.get("stubborn").summary
    assert calls == 1
    release.set()
    await health.stop()


async def test_each_state_change_is_recorded_and_emitted_once(services: Services) -> None:
    probe = Scripted("dep")
    health = HealthService(services, probes=[probe], thresholds=FAST, record_stop=False)
    waiter = EventWaiter(health)
    for state in [
        State.HEALTHY,
        State.HEALTHY,
        State.CRITICAL,
        State.CRITICAL,
        State.CRITICAL,
        State.WARNING,
        State.HEALTHY,
        State.HEALTHY,
    ]:
        probe.state = state
        await health.run_all_now()
    await health.stop()
    assert await _rows(services) == [
        ("dep", "healthy", None),
        ("dep", "critical", "healthy"),
        ("dep", "warning", "critical"),
        ("dep", "healthy", "warning"),
    ]
    assert states_of(waiter.events, "dep") == [
        State.HEALTHY,
        State.CRITICAL,
        State.WARNING,
        State.HEALTHY,
    ]
    event = waiter.events[1]
    assert event.previous is State.HEALTHY and event.overall is State.CRITICAL

    # A restart continues from the recorded state: no duplicate row for the same state.
    again = HealthService(services, probes=[probe], thresholds=FAST)
    await again.start()
    await again.stop()  # records "monitor stopped" as unknown
    assert (await _rows(services))[-1] == ("dep", "unknown", "healthy")
    assert len(await _rows(services)) == 5


async def test_background_refresh_runs_every_interval(services: Services) -> None:
    probe = Scripted("dep")
    health = HealthService(services, probes=[probe], thresholds=FAST, record_stop=False)
    waiter = EventWaiter(health)
    await health.start()
    probe.state = State.CRITICAL
    await waiter.until("dep", State.CRITICAL)  # picked up without run_all_now
    await health.stop()
    assert probe.calls >= 2


async def test_slow_or_failing_subscribers_do_not_block_the_refresh(services: Services) -> None:
    probe = Scripted("dep")
    health = HealthService(services, probes=[probe], thresholds=FAST, record_stop=False)
    gate = asyncio.Event()

    async def slow(event):  # type: ignore[no-untyped-def]
        await gate.wait()

    def broken(event):  # type: ignore[no-untyped-def]
        raise RuntimeError("subscriber bug")

    health.subscribe(slow)
    health.subscribe(broken)
    seen = []
    unsubscribe = health.subscribe(seen.append)
    # `slow` waits for `gate`, set only at the end: a round waiting for it would hang.
    await finishes(health.run_all_now(), "a round despite a stuck subscriber")
    assert [e.current for e in seen] == [State.HEALTHY]
    unsubscribe()
    probe.state = State.WARNING
    await health.run_all_now()
    assert len(seen) == 1
    gate.set()
    await health.stop()


async def test_changes_wait_in_memory_while_the_history_table_cannot_be_written(
    services: Services,
) -> None:
    probe = Scripted("dep")
    health = HealthService(services, probes=[probe], thresholds=FAST, record_stop=False)
    real = health.history.record

    async def failing(batch):  # type: ignore[no-untyped-def]
        raise ConnectionError("database gone")

    health.history.record = failing  # type: ignore[method-assign]
    await health.run_all_now()
    probe.state = State.CRITICAL
    await health.run_all_now()
    assert health.pending_records == 2 and health.snapshot().get("dep").state is State.CRITICAL
    health.history.record = real  # type: ignore[method-assign]
    await health.run_all_now()
    assert health.pending_records == 0
    assert [r[1] for r in await _rows(services)] == ["healthy", "critical"]
    await health.stop()


def _fleet_snapshot() -> dict:
    """Shaped like piyasa.runtime.fleet.Fleet.snapshot()."""
    now = datetime.now(UTC)
    closed = {"state": "closed", "failures": 0, "opened_count": 0, "last_error": None}
    return {
        "running": True,
        "paused": False,
        "workers": {
            "active": 3,
            "total": 4,
            "detail": {"planner": {"restarts": 2}, "sender-1": {"restarts": 0}},
        },
        "last_message_by_bot": {1: {"at": (now - timedelta(seconds=30)).isoformat()}},
        "outbox_depth": 7,
        "gate": {"count_429": 0, "sent": 0},
        "breakers": {
            "bots": {
                "1": dict(closed),
                "2": {
                    "state": "open",
                    "failures": 5,
                    "last_error": "TelegramServerError: Bad Gateway",
                },
            },
            "llm": {"state": "open", "failures": 5, "last_error": "RateLimitError: slow down"},
        },
        "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "recent_errors": [],
    }


async def test_fleet_snapshot_drives_runtime_telegram_and_llm(services: Services) -> None:
    fleet = _fleet_snapshot()
    clock = FakeClock()
    health = HealthService(
        services,
        probes=[RuntimeProbe(), TelegramProbe(), LLMProbe()],
        fleet=lambda: fleet,
        thresholds=FAST,
        record_stop=False,
        clock=clock,
    )
    snap = await health.run_all_now()
    runtime = snap.get("runtime")
    assert runtime.state is State.WARNING  # one worker down
    assert runtime.details["restarts"] == 2 and runtime.details["outbox_depth"] == 7
    assert 25 <= runtime.details["last_message_age_s"] <= 60
    telegram = snap.get("telegram")
    assert telegram.state is State.CRITICAL  # bot 2's breaker is open
    assert telegram.details["bots"]["1"]["state"] == "healthy"
    assert telegram.details["bots"]["2"]["last_error_class"] == "TelegramServerError"
    assert snap.get("llm").state is State.CRITICAL
    assert "RateLimitError" in snap.get("llm").summary

    # 429s: 10 of 100 sends in the window is above 5 % -> critical.
    fleet["workers"]["active"] = 4
    fleet["breakers"]["bots"]["2"] = {"state": "closed"}
    fleet["breakers"]["llm"] = {"state": "closed"}
    fleet["gate"] = {"count_429": 10, "sent": 90}
    clock.advance(5)
    snap = await health.run_all_now()
    assert snap.get("telegram").state is State.CRITICAL
    assert snap.get("telegram").details["recent_429"] == 10
    assert "10 × 429 of 100 sends in 60 s" in snap.get("telegram").summary
    fleet["gate"] = {"count_429": 10, "sent": 190}  # none since, but still in the window
    clock.advance(5)
    assert (await health.run_all_now()).get("telegram").state is State.CRITICAL
    clock.advance(FAST.error_rate_window_s)  # the 429s leave the window
    snap = await health.run_all_now()
    assert [snap.get(c).state for c in ("runtime", "telegram", "llm")] == [State.HEALTHY] * 3

    fleet["paused"] = True
    assert (await health.run_all_now()).get("runtime").state is State.WARNING
    # A fleet object with .snapshot() works too; a crashing provider reads as not running.
    health.set_fleet(type("F", (), {"snapshot": staticmethod(lambda: 1 / 0)})())
    snap = await health.run_all_now()
    assert (
        snap.get("runtime").state is State.UNKNOWN and snap.get("runtime").summary == "not running"
    )
    await health.stop()


async def test_not_configured_components_do_not_make_the_overall_unknown(
    services: Services,
) -> None:
    """Embedded install: Redis absent and no scheduler read unknown on their own lines,
    but the overall is the worst of what is configured."""
    from piyasa.admin.health.fleet_probes import SchedulerProbe
    from piyasa.admin.health.server_probes import RedisProbe

    db = Scripted("database")
    health = HealthService(
        services, probes=[db, RedisProbe(), SchedulerProbe()], thresholds=FAST, record_stop=False
    )
    snap = await health.run_all_now()
    assert snap.get("redis").state is State.UNKNOWN and not snap.get("redis").configured
    assert snap.get("scheduler").state is State.UNKNOWN and not snap.get("scheduler").configured
    assert snap.overall is State.HEALTHY
    assert snap.full()["components"][1]["configured"] is False

    db.state = State.WARNING
    assert (await health.run_all_now()).overall is State.WARNING


async def test_a_configured_but_unknown_component_still_shows_in_the_overall(
    services: Services,
) -> None:
    """A scheduler that was given but cannot report is a blind spot, not "not configured"."""
    from piyasa.admin.health.fleet_probes import SchedulerProbe

    def broken() -> dict:
        raise RuntimeError("scheduler snapshot failed")

    health = HealthService(
        services,
        probes=[Scripted("database"), SchedulerProbe()],
        scheduler=broken,
        thresholds=FAST,
        record_stop=False,
    )
    snap = await health.run_all_now()
    assert snap.get("scheduler").configured and snap.get("scheduler").state is State.UNKNOWN
    assert snap.overall is State.UNKNOWN
    await health.stop()
