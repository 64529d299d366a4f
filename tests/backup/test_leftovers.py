"""The sweep of what killed backup operations leave (piyasa/backup/leftovers.py): scratch
directories go, a scratch database named by a marker is dropped on its server, and one
that cannot be dropped (server away) keeps its directory and marker for the next sweep,
with a warning naming it. Real PostgreSQL for the scratch server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from piyasa.backup import leftovers
from piyasa.backup.service import BackupService
from piyasa.bench._procs import free_port
from tests.backup.conftest import _pg_exec, pg_admin_url
from tests.backup.test_faults_pg import _databases
from tests.conftest import SKIP_POSTGRES, _postgres_up, skip_or_fail


async def test_sweep_drops_marked_scratch_databases_and_keeps_unreachable_ones(
    svc_sqlite: BackupService, caplog: pytest.LogCaptureFixture
) -> None:
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    svc = svc_sqlite
    extra = svc.services.settings.extra
    name = leftovers.scratch_db_name("piyasa_xrestore")
    await _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        work = Path(svc.work_dir)
        marked, plain = work / ".xrestore-marked", work / ".xrestore-plain"
        for d in (marked, plain):
            d.mkdir()
            (d / "payload.dump").write_bytes(b"x" * 1024)
        leftovers.mark(marked, name)
        partial = work / "piyasa-x.pbk.partial"
        partial.write_bytes(b"torn")
        live = Path(str(svc.services.settings.database_url).split("///", 1)[1])
        staged = live.with_name(live.name + ".restoring")
        staged.write_bytes(b"staged")

        # the scratch server is away: the marked directory and its database stay, reported
        extra["PIYASA_BACKUP_SCRATCH_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        with caplog.at_level(logging.WARNING, logger="piyasa.backup.leftovers"):
            await leftovers.sweep(svc)
        assert name in caplog.text and "not dropped" in caplog.text
        assert (marked / leftovers.MARK).exists() and name in _databases()
        assert not (marked / "payload.dump").exists()  # only the marker waits
        assert not plain.exists() and not partial.exists() and not staged.exists()

        # reachable again: the next sweep drops it and removes the directory
        extra["PIYASA_BACKUP_SCRATCH_URL"] = pg_admin_url()
        await leftovers.sweep(svc)
        assert name not in _databases()
        assert not marked.exists()
    finally:
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}"')
