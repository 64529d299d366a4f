"""Scheduler jobs by election on PostgreSQL: two instances, the job runs on exactly one
(the holder of its role), the other takes it over when the holder stops; a backup schedule
saved on the standby reaches the holder's running scheduler (through LISTEN/NOTIFY)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from piyasa.backup.schedule import BackupScheduler, save_schedule
from piyasa.backup.service import backup_service
from piyasa.cluster import Cluster
from piyasa.cluster.jobs import BACKUPS_ROLE, by_role, held_here
from piyasa.config import load_settings
from piyasa.db import migrate
from piyasa.db.base import Base
from piyasa.services import Services
from tests.conftest import (
    SKIP_POSTGRES,
    _drop_pg_schema,
    _make_pg_schema,
    _postgres_up,
    postgres_schema_url,
    skip_or_fail,
)
from tests.waiting import until

FAST = {"ttl_s": 1.2, "renew_s": 0.3, "stop_margin_s": 0.4}


@pytest.fixture
async def two(tmp_path: Any) -> AsyncIterator[list[tuple[Services, Cluster]]]:
    """Two instances (services + cluster with a fast elector) on one PostgreSQL schema."""
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    schema = "t_" + uuid.uuid4().hex[:12]
    await _make_pg_schema(schema)
    url = postgres_schema_url(schema)
    out = []
    for i in range(2):
        env = {"PIYASA_DATA_DIR": str(tmp_path / f"d{i}"), "PIYASA_DATABASE_URL": url}
        services = Services.build(load_settings(env))
        if i == 0:
            async with services.engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
        cluster = Cluster(services, migrate.head_revision())
        for k, v in FAST.items():
            setattr(cluster.elector, k, v)
        await cluster.start()
        out.append((services, cluster))
    try:
        yield out
    finally:
        for services, cluster in out:
            await cluster.stop()
            await services.close()
        await _drop_pg_schema(schema)


async def test_a_job_runs_on_one_instance_and_moves_when_its_holder_stops(
    two: list[tuple[Services, Cluster]],
) -> None:
    running: list[int] = []
    for i, (services, cluster) in enumerate(two):

        async def start(i: int = i) -> None:
            running.append(i)

        async def stop(i: int = i) -> None:
            running.remove(i)

        await by_role(services, "rollups", start, stop)
        await cluster.elect()
    assert running == [0]  # the first to ask holds it; the other waits
    assert held_here(two[0][0], "rollups") and not held_here(two[1][0], "rollups")
    await two[0][1].elector.stop()  # a clean stop releases the lease
    assert running == []
    await until(lambda: running == [1], "the other instance to run the job")


async def test_a_backup_schedule_saved_on_the_standby_reaches_the_holder(
    two: list[tuple[Services, Cluster]],
) -> None:
    scheds = []
    for services, cluster in two:
        sched = BackupScheduler(backup_service(services))
        scheds.append(sched)
        await by_role(services, BACKUPS_ROLE, sched.start, sched.stop)
        await cluster.elect()
    holder, standby = scheds
    assert holder.scheduler is not None and standby.scheduler is None
    assert backup_service(two[1][0]).scheduler is None  # the standby runs no schedule
    await save_schedule(
        backup_service(two[1][0]),
        daily="03:30",
        weekly=None,
        monthly=None,
        timezone="Europe/Istanbul",
        retention={},
    )
    await until(
        lambda: "daily" in holder.next_runs() and holder.timezone == "Europe/Istanbul",
        "the holder to schedule the daily backup",
    )
    assert standby.scheduler is None
