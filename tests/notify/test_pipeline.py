"""Grouping, dedupe, repeat, flapping, silences and inhibition, on both databases, on a
clock moved by hand: what an operator receives, and what they do not."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from piyasa.admin.notify import NotifyError, emit
from piyasa.admin.notify import store as notify_store
from piyasa.db.notify_models import Notification, NotifySilence
from tests.notify.conftest import ADMIN_CHAT, critical, resolved, warning

CHAT = str(ADMIN_CHAT)


async def publish(svc, *events) -> None:  # type: ignore[no-untyped-def]
    for e in events:
        assert emit(svc.services.extras, e)
    await svc.tick()


async def test_critical_bypasses_group_wait_and_repeats_are_one_incident(notify, clock) -> None:
    svc, sender = notify
    await publish(svc, *[critical()] * 5)
    assert len(sender.posts) == 1  # at once, and once
    (chat, items, lang, _kind) = sender.posts[0]
    assert (chat, lang, items[0].severity) == (CHAT, "en", "critical")
    center = await notify_store.center(svc.services, None, clock())
    assert [(i.count, i.state) for i in center.items] == [(5, "open")]


async def test_an_event_stamped_ahead_of_this_clock_is_told_now_not_when_the_clock_gets_there(
    notify, clock
) -> None:
    """A producer's clock ahead of the service's (another instance, the wall clock of the
    health service): the event counts as seen now, so a critical goes out at once and a
    warning after group_wait from now, not after the skew (it hid the CI failure of
    2026-12-01, when the wall clock passed the tests' fixed clock)."""
    import dataclasses
    from datetime import timedelta

    svc, sender = notify
    ahead = clock() + timedelta(hours=6)
    await publish(svc, dataclasses.replace(critical(), at=ahead))
    assert [[i.fingerprint for i in items] for _c, items, _l, _k in sender.posts] == [
        ["health:database"]
    ]
    await publish(svc, dataclasses.replace(warning("disk", source="system"), at=ahead))
    clock.move(30)
    await svc.tick()
    assert [i.fingerprint for i in sender.posts[-1][1]] == ["system:disk"]
    center = await notify_store.center(svc.services, None, clock())
    assert all(i.first_seen <= clock() for i in center.items)


async def test_warnings_wait_for_group_wait_and_go_as_one_message(notify, clock) -> None:
    svc, sender = notify
    await publish(svc, warning("redis"), warning("disk"))
    clock.move(29)
    await publish(svc, warning("memory"))
    assert sender.posts == []  # group_wait (30 s) not over
    clock.move(1)
    await svc.tick()
    assert [sorted(len(x) for x in sender.ids())] == [[3]]  # one grouped message
    clock.move(10)
    await publish(svc, warning("cpu"))  # the group spoke 10 s ago: wait for group_interval
    clock.move(280)
    await svc.tick()
    assert len(sender.posts) == 1
    clock.move(10)
    await svc.tick()
    assert len(sender.posts) == 2 and len(sender.posts[1][1]) == 1


async def test_repeat_interval_and_ack_stops_repeats(notify, clock) -> None:
    svc, sender = notify
    await publish(svc, critical("database"), critical("redis"))
    assert len(sender.posts) == 1
    clock.move(4 * 3600)
    await svc.tick()
    assert len(sender.posts) == 2  # still open after repeat_interval: told again
    first = sender.posts[0][1][0].id
    await notify_store.ack(svc.services, first, "user_operator", clock())
    clock.move(4 * 3600)
    await svc.tick()
    assert [sorted(x) for x in sender.ids()][2:] == [[first + 1]]  # only the unacked one


async def test_a_flapping_check_is_one_incident(notify, clock) -> None:
    svc, sender = notify
    db = critical("database")
    await publish(svc, db)
    for _ in range(5):  # down, up, down... each recovery shorter than resolve_wait
        clock.move(5)
        await publish(svc, resolved(db))
        clock.move(5)
        await publish(svc, db)
    assert len(sender.posts) == 1
    clock.move(5)
    await publish(svc, resolved(db))
    clock.move(30)
    await svc.tick()
    assert len(sender.posts) == 2 and sender.posts[1][1][0].state == "resolved"
    async with svc.services.sessions() as session:
        assert await session.scalar(select(func.count(Notification.id))) == 1


async def test_a_blip_shorter_than_group_wait_tells_nobody(notify, clock) -> None:
    svc, sender = notify
    w = warning("disk")
    await publish(svc, w)
    clock.move(10)
    await publish(svc, resolved(w))
    clock.move(60)
    await svc.tick()
    assert sender.posts == []


async def test_silence_mutes_a_matching_event_until_it_expires(notify, clock) -> None:
    svc, sender = notify
    await notify_store.add_silence(svc.services, "source=health key=redis", "1h", "admin", clock())
    await publish(svc, critical("redis"))
    assert sender.posts == []
    center = await notify_store.center(svc.services, None, clock())
    assert [i.state for i in center.items] == ["silenced"]
    clock.move(3601)
    await publish(svc, critical("redis"))
    assert len(sender.posts) == 1 and sender.posts[0][1][0].state == "open"


@pytest.mark.parametrize(
    ("matchers", "duration", "code"),
    [
        ("", "1h", "empty_matcher"),
        ("source=health", "", "no_expiry"),
        ("nonsense", "1h", "bad_matcher"),
        ("source=health", "forever", "bad_duration"),
    ],
)
async def test_bad_silences_are_refused_and_change_nothing(
    notify, clock, matchers: str, duration: str, code: str
) -> None:
    svc, _sender = notify
    with pytest.raises(NotifyError) as err:
        await notify_store.add_silence(svc.services, matchers, duration, "admin", clock())
    assert err.value.code == code
    async with svc.services.sessions() as session:
        assert await session.scalar(select(func.count(NotifySilence.id))) == 0


async def test_database_down_inhibits_what_it_causes(notify, clock) -> None:
    svc, sender = notify
    await publish(svc, critical("database"))
    caused = [critical(f"bot-{i}", source="fleet", depends="database") for i in range(20)]
    await publish(svc, *caused)
    clock.move(600)
    await svc.tick()
    assert len(sender.posts) == 1 and sender.posts[0][1][0].fingerprint == "health:database"
    center = await notify_store.center(svc.services, None, clock(), state="silenced", limit=50)
    assert len(center.items) == 20


async def test_maintenance_window_mutes_everything_matching_while_it_runs(notify, clock) -> None:
    svc, sender = notify
    start = clock.move(0)
    from datetime import timedelta

    await notify_store.add_silence(
        svc.services,
        "*",
        "1h",
        "admin",
        clock(),
        kind="maintenance",
        starts_at=start + timedelta(minutes=10),
    )
    clock.move(11 * 60)
    await publish(svc, critical("runtime"))
    assert sender.posts == []
    clock.move(3600)
    await publish(svc, critical("runtime"))
    assert len(sender.posts) == 1


async def test_a_database_outage_is_told_once_through_the_real_producers(notify, clock) -> None:
    """The events the product makes during a database outage — health notices of the
    components that need it, a worker crash and a breaker on database errors — are muted
    by the outage; a crash for another reason is still told."""
    import dataclasses
    from datetime import UTC, datetime

    from piyasa.admin.health.alerts import AlertNotice
    from piyasa.admin.health.model import State
    from piyasa.admin.notify.producers import breaker_event, fleet_event, health_event

    svc, sender = notify
    now = datetime.now(UTC)

    def notice(component: str) -> AlertNotice:
        return AlertNotice("firing", component, State.CRITICAL, "down", now, now)

    await publish(svc, health_event(notice("database")))
    caused = [
        health_event(notice("scheduler")),
        health_event(notice("runtime")),
        fleet_event("bot-3", "crashed", "OperationalError: connection refused at outbox.py:88"),
        breaker_event("bot-4", "open", "InterfaceError: connection is closed"),
    ]
    await publish(svc, *[e for e in caused if e is not None])
    clock.move(600)
    await svc.tick()
    told = [item.fingerprint for _chat, items, _lang, _kind in sender.posts for item in items]
    assert told == ["health:database"]
    other = fleet_event("bot-5", "crashed", "TelegramForbiddenError: bot was kicked")
    assert other is not None
    await publish(svc, other)
    clock.move(600)
    await svc.tick()
    told = [item.fingerprint for _chat, items, _lang, _kind in sender.posts for item in items]
    assert told == ["health:database", "fleet:crash:bot-5"]
    # The database comes back while the scheduler is still down: the scheduler is told
    # now (inhibition ends with its source); what recovered meanwhile is not.
    runtime_ok = dataclasses.replace(notice("runtime"), kind="resolved")
    db_ok = dataclasses.replace(notice("database"), kind="resolved")
    await publish(svc, health_event(runtime_ok), health_event(db_ok))
    clock.move(600)
    await svc.tick()
    told = {item.fingerprint for _chat, items, _lang, _kind in sender.posts for item in items}
    assert "health:scheduler" in told and "health:runtime" not in told
    assert "fleet:crash:bot-3" not in told  # a crash during the outage: history, muted
