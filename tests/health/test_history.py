"""Uptime bars and incidents come from recorded transitions only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from piyasa.admin.health import History, State, Transition
from piyasa.admin.health.history import compute_overview
from piyasa.services import Services

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TODAY = NOW.replace(hour=0)


def tr(component: str, state: State, at: datetime, previous: State | None = None) -> Transition:
    return Transition(component, state, previous, at, f"{component} {state.value}")


def test_day_bars_take_the_worst_state_and_uptime_counts_critical_time() -> None:
    first_day = TODAY - timedelta(days=2)
    inside = [
        tr("db", State.HEALTHY, first_day + timedelta(hours=6)),
        tr("db", State.CRITICAL, TODAY - timedelta(hours=1)),  # 23:00..01:00 across midnight
        tr("db", State.HEALTHY, TODAY + timedelta(hours=1)),
    ]
    ov = compute_overview([], inside, first_day, NOW, days=3)
    bars = ov.uptime["db"].days
    assert [b.day for b in bars] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert [b.state for b in bars] == ["healthy", "critical", "critical"]
    assert bars[0].seconds == {"healthy": 18 * 3600}
    observed = 18 * 3600 + 24 * 3600 + 12 * 3600
    assert ov.uptime["db"].uptime_percent == round(100 * (observed - 7200) / observed, 3)
    [incident] = ov.incidents
    assert incident.worst is State.CRITICAL and incident.started_at == TODAY - timedelta(hours=1)
    assert incident.ended_at == TODAY + timedelta(hours=1)


def test_state_before_the_window_carries_in_and_days_without_records_show_none() -> None:
    first_day = TODAY - timedelta(days=3)
    before = [tr("redis", State.WARNING, first_day - timedelta(days=10))]
    ov = compute_overview(before, [], first_day, NOW, days=4)
    assert [b.state for b in ov.uptime["redis"].days] == ["warning"] * 4
    [incident] = ov.incidents
    assert incident.ongoing and incident.worst is State.WARNING
    ov = compute_overview([], [tr("x", State.HEALTHY, TODAY)], first_day, NOW, days=4)
    assert [b.state for b in ov.uptime["x"].days] == ["none", "none", "none", "healthy"]


def test_unknown_time_is_neither_up_nor_down_and_ends_an_incident() -> None:
    first_day = TODAY
    inside = [
        tr("llm", State.CRITICAL, TODAY),
        tr("llm", State.UNKNOWN, TODAY + timedelta(hours=2)),
        tr("llm", State.HEALTHY, TODAY + timedelta(hours=4)),
    ]
    ov = compute_overview([], inside, first_day, NOW, days=1)
    # 2 h critical, 2 h unknown (ignored), 8 h healthy -> 80 % available.
    assert ov.uptime["llm"].uptime_percent == 80.0
    assert ov.incidents[0].ended_at == TODAY + timedelta(hours=2)


async def test_overview_from_the_database(services: Services) -> None:
    history = History(services.sessions, days=90)
    await history.record(
        [
            tr("database", State.HEALTHY, NOW - timedelta(days=120)),  # before the window
            tr("database", State.CRITICAL, NOW - timedelta(days=5)),
            tr("database", State.HEALTHY, NOW - timedelta(days=5) + timedelta(minutes=30)),
            tr("redis", State.UNKNOWN, NOW - timedelta(days=1)),
        ]
    )
    ov = await history.overview(now=NOW)
    db_days = ov.uptime["database"].days
    assert len(db_days) == 90 and db_days[0].state == "healthy"
    assert [b.state for b in db_days].count("critical") == 1
    assert ov.uptime["redis"].uptime_percent is None
    assert [(i.component, i.worst) for i in ov.incidents] == [("database", State.CRITICAL)]
    assert await history.last_states() == {"database": State.HEALTHY, "redis": State.UNKNOWN}
