"""Private Redis and PostgreSQL servers a benchmark owns and may kill for real, each on a
free port of its own (the machine's shared servers are never touched). Like
``tests/servers.py``, for benchmarks, which cannot import the tests.

:func:`postgres_unavailable` says why this machine cannot give a private PostgreSQL
(no ``initdb``, or not root, which running the cluster as the ``postgres`` user needs).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from piyasa.bench._procs import free_port

START_CEILING_S = 60.0


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_CEILING_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {START_CEILING_S:.0f} s")


def _kill(proc: subprocess.Popen | None, group: bool = False) -> None:
    if proc is not None and proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(START_CEILING_S)


class PrivateRedis:
    """A redis-server without persistence; :meth:`kill` takes it down like a crashed host."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "redis-server")

    def kill(self) -> None:
        _kill(self.proc)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_unavailable() -> str | None:
    """Why no private PostgreSQL can run here, or None when one can."""
    if _pg_bin() is None:
        return "no PostgreSQL server binaries (initdb) on this machine"
    if os.geteuid() != 0:
        return "a private cluster runs as the postgres user, which needs root"
    return None


class PrivatePostgres:
    """A throwaway cluster (trust auth, no fsync) in its own process group."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            raise RuntimeError(postgres_unavailable() or "no PostgreSQL")
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="piyasa-bench-pg-"))
        self.data = self.root / "data"
        self.proc: subprocess.Popen | None = None
        shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            [str(bindir / "initdb"), *f"-D {self.data} -A trust -U postgres --no-sync".split()],
            check=True,
            capture_output=True,
            user="postgres",
            group="postgres",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-D {self.data} -p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        opts += " -c fsync=off -c full_page_writes=off"
        with open(self.root / "pg.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), *opts.split()],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user="postgres",
                group="postgres",
            )
        _wait_port(self.port, self.proc, "postgres")
        ready = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + START_CEILING_S
        while subprocess.run(ready, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.port} not accepting connections")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, like a crashed host."""
        _kill(self.proc, group=True)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["PrivatePostgres", "PrivateRedis", "postgres_unavailable"]
