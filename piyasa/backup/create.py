"""Making one backup (the service's ``create``): snapshot the live database into a payload
file, pack it (zstd + AES-256-GCM) under a staging name, verify it, then store it with its
manifest. Only then is it listed; a failure or a kill leaves at most staging files, which
the next backup sweeps (:func:`piyasa.backup.leftovers.sweep`, under the service's lock)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import piyasa
from piyasa.backup import archive, dump, leftovers
from piyasa.backup.model import BackupError, BackupInfo, Progress, now_s

log = logging.getLogger(__name__)


async def create_backup(svc: Any, kind: str, progress: Progress | None) -> BackupInfo:
    """Snapshot → pack (staging name) → verify → store with its manifest → listed."""
    await leftovers.sweep(svc)
    url = svc.services.settings.database_url
    kind_db = dump.db_kind(url)
    at = now_s()
    taken = {m["id"] for m in await svc._metas()}
    backup_id = svc._new_id(kind, at, taken)
    staging = svc.storage.staging(backup_id)
    payload = Path(tempfile.mkdtemp(prefix=".snap-", dir=svc.work_dir)) / "payload"
    try:
        if progress:
            await progress(0.0, "backup.step.snapshot")
        if kind_db == "sqlite":
            snap = await asyncio.to_thread(dump.sqlite_snapshot, dump.sqlite_path(url), payload)
        else:
            snap = await dump.pg_snapshot(url, payload)
        meta: dict[str, Any] = {
            "id": backup_id,
            "created_at": at.isoformat(),
            "kind": kind,
            "db_kind": kind_db,
            "schema_revision": snap.schema_revision,
            "piyasa_version": piyasa.__version__,
            "rows": snap.rows,
        }
        size = payload.stat().st_size

        def pack(*, tick: Any) -> dict[str, Any]:
            with staging.open("wb") as out:
                trailer = archive.pack(
                    payload,
                    out,
                    meta,
                    secret_key=svc._secret,
                    passphrase=svc.passphrase,
                    tick=tick,
                )
                out.flush()
                os.fsync(out.fileno())
            return trailer

        try:
            trailer = await svc._thread(
                pack, progress=progress, step="backup.step.pack", span=(0.1, 0.7), total=size
            )
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC: the partial file goes, the error says why
                raise BackupError("backup.disk_full") from None
            raise
        meta.update(trailer)
        meta["size_bytes"] = staging.stat().st_size
        await svc._thread(
            archive.check,
            staging,
            progress=progress,
            step="backup.step.verify",
            span=(0.7, 0.9),
            total=size,
            secret_key=svc._secret,
            passphrase=svc.passphrase,
        )
        meta["verified_at"] = now_s().isoformat()
        if progress:
            await progress(0.9, "backup.step.store")
        await asyncio.to_thread(svc.storage.put, staging, backup_id, meta)
    finally:
        staging.unlink(missing_ok=True)
        shutil.rmtree(payload.parent, ignore_errors=True)  # with any -journal SQLite left
    if progress:
        await progress(1.0, "backup.step.done")
    log.info("backup %s stored (%d bytes, %s)", backup_id, meta["size_bytes"], kind_db)
    return svc._info(meta)
