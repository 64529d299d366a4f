"""SIGKILL during a PostgreSQL restore (real processes): the live database keeps the old
data or holds the new, never half of either, and the next restore cleans up and works."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.backup.conftest import pg_admin_url
from tests.backup.test_faults import _kill_when, _spawn, up_starts
from tests.conftest import SKIP_POSTGRES, _postgres_up, skip_or_fail
from tests.e2e.procs import base_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]


def _psql(database: str, sql: str) -> str:
    u = make_url(pg_admin_url(database)).set(drivername="postgresql")
    out = subprocess.run(
        ["psql", u.render_as_string(hide_password=False), "-Atc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _databases() -> set[str]:
    return set(_psql("postgres", "SELECT datname FROM pg_database").split())


def _settings(name: str) -> int:
    return int(_psql(name, "SELECT count(*) FROM settings"))


@pytest.fixture
def pg_world(tmp_path: Path):
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    name = "b16k_" + uuid.uuid4().hex[:8]
    _psql("postgres", f'CREATE DATABASE "{name}"')
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL=pg_admin_url(name))
    try:
        assert run_cli(["migrate"], env).returncode == 0
        _psql(
            name,
            "INSERT INTO settings (key, value, version, updated_by, updated_at) "
            "SELECT 'f.' || g, to_json(repeat(md5(g::text), 16000)), 1, 't', now() "
            "FROM generate_series(1, 60) g",
        )
        yield env, name
    finally:
        for db in (name, f"{name}_pre_restore", f"{name}_restoring"):
            _psql(
                "postgres",
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'",
            )
            _psql("postgres", f'DROP DATABASE IF EXISTS "{db}"')


async def test_sigkill_during_postgres_restore_keeps_old_or_new(pg_world, tmp_path: Path) -> None:
    env, name = pg_world
    made = run_cli(["backup", "create", "--json"], env)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    _psql(name, "DELETE FROM settings WHERE key LIKE 'f.1%'")
    before, at_backup = _settings(name), 60
    assert before < at_backup

    proc = _spawn(["backup", "restore", backup_id, "--yes", "--no-safety"], env)
    killed = _kill_when(proc, lambda: f"{name}_restoring" in _databases(), "pg_restore")
    assert killed
    assert _settings(name) == before  # the live database was not touched

    proc = _spawn(["backup", "restore", backup_id, "--yes", "--no-safety"], env)
    seen = [False]

    def swapping() -> bool:
        dbs = _databases()
        seen[0] = seen[0] or f"{name}_restoring" in dbs
        return seen[0] and f"{name}_restoring" not in dbs

    _kill_when(proc, swapping, "the swap")
    assert _settings(name) in (before, at_backup)

    await up_starts(env, tmp_path)  # `piyasa up` starts on whichever it is

    done = run_cli(["backup", "restore", backup_id, "--yes", "--no-safety"], env)
    assert done.returncode == 0, done.stderr
    assert _settings(name) == at_backup
    assert not {f"{name}_restoring", f"{name}_pre_restore"} & _databases()  # cleaned up
