"""Shared fixtures: databases on SQLite and PostgreSQL, caches in memory and on Redis.

`db_url`/`engine`/`sessions` are parametrized over both backends; each test gets a fresh
schema (a new SQLite file, or a new PostgreSQL schema dropped afterwards).

A test whose server (PostgreSQL, Redis) or browser (Chromium) is absent goes through
:func:`skip_or_fail`: it skips with a reason naming what is missing, or fails with that
reason when ``PIYASA_REQUIRE_SERVICES=1`` (set by `.ci/run`, which also rejects any such
skip it finds in pytest's JUnit report, see `.ci/skips.py`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from piyasa.cache import MemoryCache, RedisCache
from piyasa.config import Settings, load_settings
from piyasa.db import all_models  # noqa: F401
from piyasa.db.base import Base
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.services import Services
from tests.servers import OwnPostgres, OwnRedis, pg_bin

POSTGRES_URL = os.environ.get(
    "PIYASA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
).replace("postgresql://", "postgresql+asyncpg://")
REDIS_URL = os.environ.get("PIYASA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SKIP_POSTGRES = "PostgreSQL not reachable at PIYASA_TEST_POSTGRES_URL"
SKIP_REDIS = "Redis not reachable at PIYASA_TEST_REDIS_URL"
# What a skip reason names when a required service is missing; the same words as
# `.ci/skips.py` (tests/test_ci.py keeps the two equal).
SERVICE_WORDS = re.compile(r"postgres|redis|chromium|chrome", re.IGNORECASE)


def services_required() -> bool:
    """True under `.ci/run` (``PIYASA_REQUIRE_SERVICES=1``): nothing may skip for a service."""
    return os.environ.get("PIYASA_REQUIRE_SERVICES", "").strip() not in ("", "0")


def skip_or_fail(reason: str) -> NoReturn:
    """The one decision for a test whose server or browser is absent: skip with ``reason``
    on a developer's machine, fail with it where the services are required (CI)."""
    if services_required():
        pytest.fail(f"{reason} (PIYASA_REQUIRE_SERVICES=1: a missing service fails)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Safety net for a skip that did not go through :func:`skip_or_fail` (a plain
    ``pytest.skip`` or ``skipif`` naming PostgreSQL, Redis or Chromium): where services are
    required it becomes a failure, whatever module raised it."""
    report = yield
    if report.skipped and services_required() and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report.longrepr)
        if SERVICE_WORDS.search(reason):
            report.outcome = "failed"
            report.longrepr = f"{reason} (PIYASA_REQUIRE_SERVICES=1: a missing service fails)"
    return report


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


_reachable: dict[str, bool] = {}


def _postgres_up() -> bool:
    """Probe once per session over a plain socket + asyncpg in a private loop thread."""
    if "pg" not in _reachable:

        async def probe() -> bool:
            engine = create_engine(POSTGRES_URL)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return True
            except Exception:
                return False
            finally:
                await engine.dispose()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _reachable["pg"] = pool.submit(asyncio.run, probe()).result()
    return _reachable["pg"]


def _redis_up() -> bool:
    if "redis" not in _reachable:
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
            _reachable["redis"] = True
        except Exception:
            _reachable["redis"] = False
    return _reachable["redis"]


def postgres_schema_url(schema: str) -> str:
    """The test PostgreSQL URL with a search_path pinned to ``schema``."""
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}search_path={schema}"


async def _make_pg_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await engine.dispose()


async def _drop_pg_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    schema = "t_" + uuid.uuid4().hex[:12]
    await _make_pg_schema(schema)
    try:
        yield postgres_schema_url(schema)
    finally:
        await _drop_pg_schema(schema)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database holding the current models' schema."""
    eng = create_engine(db_url)
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[MemoryCache | RedisCache]:
    """A cache on each backend; the Redis one has a namespace of its own per test."""
    if request.param == "memory":
        yield MemoryCache()
        return
    if not _redis_up():
        skip_or_fail(SKIP_REDIS)
    c = RedisCache(REDIS_URL, namespace=f"test:{uuid.uuid4().hex[:8]}:")
    try:
        yield c
    finally:
        await c.clear()
        await c.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data dir, environment ignored."""
    return load_settings({"PIYASA_DATA_DIR": str(tmp_path / "data"), "PIYASA_HTTP_PORT": "0"})


@pytest.fixture
async def services(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Services]:
    """A full service container on each database backend (memory cache)."""
    svc = Services.build(settings, engine=engine)
    yield svc
    await svc.cache.close()


def redis_available() -> bool:
    return _redis_up()


def postgres_available() -> bool:
    return _postgres_up()


@pytest.fixture
def own_redis() -> Generator[OwnRedis, None, None]:
    """A running Redis of this test's own (``tests/servers.py``), killed at the end."""
    import shutil

    if not shutil.which("redis-server"):
        skip_or_fail("redis-server is not installed")
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_postgres() -> Generator[OwnPostgres, None, None]:
    """A running throwaway PostgreSQL cluster of this test's own, removed at the end."""
    bindir = pg_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL's initdb (/usr/lib/postgresql/*/bin) is not installed")
    server = OwnPostgres(bindir)
    server.start()
    yield server
    server.remove()
