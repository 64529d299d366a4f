"""Fault tests with real processes: SIGKILL during a backup and during a restore.

A backup killed midway leaves no listed archive (and the next one works); a restore killed
midway leaves the old or the new database whole, and `piyasa up` starts on it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.procs import PiyasaProcess, base_env, free_port, run_cli
from tests.waiting import PatientSandbox, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FILLER_ROWS = 24  # × 1 MB of hex text: big enough that each step takes a moment
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"  # the admin bot of `up_starts`


def _fill(db: Path, prefix: str, n: int) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO settings (key, value, version, updated_by, updated_at) "
            "VALUES (?, ?, 1, 't', CURRENT_TIMESTAMP)",
            [(f"{prefix}.{i}", json.dumps(secrets.token_hex(1 << 19))) for i in range(n)],
        )
    conn.close()


def _state(db: Path) -> tuple[str, int]:
    conn = sqlite3.connect(db)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return ok, conn.execute("SELECT count(*) FROM settings").fetchone()[0]
    finally:
        conn.close()


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "piyasa.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen, seen: callable, what: str) -> bool:
    """SIGKILL ``proc`` as soon as ``seen()``; False if it finished first."""

    def ready() -> bool:
        return seen() or proc.poll() is not None

    wait_until(ready, what, interval=0.002)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


@pytest.fixture
def world(sqlite_db_url: str, tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """A migrated SQLite database (the template copy) with filler rows, and its env."""
    data = tmp_path / "data"
    db = tmp_path / "live.db"
    env = base_env(data, PIYASA_DATABASE_URL=sqlite_db_url)
    _fill(db, "filler", FILLER_ROWS)
    return env, db, data / "backups"


def _listed(env: dict[str, str]) -> list[str]:
    """The listed backup ids, read in this process (what every surface lists)."""
    import asyncio

    from piyasa.backup.service import BackupService
    from tests.backup.conftest import make_services

    async def ids() -> list[str]:
        services = make_services(env["PIYASA_DATABASE_URL"], Path(env["PIYASA_DATA_DIR"]))
        try:
            return [b.id for b in await BackupService(services).list()]
        finally:
            await services.close()

    return asyncio.run(ids())


def test_sigkill_during_backup_leaves_nothing_listed(world) -> None:
    env, _db, backups = world
    proc = _spawn(["backup", "create"], env)
    killed = _kill_when(
        proc,
        lambda: backups.is_dir() and any(p.name.endswith(".partial") for p in backups.iterdir()),
        "the archive being written",
    )
    assert killed, "the backup finished before it could be killed"
    assert any(p.name.endswith(".partial") for p in backups.iterdir())  # the torn file is there
    assert _listed(env) == []  # ... and never listed
    done = run_cli(["backup", "create", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert _listed(env) == [json.loads(done.stdout)["id"]]
    assert not any(p.name.startswith(".snap-") for p in backups.iterdir())  # leftovers swept


async def up_starts(
    env: dict[str, str], tmp_path: Path, then: Callable[[PiyasaProcess], object] | None = None
) -> None:
    """`piyasa up` on the database of ``env`` (a real admin bot on a Telegram sandbox: the
    demo would run on its own database) answers /readyz; ``then(up)`` (in a thread) waits
    for what the test needs of the running process; it stops cleanly."""
    sb = PatientSandbox()
    sb.add_bot(token=TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin")
    port = free_port()
    await sb.start("127.0.0.1", port)
    bot = {"PIYASA_ADMIN_BOT_TOKEN": TOKEN, "PIYASA_TELEGRAM_API_URL": f"http://127.0.0.1:{port}"}
    up = PiyasaProcess(["up"], {**env, **bot}, tmp_path / "up.log")
    try:
        await asyncio.to_thread(up.wait_http, "/readyz", 200)
        assert "Telegram sandbox" not in up.output()  # on the configured database
        if then is not None:
            await asyncio.to_thread(then, up)
    finally:
        code = up.stop()
        await sb.stop()
    assert code == 0, up.output()


async def test_sigkill_during_restore_keeps_old_or_new_and_up_starts(world, tmp_path: Path) -> None:
    env, db, _ = world
    made = run_cli(["backup", "create", "--json"], env)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    at_backup = _state(db)
    _fill(db, "later", 8)
    before_restore = _state(db)
    staged = db.with_name(db.name + ".restoring")

    # killed while the archive is unpacked next to the live database: the old one stays
    proc = _spawn(["backup", "restore", backup_id, "--yes", "--no-safety"], env)
    assert _kill_when(proc, staged.exists, "the restore's staged copy")
    assert _state(db) == before_restore

    # killed right after the staged copy went (the swap): old or new, never torn
    proc = _spawn(["backup", "restore", backup_id, "--yes", "--no-safety"], env)
    appeared = [False]

    def swapped() -> bool:
        appeared[0] = appeared[0] or staged.exists()
        return appeared[0] and not staged.exists()

    _kill_when(proc, swapped, "the swap")
    assert _state(db) in (before_restore, at_backup)

    await up_starts(env, tmp_path)  # on the restored database, not the demo's
    assert _state(db)[0] == "ok"
