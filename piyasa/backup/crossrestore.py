"""Restoring a backup of the other database kind: a SQLite archive into PostgreSQL, or a
PostgreSQL archive into SQLite.

The archive is first put back as what it is, in a scratch place (SQLite: a file in the
backup directory; PostgreSQL: a scratch database on ``PIYASA_BACKUP_SCRATCH_URL``, the
only PostgreSQL server there is when the live database is SQLite), its row counts checked
against the manifest and brought to the current schema. Then ``piyasa db copy``'s code
(:func:`piyasa.admin.setup.dbcopy.copy_database`, ``mirror=True``) copies it table by
table into a fresh staging database of the live kind and compares every table's row count.
Only then comes the same swap as a restore of the same kind
(:func:`piyasa.backup.restore.swap_in`; SQLite: one ``os.replace``; PostgreSQL: two renames
in one transaction): until the swap the live database is
untouched, after it the new one is whole. The safety backup before all this is the
service's (:meth:`piyasa.backup.service.BackupService.restore`). The scratch directory
``.xrestore-*`` names its scratch database in a marker, so a killed restore's leftovers are
swept later (:mod:`piyasa.backup.leftovers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from piyasa.backup import dump, leftovers
from piyasa.backup.model import BackupError, Progress
from piyasa.backup.restore import _step, check_rows, staging_name, swap_in

SCRATCH_KEY = "PIYASA_BACKUP_SCRATCH_URL"  # a PostgreSQL server for PG archives into SQLite


def scratch_url(svc: Any) -> str:
    """The PostgreSQL server a PostgreSQL archive is unpacked on when the live database is
    SQLite ("" when none is configured)."""
    return str(svc.services.settings.extra.get(SCRATCH_KEY) or "").strip()


def refusal(svc: Any, meta: dict[str, Any]) -> None:
    """Raise the reason this cross-kind restore cannot run, before anything is touched."""
    if meta["db_kind"] == "postgresql":
        if not scratch_url(svc):
            raise BackupError("backup.cross_needs_pg", db_kind=meta["db_kind"])
        dump.sqlite_path(svc.services.settings.database_url)  # in-memory SQLite: refused
        dump._require_tools()


def _with_db(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _pg_create(url: str, database: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(dump._asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


async def _to_head(url: str) -> None:
    """Bring the scratch copy to the current schema (``db copy`` copies head to head)."""
    from piyasa.admin.setup.verify import normalize_database_url
    from piyasa.db.engine import BULK_CONNECT_TIMEOUT_S, create_engine
    from piyasa.db.migrate import upgrade

    engine = create_engine(
        normalize_database_url(url), pool_size=1, connect_timeout_s=BULK_CONNECT_TIMEOUT_S
    )
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _copy(
    source_url: str, target_url: str, progress: Progress | None, span: tuple[float, float]
) -> None:
    """``db copy --mirror`` from the scratch copy into the staging database; refused with
    the mismatching tables when a row count differs."""
    from piyasa.admin.setup.dbcopy import CopyError, copy_database

    lo, hi = span

    async def step(_table: str, done: int, total: int, i: int, n: int) -> None:
        if progress and n:
            part = (i + (done / total if total else 1.0)) / n
            await progress(lo + (hi - lo) * min(1.0, part), "backup.step.copy")

    try:
        report = await copy_database(source_url, target_url, progress=step, mirror=True)
    except CopyError as exc:
        raise BackupError("backup.copy_failed", reason=str(exc)[:300]) from None
    if not report.ok:  # mirror raises on a mismatch; kept as a second guard
        bad = ", ".join(t.name for t in report.mismatched)
        raise BackupError("backup.copy_failed", reason=f"row counts differ: {bad}")


def _settle_sqlite(path: Path) -> None:
    """Fold the staging file's WAL into it: only the main file is renamed into place."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def replace_across(
    svc: Any, backup_id: str, meta: dict[str, Any], progress: Progress | None
) -> None:
    """Put a backup of the other database kind in place of the live database."""
    if meta["db_kind"] == "sqlite":
        await _sqlite_into_pg(svc, backup_id, meta, progress)
    else:
        await _pg_into_sqlite(svc, backup_id, meta, progress)


async def _sqlite_into_pg(
    svc: Any, backup_id: str, meta: dict[str, Any], progress: Progress | None
) -> None:
    url = svc.services.settings.database_url
    scratch = Path(tempfile.mkdtemp(prefix=".xrestore-", dir=svc.work_dir))
    payload = scratch / "payload.db"
    restoring = staging_name(url)
    try:
        await svc._unpack(backup_id, meta, payload, progress, (0.3, 0.5))
        await _step(progress, 0.5, "backup.step.count")
        check_rows(await asyncio.to_thread(dump.sqlite_counts, payload), meta)
        source = f"sqlite+aiosqlite:///{payload}"
        await _to_head(source)
        await _pg_create(url, restoring)
        await _copy(source, _with_db(url, restoring), progress, (0.55, 0.85))
        await swap_in(svc.services, restoring, progress, 0.85)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(Exception):  # gone after the swap; left by a failure before
            await dump.pg_drop(url, restoring)


async def _pg_into_sqlite(
    svc: Any, backup_id: str, meta: dict[str, Any], progress: Progress | None
) -> None:
    live = dump.sqlite_path(svc.services.settings.database_url)
    staged = live.with_name(live.name + ".restoring")
    server = scratch_url(svc)
    name = leftovers.scratch_db_name("piyasa_xrestore")
    scratch = Path(tempfile.mkdtemp(prefix=".xrestore-", dir=svc.work_dir))
    payload = scratch / "payload.dump"
    try:
        await asyncio.to_thread(leftovers.mark, scratch, name)  # a kill leaves its name
        await svc._unpack(backup_id, meta, payload, progress, (0.3, 0.45))
        await _step(progress, 0.45, "backup.step.load")
        check_rows(await dump.pg_restore_into(server, payload, name), meta)
        source = _with_db(server, name)
        await _to_head(source)
        await asyncio.to_thread(_remove_sqlite, staged)
        await _copy(source, f"sqlite+aiosqlite:///{staged}", progress, (0.55, 0.85))
        await asyncio.to_thread(_settle_sqlite, staged)
        await swap_in(svc.services, staged, progress, 0.85)
    finally:
        _remove_sqlite(staged)
        payload.unlink(missing_ok=True)
        dropped = False
        with contextlib.suppress(Exception):
            await dump.pg_drop(server, name)
            dropped = True
        if dropped:  # else the directory keeps the marker: the next sweep drops it
            shutil.rmtree(scratch, ignore_errors=True)
