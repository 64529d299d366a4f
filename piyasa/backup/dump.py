"""Take a consistent payload of the live database, count its rows, and put one back.

SQLite: the online backup API copying every page in ONE step (``pages=-1``), so a writer
committing meanwhile cannot make it restart (issue 16 measured 436–523 MB/s, the writer
stalled ≤ 7 ms; a stepwise copy never finished under 100 commits/s). The copy is a plain
database file: its row counts and Alembic revision are read from it, so they match the
payload exactly.

PostgreSQL: ``pg_dump -Fc -Z0`` (zstd compresses better and faster afterwards) run on a
snapshot exported from a REPEATABLE READ transaction in which the row counts are taken too,
so counts and dump see the same data. Restored with ``pg_restore`` into a fresh database,
then swapped in by two ``ALTER DATABASE … RENAME`` in one transaction (atomic, survives
SIGKILL: before the commit the old database is untouched, after it the new one is whole).
Credentials reach the client tools through ``PG*`` environment variables, never argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from piyasa.backup.model import BackupError

PG_TOOLS = ("pg_dump", "pg_restore")


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int]
    schema_revision: str


def db_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("backup.unsupported_db")
    return Path(database)


def missing_pg_tools() -> list[str]:
    """Client tools PostgreSQL backups need that are not on PATH (``piyasa check``)."""
    return [t for t in PG_TOOLS if shutil.which(t) is None]


# -- SQLite -----------------------------------------------------------------------------


def _sqlite_counts(conn: sqlite3.Connection) -> Snapshot:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    rows = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
    revision = ""
    if "alembic_version" in tables:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = found[0] if found else ""
    return Snapshot(rows, revision)


def sqlite_snapshot(source: Path, dest: Path) -> Snapshot:
    """Copy ``source`` into ``dest`` with the online backup API in one step; counts from
    the copy. ``dest`` is removed on failure (a full disk leaves nothing behind)."""
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            out = sqlite3.connect(dest)
            try:
                src.backup(out, pages=-1)
                out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                return _sqlite_counts(out)
            finally:
                out.close()
        finally:
            src.close()
    except sqlite3.OperationalError as exc:
        dest.unlink(missing_ok=True)
        if "full" in str(exc).lower():
            raise BackupError("backup.disk_full") from None
        raise
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def sqlite_counts(path: Path) -> Snapshot:
    """Row counts of a database file (read-only)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA quick_check").fetchone()
        return _sqlite_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError("backup.corrupt", reason=str(exc)) from None
    finally:
        conn.close()


def sqlite_swap(new_file: Path, live: Path) -> None:
    """Put ``new_file`` (same directory as ``live``) in place of the live database.

    Every connection must be closed. The live database is checkpointed and its ``-wal`` /
    ``-shm`` removed first (a stale WAL replayed onto the new file would corrupt it), then
    one ``os.replace``: a SIGKILL at any point leaves the old or the new database whole."""
    if live.exists():
        conn = sqlite3.connect(live, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    os.replace(new_file, live)
    fd = os.open(live.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- PostgreSQL ---------------------------------------------------------------------------


def pg_env(url: str, database: str | None = None) -> dict[str, str]:
    """libpq environment for the client tools (the password never on a command line)."""
    u = make_url(url)
    env = dict(os.environ)
    env.update(
        {
            "PGHOST": u.host or "127.0.0.1",
            "PGPORT": str(u.port or 5432),
            "PGUSER": u.username or "postgres",
            "PGDATABASE": database or u.database or "postgres",
        }
    )
    if u.password:
        env["PGPASSWORD"] = u.password
    else:
        env.pop("PGPASSWORD", None)
    return env


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    u = make_url(url).set(drivername="postgresql")
    if database:
        u = u.set(database=database)
    u = u.set(query={})
    return u.render_as_string(hide_password=False)


async def _pg_counts(conn: Any) -> Snapshot:
    tables = [
        r["tablename"]
        for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
    ]
    rows = {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
    revision = ""
    if "alembic_version" in tables:
        revision = await conn.fetchval("SELECT version_num FROM alembic_version") or ""
    return Snapshot(rows, revision)


def _require_tools() -> None:
    missing = missing_pg_tools()
    if missing:
        raise BackupError("backup.tools_missing", tools=", ".join(missing))


async def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip().splitlines()
        raise BackupError("backup.tool_failed", tool=cmd[0], error=(text[-1] if text else "")[:300])


async def pg_snapshot(url: str, dest: Path) -> Snapshot:
    """``pg_dump -Fc`` of the live database into ``dest`` plus row counts, both from one
    exported snapshot."""
    import asyncpg

    _require_tools()
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        await tx.start()
        try:
            snap_id = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = await _pg_counts(conn)
            try:
                await _run(
                    ["pg_dump", "-Fc", "-Z0", f"--snapshot={snap_id}", "-f", str(dest)],
                    pg_env(url),
                )
            except BaseException:
                await asyncio.to_thread(dest.unlink, missing_ok=True)
                raise
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    return counts


async def pg_restore_into(url: str, dump: Path, database: str) -> Snapshot:
    """Create ``database`` and ``pg_restore`` ``dump`` into it; its row counts."""
    import asyncpg

    _require_tools()
    admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        await _run(
            ["pg_restore", "--no-owner", "--exit-on-error", "-d", database, str(dump)],
            pg_env(url, database),
        )
        conn = await asyncpg.connect(_asyncpg_dsn(url, database))
        try:
            return await _pg_counts(conn)
        finally:
            await conn.close()
    except BaseException:
        with contextlib.suppress(Exception):
            await pg_drop(url, database)
        raise


async def pg_drop(url: str, database: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
    finally:
        await admin.close()


def aside_name(url: str) -> str:
    """The name the live database has between a swap and its drop: ``<db>_pre_restore``."""
    return f"{make_url(url).database or 'postgres'}_pre_restore"[:63]


async def pg_swap(url: str, restored: str) -> str:
    """Rename the live database aside and ``restored`` into its place, in ONE transaction;
    returns the name the old database now has (dropped by the caller once it is safe)."""
    import asyncpg

    live = make_url(url).database or "postgres"
    aside = aside_name(url)
    admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{aside}"')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            live,
        )
        async with admin.transaction():
            await admin.execute(f'ALTER DATABASE "{live}" RENAME TO "{aside}"')
            await admin.execute(f'ALTER DATABASE "{restored}" RENAME TO "{live}"')
    finally:
        await admin.close()
    return aside
