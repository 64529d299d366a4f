"""Restore refusals and what a restore does beyond the swap: an older backup is migrated to
the current schema, a newer one is refused, a second restore waits its turn, and the
health "scheduler" component shows the backup schedule."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from sqlalchemy import text

from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health.fleet_probes import SchedulerProbe
from piyasa.backup.schedule import BackupScheduler
from piyasa.backup.service import BackupError, BackupService
from piyasa.db.engine import create_engine
from piyasa.db.migrate import downgrade, head_revision
from piyasa.db.models import Setting
from tests.backup.conftest import add_rows, count, make_services


async def _revision(services) -> str:
    async with services.engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()


async def test_older_backup_is_migrated_after_restore(backup_db_url, tmp_path) -> None:
    engine = create_engine(backup_db_url)
    await downgrade(engine, "0014")
    await engine.dispose()
    services = make_services(backup_db_url, tmp_path / "data")
    try:
        await add_rows(services, "old", 5)
        svc = BackupService(services)
        old = await svc.create()
        assert old.schema_revision == "0014"
        from piyasa.db.migrate import upgrade

        await upgrade(services.engine)
        await add_rows(services, "new", 3)
        await svc.restore(old.id, actor="test")
        assert await _revision(services) == head_revision()
        assert await count(services, "settings") == 5
    finally:
        await services.close()


async def test_newer_schema_refused_nothing_changed(svc_sqlite: BackupService) -> None:
    svc = svc_sqlite
    info = await svc.create()
    meta = await asyncio.to_thread(svc.storage.meta, info.id)
    meta["schema_revision"] = "9999"
    await asyncio.to_thread(svc.storage.set_meta, info.id, meta)
    try:
        await svc.restore(info.id, actor="test")
        raise AssertionError("a backup from a newer schema was restored")
    except BackupError as exc:
        assert exc.key == "backup.newer_schema" and exc.params["revision"] == "9999"
    assert [b.kind for b in await svc.list()] == ["manual"]  # not even a safety backup


async def test_second_restore_while_one_runs_is_busy(live_sqlite, svc_sqlite) -> None:
    live, svc = live_sqlite, svc_sqlite
    info = await svc.create()
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(fraction: float, step: str) -> None:
        started.set()
        await release.wait()

    first = asyncio.ensure_future(svc.restore(info.id, actor="a", progress=slow))
    await started.wait()
    other = BackupService(live)  # another chat or the CLI: its own service object
    for attempt in (other.restore(info.id, actor="b"), other.create(), svc.test_restore(info.id)):
        try:
            await attempt
            raise AssertionError("ran while a restore was running")
        except BackupError as exc:
            assert exc.key == "backup.busy"
    release.set()
    assert (await first).kind == "safety"
    assert (await other.create()).kind == "manual"  # free again


async def test_health_scheduler_component_shows_the_backup_schedule(
    live_sqlite, svc_sqlite
) -> None:
    live, svc = live_sqlite, svc_sqlite
    sched = BackupScheduler(svc)
    await sched.start()
    health = HealthService(
        live,
        probes=[SchedulerProbe()],
        scheduler=sched.snapshot,
        thresholds=Thresholds(interval_s=0.1, probe_timeout_s=0.3),
        record_stop=False,
    )
    try:
        reading = (await health.run_all_now()).get("scheduler")
        assert reading.state is State.HEALTHY
        assert reading.details["next_run"] and reading.details["last_result"] is None
        await sched.run("daily")
        reading = (await health.run_all_now()).get("scheduler")
        assert reading.details["last_result"] == "ok" and reading.details["last_run"]
    finally:
        await health.stop()
        await sched.stop()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs for the backup directory (needs root's mount, as in CI)."""
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_full_disk_during_backup_leaves_nothing(sqlite_db_url, tmp_path, tiny_disk) -> None:
    services = make_services(sqlite_db_url, tmp_path / "data", PIYASA_BACKUP_DIR=str(tiny_disk))
    try:
        async with services.sessions() as session, session.begin():
            for i in range(6):  # ~3 MB that does not compress: more than the disk holds
                session.add(Setting(key=f"big.{i}", value=os.urandom(1 << 19).hex()))
        svc = BackupService(services)
        with pytest.raises(BackupError) as exc:
            await svc.create()
        assert exc.value.key == "backup.disk_full"
        assert [p.name for p in tiny_disk.iterdir() if p.name != ".lock"] == []
        assert await svc.list() == []
        assert await count(services, "settings") == 6  # the live database is untouched
    finally:
        await services.close()
