"""Schedule, GFS retention, missed runs, events and the health scheduler snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from piyasa.admin.notify.events import bus_of
from piyasa.backup.retention import kept_by
from piyasa.backup.schedule import BackupScheduler, normalize
from piyasa.backup.service import BackupError, BackupService
from piyasa.db.models import Setting


def test_gfs_keeps_7_daily_4_weekly_12_monthly_and_union() -> None:
    start = datetime(2026, 1, 1, 3, tzinfo=UTC)
    backups = [(f"d{i}", start + timedelta(days=i), "daily") for i in range(400)]
    backups.append(("m", start, "manual"))
    kept = kept_by(backups, {"daily": 7, "weekly": 4, "monthly": 12})
    survivors = {k for k, v in kept.items() if v}
    daily = {k for k, v in kept.items() if "daily" in v}
    weekly = {k for k, v in kept.items() if "weekly" in v}
    monthly = {k for k, v in kept.items() if "monthly" in v}
    assert daily == {f"d{i}" for i in range(393, 400)}
    assert len(weekly) == 4 and len(monthly) == 12
    assert "m" in survivors  # manual backups are never pruned
    assert survivors == daily | weekly | monthly | {"m"}
    assert len(survivors) < 7 + 4 + 12 + 1  # the newest is kept by all three rules
    assert kept["d399"] == ("daily", "weekly", "monthly")


def test_gfs_weeks_and_months_follow_the_timezone() -> None:
    # 23:30 UTC on Jan 31 is already Feb 1 in Istanbul (UTC+3)
    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    early = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    items = [("late", late, "daily"), ("early", early, "daily")]
    assert "monthly" in kept_by(items, {"monthly": 2}, "Europe/Istanbul")["early"]
    assert "monthly" not in kept_by(items, {"monthly": 2}, "UTC")["early"]


def test_setup_wizard_words_are_read() -> None:
    assert normalize("daily")["daily"] == "03:00"
    assert normalize("weekly") == {
        "weekly": "sun 03:00",
        "timezone": "UTC",
        "retention": {"daily": 7, "weekly": 4, "monthly": 12},
    }
    assert not any(normalize("off").get(k) for k in ("daily", "weekly", "monthly"))


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"daily": "25:00"}, "backup.bad_time"),
        ({"weekly": "someday 04:00"}, "backup.bad_time"),
        ({"monthly": "31 04:00"}, "backup.bad_time"),
        ({"timezone": "Mars/Olympus"}, "backup.bad_timezone"),
        ({"retention": {"daily": -1}}, "backup.bad_retention"),
        ({"retention": {"yearly": 3}}, "backup.bad_retention"),
    ],
)
async def test_bad_schedule_input_changes_nothing(live_sqlite, svc_sqlite, kwargs, key) -> None:
    live, svc = live_sqlite, svc_sqlite
    args = {"daily": "02:00", "weekly": None, "monthly": None, "timezone": "UTC", "retention": {}}
    args.update(kwargs)
    with pytest.raises(BackupError) as exc:
        await svc.set_schedule(**args)
    assert exc.value.key == key
    async with live.sessions() as session:
        assert await session.get(Setting, "backup_schedule") is None


async def test_schedule_status_next_runs_and_missed_run_at_start(live, svc) -> None:
    status = await svc.set_schedule(
        daily="03:00",
        weekly="sun 04:00",
        monthly="1 05:00",
        timezone="Europe/Istanbul",
        retention={"daily": 2, "weekly": 1, "monthly": 1},
    )
    assert status.enabled and set(status.next_runs) == {"daily", "weekly", "monthly"}
    assert status.next_runs["daily"].astimezone(UTC).hour == 0  # 03:00 Istanbul
    assert status.retention == {"daily": 2, "weekly": 1, "monthly": 1}

    # the schedule was set three days ago and nothing ran since: the process was down
    async with live.sessions() as session, session.begin():
        row = await session.get(Setting, "backup_schedule")
        row.value = {**row.value, "since": (datetime.now(UTC) - timedelta(days=3)).isoformat()}
    seen = []
    bus_of(live.extras).subscribe(seen.append)
    sched = BackupScheduler(svc)
    await sched.load()
    assert "daily" in await sched.missed()
    assert not await BackupScheduler(svc).missed()  # defaults, never stored: nothing missed
    await sched.start()
    try:
        from tests.waiting import until

        await until(lambda: sched.last_result == "ok" and not sched.tasks, "the missed run")
        kinds = {b.kind for b in await svc.list()}
        assert "daily" in kinds
        snap = sched.snapshot()
        assert snap["running"] and snap["last_result"] == "ok" and snap["next_run"]
        assert any(e.source == "backup" and e.title_key == "alerts.backup.done.title" for e in seen)
        # the weekly test restore ran on the new backup
        assert any(b.test_restored_at for b in await svc.list())
    finally:
        await sched.stop()


async def test_unreachable_s3_fails_the_run_warns_and_stale_goes_critical(
    sqlite_db_url, tmp_path
) -> None:
    backup_db_url = sqlite_db_url
    from piyasa.bench._procs import free_port
    from tests.backup.conftest import make_services

    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    live = make_services(
        backup_db_url,
        tmp_path / "data",
        PIYASA_BACKUP_S3_BUCKET="b",
        PIYASA_BACKUP_S3_URL=nobody,
        PIYASA_BACKUP_S3_ACCESS_KEY="k",
        PIYASA_BACKUP_S3_SECRET_KEY="s3-secret-value",
    )
    try:
        svc = BackupService(live)
        seen = []
        bus_of(live.extras).subscribe(seen.append)
        sched = BackupScheduler(svc)
        svc.scheduler = sched
        await sched.run("daily")
        assert sched.last_result.startswith("the backup storage did not answer")
        assert sched.snapshot()["failed_jobs"] == 1
        titles = {e.title_key: e for e in seen}
        assert titles["alerts.backup.failed.title"].severity == "warning"
        assert titles["alerts.backup.stale.title"].severity == "critical"
        assert "s3-secret-value" not in repr(seen)
        assert not list((tmp_path / "data" / "backups").rglob("*.partial"))  # nothing left
    finally:
        await live.close()
