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


def _blips(component: str, start: datetime, n: int, length_s: float) -> list[Transition]:
    out = []
    for i in range(n):
        at = start + timedelta(minutes=5 * i)
        out.append(tr(component, State.CRITICAL, at))
        out.append(tr(component, State.HEALTHY, at + timedelta(seconds=length_s)))
    return out


def test_cpu_blips_never_push_a_real_outage_off_the_incident_list() -> None:
    """Issue 12: ten 5-second host CPU blips after a 2-minute database outage. The outage
    stays listed, the blips are only counted, even when there are more blips than the list
    holds."""
    outage = [
        tr("database", State.CRITICAL, TODAY + timedelta(hours=1)),
        tr("database", State.HEALTHY, TODAY + timedelta(hours=1, minutes=2)),
    ]
    for n in (10, 30):
        blips = _blips("host", TODAY + timedelta(hours=2), n, 5)
        inside = sorted(outage + blips, key=lambda t: t.at)
        ov = compute_overview([], inside, TODAY, NOW, days=1)
        assert [(i.component, i.started_at) for i in ov.incidents] == [
            ("database", TODAY + timedelta(hours=1))
        ]
        assert ov.blips == {"host": n}
        assert ov.uptime["host"].days[0].seconds["critical"] == 5 * n  # still on the bars


def test_a_problem_becomes_an_incident_once_it_has_held_a_minute() -> None:
    inside = [tr("host", State.CRITICAL, NOW - timedelta(seconds=30))]
    ov = compute_overview([], inside, TODAY, NOW, days=1)
    assert ov.incidents == [] and ov.blips == {}  # not yet: it may be a blip
    later = NOW + timedelta(seconds=31)
    ov = compute_overview([], inside, TODAY, later, days=1)
    assert [i.ongoing for i in ov.incidents] == [True]


def test_the_status_page_counts_blips_without_listing_them() -> None:
    from chatops.web.status_page import render_status_page
    from piyasa.admin.health import Reading, Snapshot

    inside = _blips("host", TODAY + timedelta(hours=2), 10, 5)
    ov = compute_overview([], inside, TODAY, NOW, days=1)
    snap = Snapshot(State.HEALTHY, {"host": Reading("host", State.HEALTHY, "ok")}, NOW)
    html = render_status_page(snap, ov, "en", 1, NOW)
    assert '<ul class="incidents">' not in html
    assert "Problems shorter than a minute, not listed:" in html and " 10<" in html
