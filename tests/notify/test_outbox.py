"""The delivery outbox: a restart neither repeats nor forgets, failures are retried with
back-off and stay visible, a failing destination warns the others, quiet hours hold what
is not critical (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from piyasa.admin.notify import NotifyError, emit, routing
from piyasa.admin.notify import destinations as notify_channels
from piyasa.admin.notify import store as notify_store
from piyasa.admin.users import add_user
from piyasa.db.notify_models import NotifyChannel, NotifyDelivery
from tests.notify.conftest import ADMIN_CHAT, FakeChannel, Sender, build, critical, warning


async def test_a_restart_sends_no_second_alert_and_forgets_nothing(services, clock) -> None:
    from tests.notify.conftest import with_admin_chat

    with_admin_chat(services)
    first = Sender()
    svc = build(services, clock, first)
    await svc.start(background=False)
    emit(services.extras, critical("database"))
    emit(services.extras, critical("redis", source="cache"))  # a second group
    first.fail = ConnectionError("telegram down")
    await svc.tick()
    assert first.posts == []
    first.fail = None
    clock.move(10)
    await svc.deliver(limit=1)  # one goes before the "crash"; the other is still owed
    assert len(first.posts) == 1
    await svc.stop()

    second = Sender()  # a new process on the same database
    svc2 = build(services, clock, second)
    await svc2.start(background=False)
    emit(services.extras, critical("database"))  # still down after the restart
    emit(services.extras, critical("redis", source="cache"))
    for _ in range(3):
        await svc2.tick()
        clock.move(3600)
    told = [i.fingerprint for _c, items, _l, _k in first.posts + second.posts for i in items]
    assert sorted(told) == ["cache:redis", "health:database"]  # each exactly once
    assert len(second.posts) == 1
    await svc2.stop()


async def test_failures_are_recorded_retried_and_visible(notify, clock) -> None:
    svc, sender = notify
    sender.fail = ConnectionError("telegram is unreachable")
    emit(svc.services.extras, critical("database"))
    await svc.tick()
    (row,) = await notify_store.undelivered(svc.services)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "telegram is unreachable" in (row.last_error or "")
    center = await notify_store.center(svc.services, None, clock())
    assert center.pending == 1 and svc.pending == 1
    clock.move(5)
    await svc.tick()  # back-off (10 s) not over: not tried again
    assert (await notify_store.undelivered(svc.services))[0].attempts == 1
    clock.move(5)
    await svc.tick()
    assert (await notify_store.undelivered(svc.services))[0].attempts == 2
    sender.fail = None
    clock.move(20)
    await svc.tick()
    assert await notify_store.undelivered(svc.services) == [] and len(sender.posts) == 1


async def test_a_failing_channel_warns_on_the_other_channels(notify, clock) -> None:
    svc, sender = notify
    async with svc.services.sessions() as session, session.begin():
        from piyasa.admin.notify.outbox import seal_config

        session.add(
            NotifyChannel(
                name="hook",
                kind="webhook",
                config_encrypted=seal_config(svc.services, {"broken": "1"}),
            )
        )
    emit(svc.services.extras, critical("database"))
    await svc.tick()
    for _ in range(3):
        clock.move(700)
        await svc.tick()
    clock.move(31)
    await svc.tick()
    warned = [i for _c, items, _l, _k in sender.posts for i in items if i.source == "notify"]
    assert warned and warned[0].params["destination"] == "channel:hook"
    async with svc.services.sessions() as session:
        to_hook = await session.scalars(
            select(NotifyDelivery).where(NotifyDelivery.destination == "channel:hook")
        )
        assert all(warned[0].id not in (d.notification_ids or []) for d in to_hook)


async def test_no_destination_is_visible_as_pending(services, clock) -> None:
    svc = build(services, clock)  # no admin chat, no Slack, no channel, no route
    await svc.start(background=False)
    emit(services.extras, critical("database"))
    await svc.tick()
    (row,) = await notify_store.undelivered(services)
    assert row.destination == "nowhere" and "no destination" in (row.last_error or "")
    await svc.stop()


async def test_quiet_hours_hold_a_warning_and_pass_a_critical(notify, clock) -> None:
    svc, sender = notify
    user = await add_user(svc.services, "night_owl", "operator", telegram_id=555001)
    await routing.set_pref(svc.services, user.id, "on")
    await routing.set_pref(svc.services, user.id, "severities", "critical,warning")
    await routing.set_pref(svc.services, user.id, "quiet", "11:00-13:00")  # now is 12:00 UTC
    emit(svc.services.extras, warning("disk"))
    emit(svc.services.extras, critical("database"))
    await svc.tick()
    clock.move(31)
    await svc.tick()
    dm = [items for chat, items, _l, _k in sender.posts if chat == "555001"]
    assert [[i.severity for i in x] for x in dm] == [["critical"]]
    clock.move(3600)  # 13:00:31: quiet hours are over
    await svc.tick()
    dm = [items for chat, items, _l, _k in sender.posts if chat == "555001"]
    assert [[i.severity for i in x] for x in dm] == [["critical"], ["warning"]]
    assert str(ADMIN_CHAT) in {c for c, *_ in sender.posts}


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("quiet", "22-07", "bad_quiet_hours"),
        ("quiet", "25:00-07:00", "bad_quiet_hours"),
        ("severities", "loud", "bad_severity"),
        ("tz", "Mars/Base", "bad_timezone"),
        ("channels", "pigeon", "bad_surface"),
    ],
)
async def test_bad_preferences_are_refused_and_change_nothing(
    notify, setting: str, value: str, code: str
) -> None:
    svc, _sender = notify
    user = await add_user(svc.services, "picky", "viewer")
    before = await routing.get_prefs(svc.services, user.id)
    with pytest.raises(NotifyError) as err:
        await routing.set_pref(svc.services, user.id, setting, value)
    assert err.value.code == code
    assert await routing.get_prefs(svc.services, user.id) == before


async def test_routes_send_matching_events_to_a_channel(notify, clock) -> None:
    svc, sender = notify
    await notify_channels.add_channel(
        svc.services, "ops-hook", "webhook", {"url": "http://x"}, FakeChannel
    )
    await routing.add_route(
        svc.services, "bots", "source=fleet bot=~7|8", "channel:ops-hook", "admin"
    )
    emit(svc.services.extras, critical("bot-7", source="fleet", bot="7"))
    emit(svc.services.extras, critical("database"))
    await svc.tick()
    told = [i.fingerprint for _c, items, _l, _k in sender.posts for i in items]
    assert told == ["health:database"]  # the routed event left the admin chat alone
    # unrouted events go to the defaults: the admin chats and every enabled channel
    got = sorted(m.fingerprint for m in FakeChannel.sent["ops-hook"])
    assert got == ["fleet:bot-7", "health:database"]


async def test_unknown_channel_and_bad_config_are_refused(notify) -> None:
    svc, _sender = notify
    with pytest.raises(NotifyError) as err:
        await routing.add_route(svc.services, "r", "source=fleet", "channel:nope", "admin")
    assert err.value.code == "unknown_channel"
    with pytest.raises(NotifyError) as err:
        await notify_channels.add_channel(
            svc.services, "h", "webhook", {"url": "ftp://x"}, FakeChannel
        )
    assert err.value.code == "bad_channel" and "http(s)" in str(err.value)
    assert await routing.list_routes(svc.services) == []
    assert await notify_channels.channels(svc.services) == []
