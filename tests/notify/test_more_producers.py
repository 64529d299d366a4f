"""The producers issue 13 still lacked: backups done / failed, setup completed, pending
and applied migrations (at `piyasa up`'s start through the bus, from `piyasa check`
straight into the store). Each reaches the notification store (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import text

from chatops import i18n
from chatops.alerts import _schema_events
from piyasa.admin.health import HealthService, State
from piyasa.admin.health.alerts import Alerter
from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.producers import (
    health_sink,
    open_health_alerts,
    record,
    schema_status,
)
from piyasa.admin.setup.wizard import apply
from piyasa.backup import events as backup_events
from piyasa.db.migrate import head_revision
from tests.health.conftest import Scripted
from tests.health_chat.conftest import FAST
from tests.notify.conftest import Sender, build, with_admin_chat
from tests.waiting import until


async def items(svc):  # type: ignore[no-untyped-def]
    await svc.tick()
    center = await notify_store.center(svc.services, None, svc.now(), limit=50)
    return {i.fingerprint: i for i in center.items}


async def test_a_failing_backup_is_one_incident_until_a_backup_works(notify) -> None:
    """The backup service's producer (piyasa/backup/events.py) reaches the store."""
    svc, _sender = notify
    services = svc.services
    assert backup_events.failed(services, "daily", "S3 said 403")
    assert backup_events.failed(services, "daily", "S3 said 403")
    got = await items(svc)
    assert list(got) == ["backup:failed"]
    failed = got["backup:failed"]
    assert (failed.severity, failed.state, failed.count) == ("warning", "open", 2)
    assert i18n.t("en", failed.title_key, **failed.params) == (
        "The daily backup failed: S3 said 403"
    )

    done = SimpleNamespace(
        id="piyasa-20261130T030000Z-daily.pbk",
        kind="daily",
        size_bytes=5 * 1_048_576,
        created_at=datetime(2026, 11, 30, 3, tzinfo=UTC),
    )
    assert backup_events.done(services, done)
    got = await items(svc)
    assert got["backup:failed"].state == "resolved"
    notice = got["backup:done"]
    assert notice.severity == "success"
    assert i18n.t("tr", notice.title_key, **notice.params) == (
        "piyasa-20261130T030000Z-daily.pbk yedeği kaydedildi ve doğrulandı (daily)"
    )


def test_without_a_notification_service_a_backup_event_goes_nowhere() -> None:
    assert backup_events.failed(SimpleNamespace(extras={}), "daily", "x") is False


async def test_completing_setup_is_a_success_notification(notify) -> None:
    svc, _sender = notify
    await apply(svc.services, {}, "boss")
    (done,) = [i for f, i in (await items(svc)).items() if f.startswith("setup:completed:")]
    assert done.severity == "success"
    assert i18n.t("en", done.title_key, **done.params) == "Setup completed by boss"


async def _stamp(services, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Set the database's Alembic revision (the tables stay as the models make them)."""
    async with services.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        )
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})


async def test_pending_migrations_from_check_and_their_end_at_start_up(notify) -> None:
    svc, _sender = notify
    assert await schema_status(svc.services.engine) is None  # empty: nowhere to store it
    await _stamp(svc.services, "0001")
    # `piyasa check` stores it for the running instance (no bus in the CLI)
    event = await schema_status(svc.services.engine)
    assert event is not None and await record(svc.services, event)
    pending = (await items(svc))["schema:migrations"]
    assert (pending.severity, pending.state) == ("warning", "open")
    body = i18n.t("en", pending.body_key, **pending.params)
    assert (
        body
        == f"The schema is at 0001; this version needs {head_revision()}. Run `piyasa migrate`."
    )
    # `piyasa up` after `piyasa migrate`: the pending incident ends, the upgrade is told
    await _stamp(svc.services, head_revision())
    svc.services.extras["schema.applied"] = ("0001", head_revision())
    await _schema_events(svc.services)
    got = await items(svc)
    assert got["schema:migrations"].state == "resolved"
    applied = got[f"schema:applied:{head_revision()}"]
    assert applied.severity == "info"
    assert "0001 → " in i18n.t("en", applied.title_key, **applied.params)


async def test_a_recovery_while_restarting_is_told_once(services, clock) -> None:
    """Redis fails, the alert goes out, the process stops; Redis recovers before the new
    process's alerter ever saw it critical: the new alerter adopts the open incident from
    the store and tells the recovery (once), instead of forgetting it."""
    with_admin_chat(services)
    redis = Scripted("redis", State.CRITICAL)
    health = HealthService(services, probes=[redis], thresholds=FAST, record_stop=False)
    await health.start()
    states: list[str] = []
    try:
        for _run in range(2):
            sender = Sender()
            svc = build(services, clock, sender)
            await svc.start(background=False)
            alerter = Alerter(health, resolve_after_s=0)
            alerter.add_sink("notify", health_sink(svc))
            alerter.adopt(await open_health_alerts(services))
            await alerter.start()
            await until(lambda a=alerter: a.notices and not a.pending(), "the notice stored")
            clock.move(60)
            await svc.tick()
            states += [i.state for _c, items, _l, _k in sender.posts for i in items]
            await alerter.stop()
            await svc.stop()
            redis.state = State.HEALTHY  # while no process runs

            async def healthy() -> bool:
                await health.run_all_now()
                return health.snapshot().components["redis"].state is State.HEALTHY

            await until(healthy, "redis healthy again")
    finally:
        await health.stop()
    assert states == ["open", "resolved"], states  # the alert, then its recovery, once
    assert await open_health_alerts(services) == {}
