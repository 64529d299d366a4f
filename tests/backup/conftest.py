"""Fixtures for backup tests: a migrated database of its own on SQLite or on PostgreSQL
(a whole database, as backups and restores work on whole databases), some rows in it,
and a moto S3 server (a real HTTP server speaking the S3 API) on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, make_url, select, text

from piyasa.backup.service import BackupService
from piyasa.bench._procs import free_port
from piyasa.config import load_settings
from piyasa.db.engine import create_engine
from piyasa.db.migrate import upgrade
from piyasa.db.models import Setting
from piyasa.services import Services
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, _postgres_up, skip_or_fail
from tests.servers import wait_port


def pg_admin_url(database: str = "postgres") -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


async def _pg_exec(sql: str) -> None:
    import asyncpg

    u = make_url(pg_admin_url()).set(drivername="postgresql")
    conn = await asyncpg.connect(u.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_templates: dict[str, str] = {}  # per worker: kind -> migrated template (file path / db name)


async def _template(kind: str, tmp_root: Path) -> str:
    """Migrate once per worker; each test copies the result (a file copy, or CREATE
    DATABASE … TEMPLATE), which is much cheaper than running every migration again."""
    if kind in _templates:
        return _templates[kind]
    if kind == "sqlite":
        path = tmp_root / "template.db"
        url = f"sqlite+aiosqlite:///{path}"
        name = str(path)
    else:
        name = f"b16_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await _pg_exec(f'CREATE DATABASE "{name}"')
        url = pg_admin_url(name)
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    _templates[kind] = name
    return name


@pytest.fixture(scope="session")
def _drop_templates() -> Iterator[None]:
    """Drop this worker's PostgreSQL template database at the end of the session."""
    yield
    name = _templates.pop("postgres", None)
    if name:
        import asyncio

        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}"'))


async def sqlite_copy(tmp_path: Path, factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file of this test's own (a copy of the worker's template)."""
    template = await _template("sqlite", factory.getbasetemp())
    shutil.copyfile(template, tmp_path / "live.db")
    return f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"


@contextlib.asynccontextmanager
async def pg_copy(factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test's own (CREATE DATABASE … TEMPLATE),
    dropped afterwards with what a restore leaves beside it; skips without PostgreSQL."""
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    template = await _template("postgres", factory.getbasetemp())
    name = "b16_" + uuid.uuid4().hex[:10]
    await _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_admin_url(name)
    finally:
        for db in (name, f"{name}_pre_restore", f"{name}_restoring"):
            await _pg_exec(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
            )
            await _pg_exec(f'DROP DATABASE IF EXISTS "{db}"')


@contextlib.asynccontextmanager
async def live_services(url: str, data_dir: Path, **extra: str) -> AsyncIterator[Services]:
    """Services on ``url`` with 25 ``before.*`` settings rows; closed afterwards."""
    services = make_services(url, data_dir, **extra)
    try:
        await add_rows(services, "before", 25)
        yield services
    finally:
        await services.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def backup_db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _drop_templates: None,
) -> AsyncIterator[str]:
    """A migrated, empty database of this test's own (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        yield await sqlite_copy(tmp_path, tmp_path_factory)
        return
    async with pg_copy(tmp_path_factory) as url:
        yield url


@pytest.fixture
async def sqlite_db_url(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite half alone, for tests whose subject does not depend on the database."""
    return await sqlite_copy(tmp_path, tmp_path_factory)


@pytest.fixture
async def live_sqlite(sqlite_db_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with live_services(sqlite_db_url, tmp_path / "data") as services:
        yield services


@pytest.fixture
def svc_sqlite(live_sqlite: Services) -> BackupService:
    return BackupService(live_sqlite)


def make_services(url: str, data_dir: Path, **extra: str) -> Services:
    env = {
        "PIYASA_DATA_DIR": str(data_dir),
        "PIYASA_DATABASE_URL": url,
        "PIYASA_HTTP_PORT": "0",
        **extra,
    }
    return Services.build(load_settings(env))


@pytest.fixture
async def live(backup_db_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with live_services(backup_db_url, tmp_path / "data") as services:
        yield services


@pytest.fixture
def svc(live: Services) -> BackupService:
    return BackupService(live)


async def add_rows(services: Services, prefix: str, n: int) -> None:
    async with services.sessions() as session, session.begin():
        for i in range(n):
            session.add(
                Setting(
                    key=f"{prefix}.{i}", value={"n": i, "text": "ğüşiöç" * (i % 5)}, updated_by="t"
                )
            )


async def every_row(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every table, every row, sorted: what a row-by-row comparison compares."""
    meta = MetaData()
    async with services.engine.connect() as conn:
        await conn.run_sync(meta.reflect)
        out = {}
        for table in meta.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


async def count(services: Services, table: str) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A moto S3 server (``moto_server``) on a free loopback port; its endpoint URL."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def s3_settings(endpoint: str) -> dict[str, str]:
    import boto3

    bucket = "b16-" + uuid.uuid4().hex[:10]
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=bucket)
    return {
        "PIYASA_BACKUP_S3_BUCKET": bucket,
        "PIYASA_BACKUP_S3_URL": endpoint,
        "PIYASA_BACKUP_S3_ACCESS_KEY": "test",
        "PIYASA_BACKUP_S3_SECRET_KEY": "test",
    }
