"""What Piyasa leaves on disk is readable by its owner only: the data dir is 0700 and every
file in it 0600 (database, its -wal/-shm, secret key, log), also for an older install."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from piyasa.config import load_settings
from piyasa.db.engine import create_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose(data: Path) -> dict[str, str]:
    """Entries of ``data`` (and itself) that group or others may use."""
    return {
        str(p.relative_to(data.parent)): oct(mode(p))
        for p in (data, *data.rglob("*"))
        if mode(p) & 0o077
    }


def test_a_first_run_under_a_permissive_umask_creates_only_private_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    env["PIYASA_DATA_DIR"] = str(data)
    done = subprocess.run(
        [sys.executable, "-m", "piyasa.cli", "user", "add", "ops", "--role", "viewer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),  # what most shells start with
    )
    assert done.returncode == 0, done.stderr
    assert {"piyasa.db", "secret.key"} <= {p.name for p in data.iterdir()}
    assert loose(data) == {}


async def test_the_database_write_ahead_files_follow_the_database_file(tmp_path: Path) -> None:
    """SQLite creates -wal and -shm with the database file's mode: a new database file
    is made 0600 whatever the umask, so they are private while the database is open."""
    previous = os.umask(0o022)
    try:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'piyasa.db'}")
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.commit()
            wal, shm = tmp_path / "piyasa.db-wal", tmp_path / "piyasa.db-shm"
            assert wal.exists() and shm.exists()
            assert (mode(tmp_path / "piyasa.db"), mode(wal), mode(shm)) == (0o600,) * 3
        await engine.dispose()
    finally:
        os.umask(previous)


def test_an_older_install_is_made_private_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    for name in ("piyasa.db", "piyasa.db-wal", "piyasa.db-shm", "piyasa.log", "secret.key"):
        (data / name).write_text("x")
        os.chmod(data / name, 0o644)
    (data / "backups").mkdir()
    os.chmod(data / "backups", 0o755)
    assert len(loose(data)) == 7
    load_settings({"PIYASA_DATA_DIR": str(data)}, create_dirs=True)
    assert mode(data) == 0o700 and mode(data / "backups") == 0o700
    assert {mode(p) for p in data.iterdir() if p.is_file()} == {0o600}
