"""Instance registration, heartbeat, gone marking, the `instances` health component, and
the refusal to run against a schema a newer version migrated — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from piyasa.admin.health.model import State
from piyasa.admin.health.probes import ProbeContext
from piyasa.admin.health.thresholds import Thresholds
from piyasa.cluster import Cluster
from piyasa.cluster.health import InstancesProbe
from piyasa.cluster.instances import InstanceRegistry, list_instances
from piyasa.db import migrate
from piyasa.db.base import utcnow
from piyasa.db.cluster_models import Instance
from piyasa.db.connect import DatabaseUnavailable, prepare_schema
from piyasa.services import Services


def registry(services: Services, instance_id: str, version: str = "0.1.0") -> InstanceRegistry:
    return InstanceRegistry(
        lambda: services.sessions,
        instance_id,
        version=version,
        schema_revision=migrate.head_revision(),
        roles=lambda: ["admin-bot"] if instance_id.endswith("a") else [],
        heartbeat_s=5.0,
    )


async def test_registered_instances_are_listed_and_silent_ones_marked_gone(
    services: Services,
) -> None:
    a, b = registry(services, "h1:1:aaa"), registry(services, "h2:2:bbb")
    await a.register()
    await b.register()
    async with services.sessions() as s:
        rows = await list_instances(s)
    assert [r.id for r in rows] == ["h1:1:aaa", "h2:2:bbb"]
    assert rows[0].version == "0.1.0" and rows[0].schema_revision == migrate.head_revision()
    assert rows[0].roles == ("admin-bot",) and rows[1].roles == () and rows[0].bots == ()

    # b stops beating: 3 intervals later, a's heartbeat marks it gone
    async with services.sessions() as s:
        old = utcnow() - timedelta(seconds=16)
        await s.execute(update(Instance).where(Instance.id == b.id).values(heartbeat_at=old))
        await s.commit()
    assert await a.beat() == 1
    async with services.sessions() as s:
        live = await list_instances(s)
        everyone = await list_instances(s, include_gone=True)
    assert [r.id for r in live] == ["h1:1:aaa"]
    assert live[0].roles == ("admin-bot",)
    assert [r.gone for r in everyone] == [False, True]

    # b was only partitioned: its next beat brings it back
    await b.beat()
    async with services.sessions() as s:
        assert len(await list_instances(s)) == 2
    await b.stop()  # a clean stop marks it gone at once
    async with services.sessions() as s:
        assert [r.id for r in await list_instances(s)] == ["h1:1:aaa"]


async def test_health_lists_instances_roles_and_versions(services: Services) -> None:
    cluster = Cluster(services, migrate.head_revision())
    await cluster.start()
    other = registry(services, "h9:9:zza", version="0.2.0")  # holds admin-bot, newer
    await other.register()
    try:
        probe = InstancesProbe(cluster)
        ctx = ProbeContext(services, Thresholds(), None, None)
        reading = await probe.check(ctx)
        listed = list(reading.details["instances"].values())
        assert [i["this_instance"] for i in listed] == [True, False]
        assert [i["version"] for i in listed] == ["0.1.0", "0.2.0"]
        assert [i["roles"] for i in listed] == ["standby", "admin-bot"]
        assert reading.details["admin_role"] == "h9:9:zza"
        assert "2 instances" in reading.summary and "admin role on h9:9" in reading.summary
        assert "versions differ: 0.1.0, 0.2.0" in reading.summary
        assert reading.state is State.WARNING
        assert "instances" in reading.private and "instances" not in reading.public()
    finally:
        await cluster.stop()


async def test_a_schema_from_a_newer_version_is_refused(
    engine: AsyncEngine, services: Services
) -> None:
    async with engine.begin() as conn:  # as a newer version's `piyasa migrate` leaves it
        await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        await conn.execute(text("INSERT INTO alembic_version VALUES ('0999')"))
    with pytest.raises(DatabaseUnavailable, match="newer than this version of Piyasa knows"):
        await prepare_schema(engine, services.settings)
