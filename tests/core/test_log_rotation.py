"""Issue 12: ``piyasa.log`` rotates by size, every file stays 0600, no line is lost between
files, and the in-memory ring the /health download reads keeps working."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from piyasa.admin.health import actions
from piyasa.logs import RING, PrivateRotatingFileHandler

LIMIT = 2000  # bytes per file in these tests (10 MiB in production)


def files_oldest_first(data: Path) -> list[Path]:
    rotated = sorted(data.glob("piyasa.log.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, data / "piyasa.log"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # what a default shell gives: files would come out 0644
    try:
        yield
    finally:
        os.umask(previous)


def test_rotation_keeps_0600_loses_nothing_and_the_ring_still_serves(
    tmp_path: Path,
    umask_022: None,
    services,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "piyasa.log"
    path.write_text("from an older version\n")
    os.chmod(path, 0o644)
    handler = PrivateRotatingFileHandler(path, max_bytes=LIMIT, backups=100)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("piyasa.test.rotation")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.addHandler(RING)
    RING.lines.clear()
    try:
        for i in range(400):
            logger.info("line %04d %s", i, "x" * 40)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(RING)
        handler.close()
    files = files_oldest_first(tmp_path)
    assert len(files) > 5, "it rotated"
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
    assert all(f.stat().st_size <= LIMIT for f in files)
    lines = [ln for f in files for ln in f.read_text().splitlines()]
    assert lines[0] == "from an older version"
    assert [ln.split()[2] for ln in lines[1:]] == [f"{i:04d}" for i in range(400)]
    _name, data, n = actions.recent_logs(services)
    assert n == 400 and b"line 0399" in data and b"line 0000" in data
    RING.lines.clear()


def test_old_files_beyond_the_count_are_deleted(tmp_path: Path) -> None:
    handler = PrivateRotatingFileHandler(tmp_path / "piyasa.log", max_bytes=LIMIT, backups=2)
    record = logging.LogRecord("piyasa.x", logging.INFO, __file__, 1, "y" * 500, None, None)
    for _ in range(40):
        handler.emit(record)
    handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "piyasa.log",
        "piyasa.log.1",
        "piyasa.log.2",
    ]


CHILD = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from piyasa.logs import setup_logging
    setup_logging("INFO", [], Path(sys.argv[1]), max_bytes={limit}, backups=100)
    log = logging.getLogger("piyasa.child")
    for i in range(300):
        log.info("logged %04d", i)
        print(f"printed {{i:04d}}", flush=True)
    """
)


def test_a_detached_process_rotates_its_stdout_with_the_log(tmp_path: Path) -> None:
    """`piyasa up --detach` has stdout and stderr on piyasa.log: after a rotation they
    follow the new file instead of growing the renamed one."""
    path = tmp_path / "piyasa.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # as start_detached
    with os.fdopen(fd, "ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", CHILD.format(limit=LIMIT), str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, path.read_text()[-2000:]
    files = files_oldest_first(tmp_path)
    assert len(files) > 5
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o600"}
    assert all(f.stat().st_size <= LIMIT + 100 for f in files)  # one print may follow a record
    text = "\n".join(f.read_text() for f in files)
    lines = text.splitlines()
    assert [ln.split()[-1] for ln in lines if "logged" in ln] == [f"{i:04d}" for i in range(300)]
    assert [ln.split()[-1] for ln in lines if "printed" in ln] == [f"{i:04d}" for i in range(300)]
    assert sum("logged" in ln for ln in lines) == 300  # once each: not via stderr as well
