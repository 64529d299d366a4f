"""Changes reach every instance: two instances (two service containers, two fleets) on
one PostgreSQL; a pause, a setting or a breaker reset made on one applies on the other
through LISTEN/NOTIFY — with the fleets' own periodic settings refresh turned off (an hour),
so only the notification can have carried it. A listener whose connection dies resyncs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from piyasa.cluster import Cluster
from piyasa.cluster.changes import ChangeBus
from piyasa.config import load_settings
from piyasa.db import migrate
from piyasa.db.base import Base
from piyasa.runtime.fleet import Fleet
from piyasa.services import Services
from tests.conftest import (
    SKIP_POSTGRES,
    _drop_pg_schema,
    _make_pg_schema,
    _postgres_up,
    postgres_schema_url,
    skip_or_fail,
)
from tests.runtime.helpers import namespace
from tests.waiting import until


async def _instances(tmp_path: Any, url: str, n: int) -> list[Services]:
    out = []
    for i in range(n):
        settings = load_settings(
            {"PIYASA_DATA_DIR": str(tmp_path / f"d{i}"), "PIYASA_DATABASE_URL": url}
        )
        out.append(Services.build(settings))
    async with out[0].engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return out


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    schema = "t_" + uuid.uuid4().hex[:12]
    await _make_pg_schema(schema)
    try:
        yield postgres_schema_url(schema)
    finally:
        await _drop_pg_schema(schema)


async def test_pause_and_a_setting_on_one_instance_apply_on_the_other(
    tmp_path: Any, pg_url: str
) -> None:
    a, b = await _instances(tmp_path, pg_url, 2)
    clusters = [Cluster(s, migrate.head_revision()) for s in (a, b)]
    fleets = [
        Fleet(s, receive="off", settings_refresh_s=3600.0, limiter_namespace=namespace())
        for s in (a, b)
    ]
    try:
        for s, c, f in zip((a, b), clusters, fleets, strict=True):
            s.extras["fleet"] = f
            await f.start()
            await c.start()
        fa, fb = fleets
        await fa.control.pause()
        await until(lambda: fb.snapshot()["paused"] is True, "the pause on instance b")
        await fa.control.set_max_msgs_per_min(42)
        await until(
            lambda: fb.settings_store.number("max_msgs_per_min") == 42, "the rate on instance b"
        )
        await fb.control.resume()  # and the other way round
        await until(lambda: fa.snapshot()["paused"] is False, "the resume on instance a")
        assert clusters[1].changes.heard >= 2 and clusters[0].changes.heard >= 1
    finally:
        for c, f in zip(clusters, fleets, strict=True):
            await c.stop()
            await f.stop()
        for s in (a, b):
            await s.close()


async def test_a_listener_that_lost_its_connection_resyncs_and_hears_again(
    tmp_path: Any, pg_url: str
) -> None:
    a, b = await _instances(tmp_path, pg_url, 2)
    heard: list[dict[str, Any]] = []
    bus_a, bus_b = ChangeBus(a, "a:1:aaa"), ChangeBus(b, "b:2:bbb")
    own: list[dict[str, Any]] = []

    async def record(payload: dict[str, Any]) -> None:
        heard.append(payload)

    async def record_own(payload: dict[str, Any]) -> None:
        own.append(payload)

    bus_b.on("settings", record)
    bus_a.on("settings", record_own)
    try:
        await bus_a.start()
        await bus_b.start()
        await bus_a.publish("settings", {"n": 1})
        await until(lambda: {"n": 1} in heard, "the first change")
        assert own == []  # the instance that made a change applied it already

        # the server drops b's listening connection (a restart, a failover, a partition)
        raw = await bus_b._conn.get_raw_connection()
        pid = raw.driver_connection.get_server_pid()
        async with a.engine.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await until(lambda: {"resync": True} in heard, "a resync after reconnecting")
        await bus_a.publish("settings", {"n": 2})
        await until(lambda: {"n": 2} in heard, "a change after reconnecting")
    finally:
        await bus_a.stop()
        await bus_b.stop()
        for s in (a, b):
            await s.close()
