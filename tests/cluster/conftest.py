"""Shared fixtures of the cluster tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from piyasa.cache import RedisCache
from piyasa.cluster.lease import LeaseBackend, RedisLease, SqlLease
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from tests.conftest import (
    REDIS_URL,
    SKIP_POSTGRES,
    SKIP_REDIS,
    _drop_pg_schema,
    _make_pg_schema,
    _postgres_up,
    _redis_up,
    postgres_schema_url,
    skip_or_fail,
)


@pytest.fixture(params=["postgres", "redis"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[list[LeaseBackend]]:
    """Three backends on one shared store, as three instances would have."""
    if request.param == "postgres":
        if not _postgres_up():
            skip_or_fail(SKIP_POSTGRES)
        schema = "t_" + uuid.uuid4().hex[:12]
        await _make_pg_schema(schema)
        engines = [create_engine(postgres_schema_url(schema)) for _ in range(3)]
        async with engines[0].begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        try:
            yield [SqlLease(e) for e in engines]
        finally:
            for e in engines:
                await e.dispose()
            await _drop_pg_schema(schema)
        return
    if not _redis_up():
        skip_or_fail(SKIP_REDIS)
    ns = f"test:{uuid.uuid4().hex[:8]}:"
    caches = [RedisCache(REDIS_URL, namespace=ns) for _ in range(3)]
    try:
        yield [RedisLease(c.client, ns) for c in caches]
    finally:
        async for key in caches[0].client.scan_iter(match=ns + "*"):
            await caches[0].client.delete(key)
        for c in caches:
            await c.close()
