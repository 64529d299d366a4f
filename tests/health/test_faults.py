"""Stop real servers and watch health notice (critical), then recover (not critical).

Each test owns its server (a Redis or a throwaway PostgreSQL cluster on a free port);
the shared ones on 6379/5432 are never touched. The tests assert the transitions that
matter, never how fast they came or a latency class: after recovery a loaded machine's
round trip may read as warning, which is recovered all the same.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
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
from tests.conftest import skip_or_fail
from tests.e2e.procs import free_port
from tests.health.conftest import UP, EventWaiter
from tests.waiting import HANG_S, wait_until

# Critical means down or no answer within the probe timeout; a slow answer is a warning at
# worst (a loaded machine's round trip is no outage).
FAST = Thresholds(interval_s=0.5, probe_timeout_s=1.0, latency_critical_ms=1000.0)


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    import socket

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, f"a server listening on {port}")


def _critical_flags(states: list[State]) -> list[bool]:
    """Down or not, each change of that once: [up, down, up] however warning came and went."""
    flags = [s is State.CRITICAL for s in states]
    return [f for i, f in enumerate(flags) if i == 0 or f != flags[i - 1]]


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
            self.proc.wait(HANG_S)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    if not shutil.which("redis-server"):
        skip_or_fail("redis-server is not installed")
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
        assert redis.state in UP, redis.summary
        assert redis.details["keys"] >= 1 and redis.details["used_memory_bytes"] > 0

        own_redis.kill()
        mark = len(waiter.events)
        event = await waiter.until("redis", State.CRITICAL, after=mark)
        assert "unreachable" in event.summary
        assert health.snapshot().get("database").state in UP  # nothing else blamed

        own_redis.start()
        mark = len(waiter.events)
        await waiter.until("redis", UP, after=mark)
    finally:
        await health.stop()
        await services.close()
    states = [t.state for t in reversed(await health.history.transitions("redis"))]
    assert _critical_flags(states)[:3] == [False, True, False], states


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


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _pg_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL's initdb (/usr/lib/postgresql/*/bin) is not installed")
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
            assert db.state in UP and db.details["type"] == "postgresql"
            assert db.details["size_bytes"] > 0
            assert (await client.get("/readyz")).status == 200

            own_postgres.kill()
            await waiter.until("database", State.CRITICAL, after=len(waiter.events))
            assert (await client.get("/readyz")).status == 503
            public = await (await client.get("/api/health")).json()
            assert public["status"] == "critical"

            own_postgres.start()
            await waiter.until("database", UP, after=len(waiter.events))
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
    assert _critical_flags(states)[:3] == [False, True, False], states
