"""What a killed backup, test restore or restore leaves behind, and its removal.

Every backup operation works in scratch places under the backup directory (``.snap-*``,
``.test-restore-*``, ``.restore-*``, ``.xrestore-*``, ``*.partial``) and, for a SQLite
database, a staged copy ``<db>.restoring`` beside it. A scratch PostgreSQL database made
for a scratch directory (a PostgreSQL archive unpacked on ``PIYASA_BACKUP_SCRATCH_URL``
during a cross-engine restore) is named in a marker file inside that directory, written
BEFORE the database is created: a SIGKILL at any point leaves a directory whose marker
says what to drop, and only this installation's own scratch databases are ever dropped.

:func:`sweep` removes all of it. It runs under the service's lock (nothing of a live
operation is touched): before each backup, restore and test restore, and once at start
on the instance running the backup schedule (:mod:`piyasa.backup.schedule`). A scratch
database that cannot be dropped (the scratch server is away) keeps its directory and
marker for the next sweep and is logged as a warning with its name. A live PostgreSQL
database's ``<db>_restoring`` / ``<db>_pre_restore`` are reported, not dropped (see
:func:`_report_pg`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from piyasa.backup import dump

log = logging.getLogger(__name__)

MARK = "scratch-database.json"  # in a scratch directory: {"server": "scratch", "database": …}
PREFIXES = (".snap-", ".test-restore-", ".restore-", ".xrestore-")


def scratch_db_name(prefix: str) -> str:
    """A scratch database name unique to this process and call (``<prefix>_<pid>_<hex>``:
    the pid alone repeats across containers sharing one scratch server)."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def mark(scratch_dir: Path, database: str, server: str = "scratch") -> None:
    """Record in ``scratch_dir`` that ``database`` is about to be created on ``server``
    (``"scratch"``: ``PIYASA_BACKUP_SCRATCH_URL``; ``"live"``: the live database's
    server). Call BEFORE creating it; fsynced, so a kill right after cannot lose it."""
    path = scratch_dir / MARK
    with path.open("w") as out:
        json.dump({"server": server, "database": database}, out)
        out.flush()
        os.fsync(out.fileno())


def _server_url(svc: Any, server: str) -> str:
    if server == "live":
        return str(svc.services.settings.database_url)
    from piyasa.backup.crossrestore import scratch_url

    return scratch_url(svc)


async def _drop_marked(svc: Any) -> None:
    """Drop the scratch database each leftover directory's marker names; the marker goes
    once its database is gone (a failure keeps it and is logged)."""
    marks = await asyncio.to_thread(
        lambda: [p / MARK for p in svc.work_dir.iterdir() if (p / MARK).is_file()]
    )
    for marker in marks:
        try:
            found = json.loads(marker.read_text())
            name, url = str(found["database"]), _server_url(svc, str(found.get("server")))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable scratch marker removed: %s", marker)
            marker.unlink(missing_ok=True)
            continue
        if not url or dump.db_kind(url) != "postgresql":
            log.warning("scratch database %s left by a killed restore: no server to drop it", name)
            continue
        try:
            await dump.pg_drop(url, name)
        except Exception as exc:
            log.warning(
                "scratch database %s left by a killed restore not dropped (%s): kept for the "
                "next sweep; drop it by hand if the scratch server is gone",
                name,
                type(exc).__name__,
            )
            continue
        log.info("dropped scratch database %s left by a killed restore", name)
        marker.unlink(missing_ok=True)


def _sweep_files(svc: Any) -> None:
    for path in svc.work_dir.iterdir():
        if path.name.startswith(PREFIXES):
            if not path.is_dir():
                path.unlink(missing_ok=True)
            elif not (path / MARK).exists():
                shutil.rmtree(path, ignore_errors=True)
            else:  # a marked one keeps only its marker until its database is dropped
                for inner in path.iterdir():
                    if inner.name != MARK:
                        shutil.rmtree(inner, True) if inner.is_dir() else inner.unlink()
        elif path.name.endswith(".partial"):
            path.unlink(missing_ok=True)
    url = svc.services.settings.database_url
    if dump.db_kind(url) == "sqlite":  # a killed restore's staged copy (as big as the db)
        live = dump.sqlite_path(url)
        for suffix in ("", "-wal", "-shm", "-journal"):
            live.with_name(f"{live.name}.restoring{suffix}").unlink(missing_ok=True)


async def _report_pg(svc: Any) -> None:
    """Log the PostgreSQL databases a killed restore left beside the live one. They are not
    dropped here: ``<db>_restoring`` may be another instance's restore in progress (another
    data dir, another lock), ``<db>_pre_restore`` may be the only copy of the data before a
    restore taken without a safety backup. The next restore replaces both."""
    import asyncpg

    from piyasa.backup.restore import staging_name

    url = svc.services.settings.database_url
    if dump.db_kind(url) != "postgresql":
        return
    names = [staging_name(url), dump.aside_name(url)]
    try:
        conn = await asyncpg.connect(dump._asyncpg_dsn(url, "postgres"))
        try:
            found = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names
            )
        finally:
            await conn.close()
    except Exception:
        return
    for row in found:
        log.warning(
            "database %s left by an interrupted restore is still on the server: the next "
            "restore replaces it; drop it by hand to free its space",
            row["datname"],
        )


async def sweep(svc: Any) -> None:
    """Remove what killed backup operations left (call under the service's lock); report
    what is left on purpose (:func:`_report_pg`)."""
    await _drop_marked(svc)
    await asyncio.to_thread(_sweep_files, svc)
    await _report_pg(svc)
