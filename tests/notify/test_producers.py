"""The producers that existed before the bus: the health alerter (and a restart in the
middle of its outage), the fleet's breakers, the user service's security events (both
databases)."""

from __future__ import annotations

from piyasa.admin.health import HealthService, State
from piyasa.admin.health.alerts import Alerter
from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.producers import health_sink
from piyasa.admin.users import Actor, add_user, mfa_reset, set_locked, set_role
from tests.health.conftest import Scripted
from tests.health_chat.conftest import FAST
from tests.notify.conftest import Sender, build, with_admin_chat
from tests.waiting import until


async def fingerprints(svc) -> list[str]:  # type: ignore[no-untyped-def]
    await svc.tick()
    center = await notify_store.center(svc.services, None, svc.now(), limit=50)
    return sorted(i.fingerprint for i in center.items)


async def test_security_events_become_notifications(notify) -> None:
    svc, _sender = notify
    admin = Actor("boss")
    await add_user(svc.services, "root2", "admin", actor="cli")
    await add_user(svc.services, "eve", "viewer", telegram_id=555002)
    await set_role(svc.services, admin, "eve", "operator")  # not admin: no event
    await set_locked(svc.services, admin, "eve", True)
    await mfa_reset(svc.services, admin, "eve")
    await set_role(svc.services, admin, "root2", "admin")  # already admin: no new event
    assert await fingerprints(svc) == [
        "security:lockout:eve",
        "security:mfa_reset:eve",
        "security:new_admin:root2",
    ]


async def test_fleet_breaker_opening_is_a_warning_and_closing_resolves_it(notify) -> None:
    from piyasa.runtime.fleet import Fleet

    svc, _sender = notify
    fleet = Fleet(svc.services, receive="off")
    breaker = fleet.bot_breakers.get(7)
    for _ in range(breaker.failure_threshold):
        breaker.failure("Unauthorized")
    assert await fingerprints(svc) == ["fleet:breaker:bot:7"]
    center = await notify_store.center(svc.services, None, svc.now())
    assert center.items[0].labels["bot"] == "7" and center.items[0].severity == "warning"
    breaker.trip(0)
    breaker.allow()
    breaker.success()
    await svc.tick()
    center = await notify_store.center(svc.services, None, svc.now())
    assert [i.state for i in center.items] == ["resolved"]


async def test_health_alerter_is_a_producer_and_a_restart_mid_outage_alerts_once(
    services, clock
) -> None:
    with_admin_chat(services)
    dep = Scripted("database", State.CRITICAL)
    health = HealthService(services, probes=[dep], thresholds=FAST, record_stop=False)
    await health.start()
    posts: list = []
    try:
        for _run in range(2):  # the same outage, before and after a restart
            sender = Sender()
            svc = build(services, clock, sender)
            await svc.start(background=False)
            alerter = Alerter(health, resolve_after_s=0)
            alerter.add_sink("notify", health_sink(svc))
            await alerter.start()  # critical at start: the alerter fires again
            await until(lambda a=alerter: a.notices and not a.pending(), "the notice stored")
            await svc.tick()
            posts += sender.posts
            await alerter.stop()
            await svc.stop()
            clock.move(60)
    finally:
        await health.stop()
    assert [[i.fingerprint for i in items] for _c, items, _l, _k in posts] == [["health:database"]]
