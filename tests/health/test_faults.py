"""Stop real servers and watch health notice within 10 s, then recover.

Each test owns its server (a Redis or a throwaway PostgreSQL cluster on a free port);
the shared ones on 6379/5432 are never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health.probes import DatabaseProbe, RedisProbe
from piyasa.cache import RedisCache
from piyasa.config import Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.services import Services
from tests.e2e.procs import free_port
from tests.health.conftest import EventWaiter

DETECT_S = 10.0
FAST = Thresholds(interval_s=0.5, probe_timeout_s=1.0)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} after {timeout}s")


# --- Redis ----------------------------------------------------------------------------


class OwnRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

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
        _wait_port(self.port, self.proc)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


async def test_redis_killed_goes_critical_and_recovers(
    settings: Settings, own_redis: OwnRedis, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    import dataclasses

    services = Services.build(dataclasses.replace(settings, redis_url=url), engine=engine)
    assert isinstance(services.cache, RedisCache)
    health = HealthService(services, probes=[RedisProbe(), DatabaseProbe()], thresholds=FAST)
    waiter = EventWaiter(health)
    await services.cache.set("k", 1)
    await health.start()
    try:
        redis = health.snapshot().get("redis")
        assert redis.state is State.HEALTHY, redis.summary
        assert redis.details["keys"] >= 1 and redis.details["used_memory_bytes"] > 0

        own_redis.kill()
        t0 = time.monotonic()
        mark = len(waiter.events)
        event = await waiter.until("redis", State.CRITICAL, DETECT_S, after=mark)
        assert time.monotonic() - t0 < DETECT_S
        assert "unreachable" in event.summary
        assert health.snapshot().get("database").state is State.HEALTHY  # nothing else blamed

        own_redis.start()
        mark = len(waiter.events)
        await waiter.until("redis", State.HEALTHY, DETECT_S, after=mark)
    finally:
        await health.stop()
        await services.close()
    rows = [(t.component, t.state) for t in reversed(await health.history.transitions("redis"))]
    assert rows[:3] == [
        ("redis", State.HEALTHY),
        ("redis", State.CRITICAL),
        ("redis", State.HEALTHY),
    ]


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_bin() -> Path | None:
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
            _wait_port(self.port, self.proc)
            self._wait_accepting()
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.log.read_text()[-2000:]}") from None

    def _wait_accepting(self, timeout: float = 15.0) -> None:
        """An open port is not a ready server: wait until it accepts connections."""
        deadline = time.monotonic() + timeout
        probe = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while subprocess.run(probe, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL on {self.port} not accepting after {timeout}s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the whole group: postmaster and every backend, like a crashed host."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # backends leave with the group
                alive = subprocess.run(
                    ["pgrep", "-f", "--", f"-D {self.data}"], capture_output=True
                )
                if alive.returncode != 0:
                    break
                time.sleep(0.05)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb (/usr/lib/postgresql/*/bin) is not installed")
    server = OwnPostgres(bindir)
    server.start()
    yield server
    server.remove()


async def test_postgres_killed_goes_critical_readyz_503_then_recovers(
    settings: Settings, own_postgres: OwnPostgres
) -> None:
    engine = create_engine(own_postgres.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    health = HealthService(services, probes=[DatabaseProbe()], thresholds=FAST)
    services.extras["health"] = health
    waiter = EventWaiter(health)
    await health.start()
    try:
        async with TestClient(TestServer(make_web_app(services))) as client:
            db = health.snapshot().get("database")
            assert db.state is State.HEALTHY and db.details["type"] == "postgresql"
            assert db.details["size_bytes"] > 0
            assert (await client.get("/readyz")).status == 200

            own_postgres.kill()
            t0 = time.monotonic()
            await waiter.until("database", State.CRITICAL, DETECT_S, after=len(waiter.events))
            assert time.monotonic() - t0 < DETECT_S
            assert (await client.get("/readyz")).status == 503
            public = await (await client.get("/api/health")).json()
            assert public["status"] == "critical"

            own_postgres.start()
            await waiter.until("database", State.HEALTHY, DETECT_S, after=len(waiter.events))
            assert (await client.get("/readyz")).status == 200
    finally:
        await health.stop()
        await services.close()
    # The outage could not be written while the database was down; it was kept and
    # written after recovery, in order.
    check = create_engine(own_postgres.url)
    from piyasa.admin.health import History

    try:
        states = [t.state for t in reversed(await History(make_sessionmaker(check)).transitions())]
    finally:
        await check.dispose()
    assert states[:3] == [State.HEALTHY, State.CRITICAL, State.HEALTHY]
