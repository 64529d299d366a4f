"""SIGKILL during a cross-engine restore (real processes): a SQLite backup restored into
PostgreSQL, and a PostgreSQL backup into SQLite through ``PIYASA_BACKUP_SCRATCH_URL``.

Each restore is killed three times: mid-way (as soon as its staging database appears,
whatever it is doing then), at the swap (``PIYASA_RESTORE_HOLD=staged``: the staging copy
complete, the live database not yet touched) and right after it (``=swapped``). The live
database is then the old one or the new one, whole: every table compared row by row with
what it held before the restore, or with the backup's source at backup time. The next
restore sweeps what the last kill left (its ``.xrestore-*`` directory, the scratch
database its marker names), and `piyasa up` (not the demo: on the restored database)
starts on it and sweeps the last kill's leftovers at its start."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from piyasa.backup.leftovers import MARK
from tests.backup.conftest import make_services, pg_admin_url, pg_copy
from tests.backup.test_cross_restore import typed_rows
from tests.backup.test_faults import (
    FILLER_ROWS,
    _fill,
    _kill_when,
    _spawn,
    _state,
    up_starts,
)
from tests.backup.test_faults_pg import _databases, _psql
from tests.e2e.procs import PiyasaProcess, base_env, run_cli
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]
RESTORE = ["backup", "restore", "--yes", "--no-safety"]


async def _rows(url: str, data: Path) -> dict[str, list[str]]:
    """Every Piyasa table of the database at ``url``, row by row (engine-neutral)."""
    services = make_services(url, data)
    try:
        return await typed_rows(services)
    finally:
        await services.close()


def _xrestore_dirs(backups: Path) -> set[str]:
    return {p.name for p in backups.iterdir() if p.name.startswith(".xrestore-")}


def _marked(backups: Path) -> set[str]:
    """The scratch databases named by the markers in the backup directory."""
    found = set()
    for marker in backups.glob(f".xrestore-*/{MARK}"):
        try:
            found.add(json.loads(marker.read_text())["database"])
        except (OSError, ValueError):  # being written, or swept meanwhile
            continue
    return found


async def _held_and_killed(args: list[str], env: dict[str, str], point: str, log: Path) -> None:
    """Run ``piyasa ARGS`` with ``PIYASA_RESTORE_HOLD=point``; SIGKILL it once held there."""
    proc = PiyasaProcess(args, {**env, "PIYASA_RESTORE_HOLD": point}, log)
    try:
        await asyncio.to_thread(proc.wait_output, f"restore held at {point}")
    finally:
        assert proc.stop(signal.SIGKILL) == -signal.SIGKILL, proc.output()


async def _up_starts_and_sweeps(env: dict[str, str], backups: Path, tmp_path: Path) -> None:
    """`piyasa up` starts on the database of ``env`` and its backup schedule sweeps the
    killed restores' directories at start."""

    def swept(up: PiyasaProcess) -> None:
        wait_until(lambda: not _xrestore_dirs(backups), "the start-up sweep", output=up.output)

    await up_starts(env, tmp_path, swept)


@pytest.fixture
async def pg_url(
    tmp_path_factory: pytest.TempPathFactory, _drop_templates: None
) -> AsyncIterator[str]:
    async with pg_copy(tmp_path_factory) as url:
        yield url


def _pg_fill(name: str) -> None:
    """30 rows of 512 KB text: a dump and a copy that take a moment."""
    _psql(
        name,
        "INSERT INTO settings (key, value, version, updated_by, updated_at) "
        "SELECT 'pg.' || g, to_json(repeat(md5(g::text), 16000)), 1, 't', now() "
        "FROM generate_series(1, 30) g",
    )


async def test_sigkill_during_a_sqlite_backup_restored_into_postgres(
    sqlite_db_url: str, pg_url: str, tmp_path: Path
) -> None:
    data, backups = tmp_path / "data", tmp_path / "data" / "backups"
    lite = base_env(data, PIYASA_DATABASE_URL=sqlite_db_url)
    _fill(Path(make_url(sqlite_db_url).database or ""), "filler", FILLER_ROWS)
    made = await asyncio.to_thread(run_cli, ["backup", "create", "--json"], lite)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    at_backup = await _rows(sqlite_db_url, data)

    # the same data dir (secret key, backup directory), PostgreSQL live with other rows
    name = make_url(pg_url).database or ""
    env = base_env(data, PIYASA_DATABASE_URL=pg_url)
    _pg_fill(name)
    before = await _rows(pg_url, data)
    assert before != at_backup

    proc = _spawn([*RESTORE[:2], backup_id, *RESTORE[2:]], env)
    killed = await asyncio.to_thread(
        _kill_when, proc, lambda: f"{name}_restoring" in _databases(), "the staging database"
    )
    assert killed, "the restore finished before it could be killed"
    assert await _rows(pg_url, data) == before  # the live database was not touched
    first = _xrestore_dirs(backups)
    assert first  # the killed restore's scratch copy is left ...

    args = [*RESTORE[:2], backup_id, *RESTORE[2:]]
    await _held_and_killed(args, env, "staged", tmp_path / "staged.log")
    assert not first & _xrestore_dirs(backups)  # ... and swept by the next restore
    assert f"{name}_restoring" in _databases()  # complete, never swapped in
    assert await _rows(pg_url, data) == before

    await _held_and_killed(args, env, "swapped", tmp_path / "swapped.log")
    assert await _rows(pg_url, data) == at_backup  # the new database, whole
    assert f"{name}_pre_restore" in _databases()  # the old one aside, replaced next time

    await _up_starts_and_sweeps(env, backups, tmp_path)
    assert _psql(name, "SELECT count(*) FROM settings WHERE key LIKE 'filler.%'") == str(
        FILLER_ROWS
    )


async def test_sigkill_during_a_postgres_backup_restored_into_sqlite(
    sqlite_db_url: str, pg_url: str, tmp_path: Path
) -> None:
    data, backups = tmp_path / "data", tmp_path / "data" / "backups"
    name = make_url(pg_url).database or ""
    _pg_fill(name)
    made = await asyncio.to_thread(
        run_cli, ["backup", "create", "--json"], base_env(data, PIYASA_DATABASE_URL=pg_url)
    )
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    at_backup = await _rows(pg_url, data)

    live = Path(make_url(sqlite_db_url).database or "")
    env = base_env(
        data, PIYASA_DATABASE_URL=sqlite_db_url, PIYASA_BACKUP_SCRATCH_URL=pg_admin_url()
    )
    _fill(live, "lite", 4)
    before = await _rows(sqlite_db_url, data)
    seen: set[str] = set()  # every scratch database a marker named (dropped at the end)

    def scratch_made() -> bool:
        seen.update(_marked(backups))
        return bool(seen & _databases())

    try:
        args = [*RESTORE[:2], backup_id, *RESTORE[2:]]
        proc = _spawn(args, env)
        killed = await asyncio.to_thread(_kill_when, proc, scratch_made, "the scratch database")
        assert killed, "the restore finished before it could be killed"
        assert await _rows(sqlite_db_url, data) == before
        first = set(seen)
        assert first & _databases()  # left on the scratch server, named by its marker ...

        await _held_and_killed(args, env, "staged", tmp_path / "staged.log")
        seen.update(_marked(backups))
        assert not first & _databases()  # ... and dropped by the next restore's sweep
        assert live.with_name(live.name + ".restoring").exists()  # complete, not swapped in
        assert await _rows(sqlite_db_url, data) == before

        await _held_and_killed(args, env, "swapped", tmp_path / "swapped.log")
        seen.update(_marked(backups))
        assert await _rows(sqlite_db_url, data) == at_backup  # the new database, whole
        assert seen & _databases()  # the last kill's scratch database is still there

        await _up_starts_and_sweeps(env, backups, tmp_path)
        assert not seen & _databases()  # dropped at start
        assert not live.with_name(live.name + ".restoring").exists()
        assert _state(live)[0] == "ok"
    finally:
        for db in seen:
            _psql("postgres", f'DROP DATABASE IF EXISTS "{db}"')
