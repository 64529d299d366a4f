"""The backup service: one object every surface (chat, CLI, scheduler) talks to.

Reach it with :func:`backup_service` (``services.extras["backup"]``, built on first use).
Every method returns plain data (:class:`BackupInfo`, :class:`ScheduleStatus`) or raises
:class:`BackupError` whose ``key`` is a catalogue key (``backup.*``) and ``params`` its
parameters, so a surface shows the reason in the reader's language and nothing secret.

Work on files runs in worker threads (the event loop keeps answering). One backup
operation at a time per data dir: a second one (another chat, the CLI, the scheduler) gets
``backup.busy`` at once (an ``flock`` on ``<backups>/.lock``, so other processes too).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from piyasa.backup import archive, dump
from piyasa.backup.model import (
    DEFAULT_RETENTION,
    EXTRAS_KEY,
    KINDS,
    BackupError,
    BackupInfo,
    Progress,
    ScheduleStatus,
    now_s,
    parse_ts,
    sub_progress,
)
from piyasa.backup.retention import kept_by
from piyasa.backup.storage import LocalStorage, S3Storage, make_storage

__all__ = [
    "DEFAULT_RETENTION",
    "EXTRAS_KEY",
    "KINDS",
    "BackupError",
    "BackupInfo",
    "BackupService",
    "Progress",
    "ScheduleStatus",
    "backup_service",
]

log = logging.getLogger(__name__)
EXT = ".pbk"


class BackupService:
    """Create, list, verify, test-restore, restore and delete backups; own the schedule.

    ``services`` is :class:`piyasa.services.Services`. ``progress`` (if given) is awaited
    with a fraction 0..1 and the catalogue key of the step (``backup.step.*``)."""

    def __init__(self, services: Any, *, passphrase: str | None = None) -> None:
        self.services = services
        extra = services.settings.extra
        self.passphrase = passphrase or extra.get("PIYASA_BACKUP_PASSPHRASE") or None
        self.storage: LocalStorage | S3Storage = make_storage(services.settings)
        self.work_dir = Path(
            extra.get("PIYASA_BACKUP_DIR") or Path(services.settings.data_dir) / "backups"
        )
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.scheduler: Any = None  # piyasa.backup.schedule.BackupScheduler, when running
        self.schedule_config: dict[str, Any] | None = None  # last stored, when no scheduler

    # -- plumbing ---------------------------------------------------------------------

    @property
    def _secret(self) -> str:
        return self.services.settings.secret_key.reveal()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        fd = os.open(self.work_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackupError("backup.busy") from None
            yield
        finally:
            os.close(fd)

    async def _thread(
        self,
        fn: Any,
        *args: Any,
        progress: Progress | None,
        step: str,
        span: tuple[float, float],
        total: int = 0,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, tick=..., **kwargs)`` in a thread, reporting progress within
        ``span`` every half second while it runs (``total`` bytes = the end of the span)."""
        done = [0]

        def tick(n: int) -> None:
            done[0] = n

        task = asyncio.ensure_future(asyncio.to_thread(fn, *args, tick=tick, **kwargs))
        lo, hi = span
        if progress:
            await progress(lo, step)
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if progress and not task.done() and total:
                await progress(lo + (hi - lo) * min(1.0, done[0] / total), step)
        return task.result()

    def _info(self, meta: dict[str, Any], kept: tuple[str, ...] = ()) -> BackupInfo:
        return BackupInfo(
            id=meta["id"],
            created_at=datetime.fromisoformat(meta["created_at"]),
            kind=meta["kind"],
            size_bytes=int(meta["size_bytes"]),
            db_kind=meta["db_kind"],
            schema_revision=meta.get("schema_revision", ""),
            piyasa_version=meta.get("piyasa_version", ""),
            storage=self.storage.name,
            rows={k: int(v) for k, v in (meta.get("rows") or {}).items()},
            verified_at=parse_ts(meta.get("verified_at")),
            test_restored_at=parse_ts(meta.get("test_restored_at")),
            kept_by=kept or (meta["kind"],),
        )

    def _retention(self) -> tuple[dict[str, int], str]:
        sched = self.scheduler
        if sched is not None:
            return sched.retention, sched.timezone
        return dict(DEFAULT_RETENTION), "UTC"

    async def _metas(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.storage.metas)

    async def _meta(self, backup_id: str) -> dict[str, Any]:
        if not backup_id or "/" in backup_id or backup_id.startswith("."):
            raise BackupError("backup.unknown", id=backup_id[:80])
        found = await asyncio.to_thread(self.storage.meta, backup_id)
        if not found:
            raise BackupError("backup.unknown", id=backup_id[:80])
        return found

    def _new_id(self, kind: str, at: datetime, taken: set[str]) -> str:
        base = f"piyasa-{at:%Y%m%dT%H%M%SZ}-{kind}"
        name, n = base + EXT, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}{EXT}"
        return name

    # -- the API ------------------------------------------------------------------------

    async def create(self, kind: str = "manual", *, progress: Progress | None = None) -> BackupInfo:
        """Take, pack, store and verify a new backup of the live database."""
        if kind not in KINDS:
            raise BackupError("backup.bad_kind", kind=kind)
        async with self._exclusive():
            return await self._create(kind, progress)

    async def _create(self, kind: str, progress: Progress | None) -> BackupInfo:
        from piyasa.backup.create import create_backup

        return await create_backup(self, kind, progress)

    async def list(self) -> list[BackupInfo]:
        """Complete backups, newest first; never a partial archive."""
        metas = await self._metas()
        retention, tz = self._retention()
        kept = kept_by(
            ((m["id"], datetime.fromisoformat(m["created_at"]), m["kind"]) for m in metas),
            retention,
            tz,
        )
        infos = [self._info(m, kept.get(m["id"], ())) for m in metas]
        return sorted(infos, key=lambda b: (b.created_at, b.id), reverse=True)

    async def get(self, backup_id: str) -> BackupInfo:
        """One backup; ``BackupError("backup.unknown")`` when there is none by that id."""
        return self._info(await self._meta(backup_id))

    async def verify(self, backup_id: str, *, progress: Progress | None = None) -> BackupInfo:
        """Checksum + decryption of the whole archive; ``BackupError`` on failure
        (``backup.corrupt``, ``backup.wrong_key``)."""
        meta = await self._meta(backup_id)
        path = await asyncio.to_thread(self.storage.fetch, backup_id)
        try:
            await self._check_archive(path, meta, progress, (0.0, 1.0))
        finally:
            self.storage.release(path)
        meta["verified_at"] = now_s().isoformat()
        await asyncio.to_thread(self.storage.set_meta, backup_id, meta)
        if progress:
            await progress(1.0, "backup.step.done")
        return self._info(meta)

    async def _check_archive(
        self, path: Path, meta: dict[str, Any], progress: Progress | None, span: tuple[float, float]
    ) -> None:
        def header_meta() -> dict[str, Any]:
            with path.open("rb") as src:
                return archive.read_header(src)[0].get("meta") or {}

        inner = await asyncio.to_thread(header_meta)
        if inner.get("id") != meta["id"] or inner.get("rows") != meta.get("rows"):
            raise BackupError("backup.corrupt", reason="manifest does not match the archive")
        await self._thread(
            archive.check,
            path,
            progress=progress,
            step="backup.step.verify",
            span=span,
            total=int(meta.get("payload_bytes") or 0),
            secret_key=self._secret,
            passphrase=self.passphrase,
        )

    async def _unpack(
        self,
        backup_id: str,
        meta: dict[str, Any],
        dest: Path,
        progress: Progress | None,
        span: tuple[float, float],
    ) -> None:
        path = await asyncio.to_thread(self.storage.fetch, backup_id)
        try:
            await self._thread(
                archive.unpack_to,
                path,
                dest,
                progress=progress,
                step="backup.step.unpack",
                span=span,
                total=int(meta.get("payload_bytes") or 0),
                secret_key=self._secret,
                passphrase=self.passphrase,
            )
        finally:
            self.storage.release(path)

    def _check_schema(self, meta: dict[str, Any]) -> None:
        from alembic.script import ScriptDirectory

        from piyasa.db.migrate import alembic_config

        rev = meta.get("schema_revision") or ""
        if not rev:
            return
        try:
            ScriptDirectory.from_config(alembic_config()).get_revision(rev)
        except Exception:
            raise BackupError("backup.newer_schema", revision=rev) from None

    async def test_restore(self, backup_id: str, *, progress: Progress | None = None) -> BackupInfo:
        """Restore into a scratch database (a temporary SQLite file, a temporary PostgreSQL
        database) and compare row counts with the manifest (``backup.rows_mismatch``)."""
        async with self._exclusive():
            return await self._test_restore(backup_id, progress)

    async def _test_restore(self, backup_id: str, progress: Progress | None) -> BackupInfo:
        from piyasa.backup.restore import test_restore

        return await test_restore(self, backup_id, progress)

    async def restore(
        self,
        backup_id: str,
        *,
        actor: str,
        progress: Progress | None = None,
        safety: bool = True,
    ) -> BackupInfo | None:
        """Replace the live database with ``backup_id``; returns the SAFETY backup taken
        first (None only with ``safety=False``). Verifies, pauses the fleet, swaps
        atomically, migrates an older schema to head, resumes the fleet. A backup of the
        other database kind goes through :mod:`piyasa.backup.crossrestore`."""
        from piyasa.backup import restore as restore_mod

        meta = await self.check_restore(backup_id)
        async with self._exclusive():
            taken = None
            if safety:
                sub = sub_progress(progress, 0.0, 0.3)
                taken = await self._create("safety", sub)
            log.info("restore of %s started by %s", backup_id, actor)
            await restore_mod.replace_database(self, backup_id, meta, progress)
        if progress:
            await progress(1.0, "backup.step.done")
        log.info("restore of %s done (by %s)", backup_id, actor)
        return taken

    async def check_restore(self, backup_id: str) -> dict[str, Any]:
        """Refuse (``BackupError``) what :meth:`restore` would refuse before touching
        anything: an unknown id, a newer schema, a cross-kind restore that cannot run
        (:func:`piyasa.backup.crossrestore.refusal`). Returns the manifest."""
        meta = await self._meta(backup_id)
        if meta["db_kind"] != dump.db_kind(self.services.settings.database_url):
            from piyasa.backup.crossrestore import refusal

            refusal(self, meta)  # copied across through `db copy`'s code, or refused here
        self._check_schema(meta)
        return meta

    def using(self, passphrase: str | None) -> BackupService:
        """This service, opening archives with ``passphrase`` (a restore from chat with a
        typed passphrase): the same storage, lock and schedule; ``self`` is unchanged."""
        if not passphrase:
            return self
        other = copy.copy(self)
        other.passphrase = passphrase
        return other

    async def new_passphrase(self) -> str:
        """Make a backup passphrase (24 random bytes, base32 in groups of 4), store it sealed
        in the data dir's config file and use it for every new backup from now on. Returned
        to be SHOWN ONCE (private chat / terminal only): it is the key that opens backups
        after the data dir is lost, so the operator keeps it elsewhere."""
        import base64
        import secrets

        from piyasa.admin.setup.configfile import update_config

        raw = base64.b32encode(secrets.token_bytes(24)).decode().rstrip("=")
        phrase = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        settings = self.services.settings
        await asyncio.to_thread(
            update_config,
            settings.data_dir,
            {"PIYASA_BACKUP_PASSPHRASE": phrase},
            self.services.box,
        )
        self.passphrase = phrase
        return phrase

    async def delete(self, backup_id: str) -> None:
        await self._meta(backup_id)
        await asyncio.to_thread(self.storage.delete, backup_id)

    async def prune(self) -> list[str]:
        """Delete the scheduled backups no retention rule keeps; their ids."""
        gone = [b.id for b in await self.list() if not b.kept_by]
        for backup_id in gone:
            await asyncio.to_thread(self.storage.delete, backup_id)
        return gone

    async def open_archive(self, backup_id: str) -> Path:
        """A local file holding the archive (to send as a download). For S3 it is a fresh
        copy in the cache directory: the caller removes it when sent."""
        await self._meta(backup_id)
        return await asyncio.to_thread(self.storage.fetch, backup_id)

    def schedule_status(self) -> ScheduleStatus:
        from piyasa.backup.schedule import status_of

        return status_of(self)

    async def set_schedule(
        self,
        *,
        daily: str | None,
        weekly: str | None,
        monthly: str | None,
        timezone: str,
        retention: dict[str, int],
    ) -> ScheduleStatus:
        """``daily`` "HH:MM", ``weekly`` "mon HH:MM", ``monthly`` "1 HH:MM" (None = off);
        ``BackupError`` (``backup.bad_time`` / ``backup.bad_timezone`` /
        ``backup.bad_retention``) on bad input, nothing changed."""
        from piyasa.backup.schedule import save_schedule

        return await save_schedule(
            self,
            daily=daily,
            weekly=weekly,
            monthly=monthly,
            timezone=timezone,
            retention=retention,
        )


def backup_service(services: Any) -> BackupService:
    """The process's :class:`BackupService` (``services.extras["backup"]``), built on first use."""
    found = services.extras.get(EXTRAS_KEY)
    if not isinstance(found, BackupService):
        found = services.extras[EXTRAS_KEY] = BackupService(services)
    return found
