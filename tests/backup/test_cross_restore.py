"""Restoring across engines: a SQLite backup into PostgreSQL and a PostgreSQL backup into
SQLite, through `db copy`'s code, with the safety backup and the swap of a same-kind
restore. After it every table equals the backup's source row by row (values compared as
the models read them, so SQLite's and PostgreSQL's spellings of a time or a JSON value
compare equal)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from piyasa.backup.service import BackupError, BackupService
from piyasa.db.models import Setting
from piyasa.services import Services
from tests.backup.conftest import (
    add_rows,
    count,
    live_services,
    pg_admin_url,
    pg_copy,
    sqlite_copy,
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


async def typed_rows(services: Services) -> dict[str, list[str]]:
    """Every Piyasa table, every row, as the models read them (engine-neutral)."""
    from piyasa.db import all_models  # noqa: F401  (registers every table)
    from piyasa.db.base import Base

    out: dict[str, list[str]] = {}
    async with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(repr(tuple(_plain(v) for v in r)) for r in rows)
    return out


@pytest.fixture
async def sqlite_live(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, _drop_templates: None
) -> Any:
    url = await sqlite_copy(tmp_path, tmp_path_factory)
    async with live_services(url, tmp_path / "data") as services:
        yield services


@pytest.fixture
async def pg_url(tmp_path_factory: pytest.TempPathFactory, _drop_templates: None) -> Any:
    async with pg_copy(tmp_path_factory) as url:
        yield url


async def test_sqlite_backup_restores_into_postgres(
    sqlite_live: Services, pg_url: str, tmp_path: Path
) -> None:
    at_backup = await typed_rows(sqlite_live)
    info = await BackupService(sqlite_live).create()
    assert info.db_kind == "sqlite"
    # the same data dir: the same secret key and backup directory, another database
    async with live_services(pg_url, tmp_path / "data") as pg:
        await add_rows(pg, "pg_only", 7)
        before = await typed_rows(pg)
        svc = BackupService(pg)
        safety = await svc.restore(info.id, actor="test")
        assert await typed_rows(pg) == at_backup
        assert safety is not None and safety.db_kind == "postgresql"
        assert safety.rows["settings"] == 32
        # the engine keeps working after the swap: new rows go in
        await add_rows(pg, "after", 3)
        assert await count(pg, "settings") == 28
        # and the safety backup (same kind) brings PostgreSQL's own rows back
        await svc.restore(safety.id, actor="test", safety=False)
        assert await typed_rows(pg) == before


async def test_postgres_backup_restores_into_sqlite(
    sqlite_live: Services, pg_url: str, tmp_path: Path
) -> None:
    async with live_services(pg_url, tmp_path / "data") as pg:
        await add_rows(pg, "pg_only", 7)
        at_backup = await typed_rows(pg)
        info = await BackupService(pg).create()
    assert info.db_kind == "postgresql"
    before = await typed_rows(sqlite_live)
    svc = BackupService(sqlite_live)
    with pytest.raises(BackupError) as caught:
        await svc.test_restore(info.id)
    assert caught.value.key == "backup.cross_needs_pg"
    sqlite_live.settings.extra["PIYASA_BACKUP_SCRATCH_URL"] = pg_admin_url()
    assert (await svc.test_restore(info.id)).test_restored_at is not None
    safety = await svc.restore(info.id, actor="test")
    assert await typed_rows(sqlite_live) == at_backup
    assert safety is not None and safety.db_kind == "sqlite"
    await add_rows(sqlite_live, "after", 2)
    assert await count(sqlite_live, "settings") == 34
    await svc.restore(safety.id, actor="test", safety=False)
    assert await typed_rows(sqlite_live) == before
    assert not list(Path(svc.work_dir).glob(".xrestore*"))  # noqa: ASYNC240


async def test_postgres_into_sqlite_without_scratch_server_is_refused(
    sqlite_live: Services, pg_url: str, tmp_path: Path
) -> None:
    async with live_services(pg_url, tmp_path / "data") as pg:
        info = await BackupService(pg).create()
    sqlite_live.settings.extra.pop("PIYASA_BACKUP_SCRATCH_URL", None)
    before = await typed_rows(sqlite_live)
    svc = BackupService(sqlite_live)
    with pytest.raises(BackupError) as caught:
        await svc.restore(info.id, actor="test")
    assert caught.value.key == "backup.cross_needs_pg"
    assert await typed_rows(sqlite_live) == before
    assert [b.id for b in await svc.list()] == [info.id]  # no safety backup was taken


async def test_a_failed_cross_copy_leaves_postgres_as_it_was(
    sqlite_live: Services, pg_url: str, tmp_path: Path
) -> None:
    """A SQLite backup PostgreSQL cannot take (a 300-character key where the column holds
    128: SQLite does not check lengths) fails in the copy, before the swap: PostgreSQL is
    left as it was and no staging database stays behind."""
    async with sqlite_live.sessions() as session, session.begin():
        session.add(Setting(key="k" * 300, value={}, updated_by="t"))
    info = await BackupService(sqlite_live).create()
    async with live_services(pg_url, tmp_path / "data") as pg:
        before = await typed_rows(pg)
        svc = BackupService(pg)
        with pytest.raises(BackupError) as caught:
            await svc.restore(info.id, actor="test", safety=False)
        assert caught.value.key == "backup.copy_failed"
        assert await typed_rows(pg) == before
    name = make_url(pg_url).database
    import asyncpg

    conn = await asyncpg.connect(pg_admin_url("postgres").replace("+asyncpg", ""))
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", f"{name}_restoring"
        )
    finally:
        await conn.close()
    assert found == 0
