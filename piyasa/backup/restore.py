"""Putting a backup in place of the live database (the service's ``restore``).

Order, each step safe against SIGKILL: unpack (decrypt + checksum) next to the live
database → check the unpacked copy's row counts against the manifest → pause the fleet
and close every pooled connection → swap (SQLite: ``os.replace`` of a file in the same
directory; PostgreSQL: restore into ``<db>_restoring``, then two renames in one
transaction) → migrate to head when the backup is older → resume the fleet. Until the swap
the live database is untouched; after it the new one is whole. The swap and what surrounds
it is :func:`swap_in`, the one definition a cross-engine restore
(:mod:`piyasa.backup.crossrestore`) uses too. First, what killed operations left is swept
(:mod:`piyasa.backup.leftovers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from piyasa.backup import dump, leftovers
from piyasa.backup.model import BackupError, BackupInfo, Progress, now_s

log = logging.getLogger(__name__)


HOLD_ENV = "PIYASA_RESTORE_HOLD"  # test hook: stop a restore at a named point until killed
HOLD_POINTS = ("staged", "swapped")


async def _hold(point: str) -> None:
    """With ``PIYASA_RESTORE_HOLD=<point>``, say so on stderr and wait until killed: the
    fault tests SIGKILL a restore exactly there, whatever the speed of the machine."""
    if os.environ.get(HOLD_ENV) == point:
        print(f"restore held at {point} ({HOLD_ENV})", file=sys.stderr, flush=True)
        await asyncio.Event().wait()


async def _step(progress: Progress | None, fraction: float, key: str) -> None:
    if progress:
        await progress(fraction, key)


def check_rows(snap: dump.Snapshot, meta: dict[str, Any]) -> None:
    """Refuse (``backup.rows_mismatch``) an unpacked copy whose row counts differ from the
    manifest's."""
    if snap.rows != meta.get("rows"):
        raise BackupError("backup.rows_mismatch")


def staging_name(url: str) -> str:
    """The PostgreSQL database a restore fills before the swap: ``<db>_restoring``."""
    return f"{_db_name(url)}_restoring"[:63]


async def swap_in(
    services: Any, staged: Path | str, progress: Progress | None, fraction: float
) -> None:
    """Put a complete, checked staging copy in place of the live database: pause the fleet,
    close every pooled connection, swap (SQLite: ``staged`` is a file beside the live one,
    one ``os.replace``; PostgreSQL: ``staged`` is a database name, two renames in one
    transaction, then the old database is dropped), migrate to head when the copy is older,
    resume the fleet. A SIGKILL at any point leaves the old or the new database whole."""
    url = services.settings.database_url
    await _step(progress, fraction, "backup.step.swap")
    await _hold("staged")
    fleet = await _pause(services)
    try:
        await services.engine.dispose()
        if dump.db_kind(url) == "sqlite":
            await asyncio.to_thread(dump.sqlite_swap, Path(staged), dump.sqlite_path(url))
            await _hold("swapped")
        else:
            aside = await dump.pg_swap(url, str(staged))
            await _hold("swapped")
            with contextlib.suppress(Exception):
                await dump.pg_drop(url, aside)
        await _migrate(services)
    finally:
        await _resume(services, fleet)


async def replace_database(
    svc: Any, backup_id: str, meta: dict[str, Any], progress: Progress | None
) -> None:
    """Put ``backup_id`` (manifest ``meta``) in place of the live database (under the
    service's lock, after its safety backup); a backup of the other kind goes through
    :mod:`piyasa.backup.crossrestore`. ``BackupError`` before the swap: nothing changed."""
    await leftovers.sweep(svc)
    services = svc.services
    url = services.settings.database_url
    if meta["db_kind"] != dump.db_kind(url):
        from piyasa.backup.crossrestore import replace_across

        await replace_across(svc, backup_id, meta, progress)
        return
    if meta["db_kind"] == "sqlite":
        live = dump.sqlite_path(url)
        staged = live.with_name(live.name + ".restoring")
        try:
            await svc._unpack(backup_id, meta, staged, progress, (0.3, 0.7))
            await _step(progress, 0.7, "backup.step.count")
            check_rows(await asyncio.to_thread(dump.sqlite_counts, staged), meta)
            await swap_in(services, staged, progress, 0.8)
        finally:
            staged.unlink(missing_ok=True)
        return
    dump_file = Path(svc.work_dir) / f".restore-{backup_id}.dump"
    restoring = staging_name(url)
    try:
        await svc._unpack(backup_id, meta, dump_file, progress, (0.3, 0.55))
        await _step(progress, 0.55, "backup.step.load")
        snap = await dump.pg_restore_into(url, dump_file, restoring)
        if snap.rows != meta.get("rows"):
            await dump.pg_drop(url, restoring)
        check_rows(snap, meta)
        await swap_in(services, restoring, progress, 0.85)
    finally:
        dump_file.unlink(missing_ok=True)


def _db_name(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).database or "postgres"


async def _pause(services: Any) -> Any:
    fleet = services.extras.get("fleet")
    if fleet is not None:
        await fleet.stop()
    return fleet


async def _resume(services: Any, fleet: Any) -> None:
    from piyasa.admin.setup.dbswitch import _restart_fleet

    await services.engine.dispose()
    await _restart_fleet(services, fleet)


async def _migrate(services: Any) -> None:
    from piyasa.db.migrate import pending, upgrade

    if await pending(services.engine):
        log.info("restored database is older than this version: migrating to head")
        await upgrade(services.engine)


async def test_restore(svc: Any, backup_id: str, progress: Progress | None) -> BackupInfo:
    """Unpack into a scratch database (a temporary SQLite file, a temporary PostgreSQL
    database), compare its row counts with the manifest, mark the backup."""
    meta = await svc._meta(backup_id)
    await leftovers.sweep(svc)
    scratch = Path(tempfile.mkdtemp(prefix=".test-restore-", dir=svc.work_dir)) / "payload"
    try:
        await svc._unpack(backup_id, meta, scratch, progress, (0.0, 0.7))
        if progress:
            await progress(0.7, "backup.step.count")
        if meta["db_kind"] == "sqlite":
            snap = await asyncio.to_thread(dump.sqlite_counts, scratch)
        else:
            server, role = svc.services.settings.database_url, "live"
            if dump.db_kind(server) != "postgresql":  # a PostgreSQL backup, SQLite live
                from piyasa.backup.crossrestore import scratch_url

                server, role = scratch_url(svc), "scratch"
                if not server:
                    raise BackupError("backup.cross_needs_pg", db_kind=meta["db_kind"])
            name = leftovers.scratch_db_name("piyasa_test_restore")
            await asyncio.to_thread(leftovers.mark, scratch.parent, name, role)
            try:
                snap = await dump.pg_restore_into(server, scratch, name)
            finally:
                await dump.pg_drop(server, name)
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)
    check_rows(snap, meta)
    meta["test_restored_at"] = meta["verified_at"] = now_s().isoformat()
    await asyncio.to_thread(svc.storage.set_meta, backup_id, meta)
    if progress:
        await progress(1.0, "backup.step.done")
    return svc._info(meta)
