"""Rate-based readings are taken over a window of rounds, not one round.

A 429 storm the fleet waits out in ``retry_after`` pauses makes some rounds see no attempt
at all; read one round at a time, Telegram flipped healthy/critical every 5 s and so did
its recorded history. Time is a fake clock: one ``step`` is one 5 s refresh round.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health.telegram_probe import RateWindow, TelegramProbe
from piyasa.db.health_models import HealthTransition
from piyasa.services import Services
from tests.health.conftest import EventWaiter, FakeClock, states_of

ROUND_S = 5.0
T = Thresholds(interval_s=ROUND_S, probe_timeout_s=1.0)


class Gate:
    """A fleet whose delivery gate's totals the test grows round by round."""

    def __init__(self) -> None:
        self.count_429 = 0
        self.sent = 0

    def snapshot(self) -> dict[str, Any]:
        return {"running": True, "gate": {"count_429": self.count_429, "sent": self.sent}}


async def _telegram_rows(services: Services) -> list[tuple[str, str | None]]:
    async with services.sessions() as s:
        rows = (
            await s.scalars(
                select(HealthTransition)
                .where(HealthTransition.component == "telegram")
                .order_by(HealthTransition.id)
            )
        ).all()
    return [(r.state, r.previous_state) for r in rows]


def _world(services: Services) -> tuple[HealthService, Gate, FakeClock]:
    gate, clock = Gate(), FakeClock()
    health = HealthService(
        services, probes=[TelegramProbe()], fleet=gate, thresholds=T, record_stop=False, clock=clock
    )
    return health, gate, clock


async def _step(health: HealthService, clock: FakeClock, gate: Gate, n429: int, sent: int) -> State:
    clock.advance(ROUND_S)
    gate.count_429 += n429
    gate.sent += sent
    return (await health.run_all_now()).get("telegram").state


async def test_a_429_storm_is_one_incident_not_a_flicker(services: Services) -> None:
    health, gate, clock = _world(services)
    waiter = EventWaiter(health)
    for _ in range(4):  # normal traffic
        assert await _step(health, clock, gate, 0, 40) is State.HEALTHY

    # The storm: a few 429s, then rounds in which every send waits out retry_after and no
    # attempt is made (each of those read healthy when a round was judged on its own).
    storm = [(3, 0), (0, 0), (0, 0), (2, 0), (0, 0), (0, 1), (2, 0), (0, 0), (0, 0), (1, 0)]
    states = [await _step(health, clock, gate, n, s) for n, s in storm]
    assert states == [State.CRITICAL] * len(storm)  # critical from the first storm round
    assert "429" in health.snapshot().get("telegram").summary

    # The storm is over and the backlog drains: the 429s in the window keep it critical
    # (no dip to warning on the way down) until the window is clean, then healthy for good.
    after = [await _step(health, clock, gate, 0, 40) for _ in range(int(60 / ROUND_S) + 3)]
    back = after.index(State.HEALTHY)
    assert back >= 2  # not on the first quiet rounds
    assert after == [State.CRITICAL] * back + [State.HEALTHY] * (len(after) - back)
    await health.stop()

    assert await _telegram_rows(services) == [
        ("healthy", None),
        ("critical", "healthy"),
        ("healthy", "critical"),
    ]
    assert states_of(waiter.events, "telegram") == [State.HEALTHY, State.CRITICAL, State.HEALTHY]
    assert health.transition_counts[("telegram", "critical")] == 1


async def test_a_paused_fleet_recovers_once_the_window_is_clean(services: Services) -> None:
    """Pausing (the quick action) stops the attempts; no attempts are no new errors, so the
    component turns healthy as soon as the storm's rounds have aged out."""
    health, gate, clock = _world(services)
    await _step(health, clock, gate, 0, 0)
    assert await _step(health, clock, gate, 4, 0) is State.CRITICAL
    rounds = 0
    while await _step(health, clock, gate, 0, 0) is State.CRITICAL:
        rounds += 1
        assert rounds < 100
    assert rounds * ROUND_S == T.error_rate_window_s  # exactly the window
    await health.stop()
    assert [s for s, _ in await _telegram_rows(services)] == ["healthy", "critical", "healthy"]


async def test_a_single_error_among_few_sends_stays_healthy(services: Services) -> None:
    health, gate, clock = _world(services)
    await _step(health, clock, gate, 0, 0)  # the first round only takes the baseline
    for n429, sent in [(1, 1), (0, 2), (0, 1), (0, 3), (0, 0)]:
        assert await _step(health, clock, gate, n429, sent) is State.HEALTHY
    reading = health.snapshot().get("telegram")
    assert reading.details["recent_429"] == 1 and reading.details["recent_attempts"] == 8
    # Sustained failures are another matter, even with few attempts.
    assert await _step(health, clock, gate, 1, 0) is State.CRITICAL
    await health.stop()


async def test_the_window_and_the_sample_size_are_settings(services: Services) -> None:
    services.settings.extra.update(
        PIYASA_HEALTH_ERROR_RATE_WINDOW_S="10", PIYASA_HEALTH_ERROR_RATE_MIN_SAMPLES="100"
    )
    try:
        clock = FakeClock()
        gate = Gate()
        health = HealthService(
            services, probes=[TelegramProbe()], fleet=gate, record_stop=False, clock=clock
        )
        assert health.thresholds.error_rate_window_s == 10.0
        await _step(health, clock, gate, 0, 0)
        assert await _step(health, clock, gate, 5, 45) is State.HEALTHY  # 5/100: not > 5 %
        assert await _step(health, clock, gate, 1, 0) is State.CRITICAL  # 6/100 in 10 s
        clock.advance(10)  # both rounds left the 10 s window
        assert await _step(health, clock, gate, 0, 0) is State.HEALTHY
        await health.stop()
    finally:
        for key in ("PIYASA_HEALTH_ERROR_RATE_WINDOW_S", "PIYASA_HEALTH_ERROR_RATE_MIN_SAMPLES"):
            services.settings.extra.pop(key, None)


def test_a_restarted_fleet_counts_from_zero() -> None:
    window = RateWindow()
    assert window.observe(0.0, 100, 1000, T) == (0, 0, State.HEALTHY)  # baseline
    assert window.observe(5.0, 100, 1020, T) == (0, 20, State.HEALTHY)
    assert window.observe(10.0, 1, 5, T) == (1, 25, State.WARNING)  # a new fleet's counters
    assert window.observe(75.0, 1, 5, T) == (0, 0, State.HEALTHY)  # all of it aged out
