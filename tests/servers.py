"""Private servers a test owns and may kill for real: a Redis and a PostgreSQL cluster,
each on a free port of its own. The shared servers (6379, 5432) are never touched.

``own_redis`` and ``own_postgres`` (fixtures in ``tests/conftest.py``) start one per test;
``OwnRedis.kill()``/``OwnPostgres.kill()`` take it down like a crashed host (SIGKILL),
``start()`` brings it back on the same port with the same data.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from piyasa.bench._procs import free_port
from tests.waiting import HANG_S, wait_until


def wait_port(port: int, proc: subprocess.Popen) -> None:
    """Until something listens on 127.0.0.1:``port``; fails at once if ``proc`` exited."""

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, f"a server listening on {port}")


class OwnRedis:
    """A redis-server of the test's own, without persistence (a restart starts empty)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(HANG_S)


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class OwnPostgres:
    """A throwaway cluster run as the postgres OS user, in its own process group."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="piyasa-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "pg.log"
        self.proc: subprocess.Popen | None = None
        shutil.chown(self.root, "postgres", "postgres")
        initdb = f"-D {self.data} -A trust -U postgres --no-sync -E UTF8".split()
        subprocess.run(
            [*self._as_postgres("initdb"), *initdb],
            check=True,
            capture_output=True,
            user="postgres",
            group="postgres",
        )

    def _as_postgres(self, program: str) -> list[str]:
        # Run as our own child (Popen user=), not through runuser: the killed postmaster
        # must be reaped by us, or its zombie PID keeps postmaster.pid "alive".
        return [str(self.bindir / program)]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-D {self.data} -p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        opts += " -c fsync=off -c full_page_writes=off"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self._as_postgres("postgres"), *opts.split()],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user="postgres",
                group="postgres",
            )
        try:
            wait_port(self.port, self.proc)
            self._wait_accepting()
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.log.read_text()[-2000:]}") from None

    def _wait_accepting(self) -> None:
        """An open port is not a ready server: wait until it accepts connections."""
        probe = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        wait_until(
            lambda: subprocess.run(probe, check=False).returncode == 0,
            f"PostgreSQL on {self.port} to accept connections",
        )

    def kill(self) -> None:
        """SIGKILL the whole group: postmaster and every backend, like a crashed host."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(HANG_S)
            wait_until(  # backends leave with the group
                lambda: (
                    subprocess.run(
                        ["pgrep", "-f", "--", f"-D {self.data}"], capture_output=True
                    ).returncode
                    != 0
                ),
                f"the killed PostgreSQL's backends (-D {self.data}) to be gone",
            )

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
