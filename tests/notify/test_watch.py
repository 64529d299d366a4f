"""Threshold producers over the health readings: memory > 80 %, CPU > 90 % sustained
5 minutes, disk < 10 % free, the fleet's 429 rate > 5 % over the window and a 429 storm —
one event per transition, each becoming one incident that resolves (both databases)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chatops import i18n
from piyasa.admin.health.model import Reading, State
from piyasa.admin.notify import emit
from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.watch import ThresholdWatch
from tests.notify.conftest import START, Clock


def host(cpu: float = 10, mem: float = 40, disk: float = 50) -> dict[str, Reading]:
    details = {"cpu_percent": cpu, "memory_percent": mem, "disk_free_percent": disk}
    return {"host": Reading("host", State.HEALTHY, "", details)}


def telegram(n429: int, attempts: int) -> dict[str, Reading]:
    details = {"recent_429": n429, "recent_attempts": attempts, "window_s": 600}
    return {"telegram": Reading("telegram", State.HEALTHY, "", details)}


def keys(events: list[Any]) -> list[tuple[str, bool]]:
    return [(f"{e.source}:{e.key}", e.resolved) for e in events]


def test_each_threshold_fires_once_and_recovers() -> None:
    w, at = ThresholdWatch(), START
    assert w.observe(host(mem=80, disk=10), at) == []  # at the threshold: not over it
    assert keys(w.observe(host(mem=81), at)) == [("host:memory", False)]
    assert w.observe(host(mem=95), at) == []  # still firing: no second event
    assert keys(w.observe(host(mem=50, disk=9.5), at)) == [
        ("host:memory", True),
        ("host:disk", False),
    ]
    assert keys(w.observe(host(disk=30), at)) == [("host:disk", True)]


def test_cpu_must_stay_high_for_five_minutes() -> None:
    w, at = ThresholdWatch(), START
    assert w.observe(host(cpu=95), at) == []
    assert w.observe(host(cpu=99), at + timedelta(seconds=290)) == []
    assert w.observe(host(cpu=50), at + timedelta(seconds=295)) == []  # a dip restarts it
    assert w.observe(host(cpu=95), at + timedelta(seconds=300)) == []
    fired = w.observe(host(cpu=96), at + timedelta(seconds=600))
    assert keys(fired) == [("host:cpu", False)] and fired[0].params["n"] == "96"
    assert keys(w.observe(host(cpu=20), at + timedelta(seconds=610))) == [("host:cpu", True)]


def test_429_rate_needs_a_sample_and_a_storm_is_critical() -> None:
    w, at = ThresholdWatch(), START
    assert w.observe(telegram(3, 10), at) == []  # 30 % of ten sends: no sample yet
    assert w.observe(telegram(5, 100), at) == []  # 5 %: not over it
    fired = w.observe(telegram(6, 100), at)
    assert keys(fired) == [("fleet:429_rate", False)] and fired[0].severity == "warning"
    storm = w.observe(telegram(150, 1000), at)
    assert keys(storm) == [("fleet:429_storm", False)] and storm[0].severity == "critical"
    assert keys(w.observe(telegram(0, 1000), at)) == [
        ("fleet:429_rate", True),
        ("fleet:429_storm", True),
    ]


def test_titles_read_in_both_languages() -> None:
    w = ThresholdWatch()
    events = w.observe({**host(mem=90, disk=5), **telegram(200, 400)}, START)
    for lang in ("en", "tr"):
        for e in events:
            text = i18n.t(lang, e.title_key, **e.params)
            assert "{" not in text and not text.startswith("alerts."), text


async def test_a_threshold_event_is_one_incident_until_it_recovers(notify, clock: Clock) -> None:
    svc, sender = notify
    w = ThresholdWatch()
    for event in w.observe(host(mem=91), clock()):
        emit(svc.services.extras, event)
    for _ in range(3):
        clock.move(60)
        await svc.tick()
    center = await notify_store.center(svc.services, None, clock())
    assert [(i.fingerprint, i.severity, i.state) for i in center.items] == [
        ("host:memory", "warning", "open")
    ]
    assert sender.ids() == [[center.items[0].id]]  # told once, after group_wait
    for event in w.observe(host(mem=40), clock()):
        emit(svc.services.extras, event)
    clock.move(60)
    await svc.tick()
    center = await notify_store.center(svc.services, None, clock(), state="all")
    assert [(i.fingerprint, i.state) for i in center.items] == [("host:memory", "resolved")]
