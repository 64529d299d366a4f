"""The world of the several-instances tests (tests/e2e/test_instances.py): N real `piyasa up`
processes on one fresh PostgreSQL schema, leases in PostgreSQL or in a Redis of the
world's own, sharing one Telegram sandbox and one fake OpenAI server, all started here.

    async with cluster_world(tmp, "redis", seed=my_seed) as world:
        for name in ("a", "b", "c"):
            await world.start(name)
        live = await world.instances()          # rows of `instances`, gone_at IS NULL
        await world.kill("a")                   # SIGKILL, and reaped

The local servers run on the caller's event loop, so every wait here is async (blocking
waits on a process go to a thread): a blocking wait would stop the servers the processes
talk to. A :class:`RoleWatch` samples the roles while the world runs, so "exactly one
holder at any time" is checked between the assertions too, not only at them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from piyasa.config import load_settings
from piyasa.db.engine import create_engine
from piyasa.sandbox.llm_server import FakeOpenAIServer
from piyasa.services import Services
from piyasa.tasks import wait_for
from tests.conftest import (
    SKIP_POSTGRES,
    _drop_pg_schema,
    _make_pg_schema,
    _postgres_up,
    postgres_schema_url,
    skip_or_fail,
)
from tests.e2e.procs import PiyasaProcess, base_env, run_cli
from tests.servers import OwnRedis
from tests.waiting import HANG_S, PatientSandbox

# What `/health` spells out: the admin role's three parts, and the scheduler jobs' roles.
SINGLETON_ROLES = ("admin-bot", "alerts", "scheduler", "backups", "rollups")


@dataclass(frozen=True)
class Instance:
    """A live row of ``instances`` (``gone_at IS NULL``); ``bots`` are telegram ids."""

    id: str
    roles: tuple[str, ...]
    bots: tuple[int, ...]
    heartbeat_at: datetime


@dataclass
class ClusterWorld:
    """Everything the tests drive; see :func:`cluster_world`."""

    tmp: Path
    leases: str  # "postgresql" or "redis"
    url: str  # the schema's database URL
    sb: PatientSandbox
    telegram_url: str
    llm: FakeOpenAIServer
    llm_url: str
    redis: OwnRedis | None
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, PiyasaProcess] = field(default_factory=dict)

    def env(self, name: str) -> dict[str, str]:
        """The environment of instance ``name`` (its own data dir and ports)."""
        redis = {"PIYASA_REDIS_URL": self.redis.url(0)} if self.redis else {}
        return base_env(
            self.tmp / name,
            PIYASA_DATABASE_URL=self.url,
            PIYASA_TELEGRAM_API_URL=self.telegram_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=self.llm_url,
            PIYASA_LLM_MODEL="gpt-4o-mini",
            **redis,
            **self.extra_env,
        )

    def services(self) -> Services:
        """A service container on the world's database, as a second writer (close it)."""
        return Services.build(load_settings(self.env("writer")))

    # -- the processes ------------------------------------------------------------------

    async def start(self, name: str) -> PiyasaProcess:
        """Start `piyasa up` as instance ``name`` and wait until it is ready."""
        proc = PiyasaProcess(["up"], self.env(name), self.tmp / f"{name}.log")
        self.procs[name] = proc
        await asyncio.to_thread(proc.wait_http, "/readyz", 200)
        return proc

    def alive(self) -> dict[str, PiyasaProcess]:
        return {n: p for n, p in self.procs.items() if p.proc.poll() is None}

    def name_of(self, instance_id: str) -> str | None:
        """The name of the process an instance id (``host:pid:random``) belongs to."""
        for name, proc in self.procs.items():
            if f":{proc.proc.pid}:" in instance_id:
                return name
        return None

    async def kill(self, name: str) -> None:
        """SIGKILL instance ``name`` and reap it."""
        proc = self.procs[name]
        proc.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.proc.wait)

    def output(self) -> str:
        """The tail of every process's output, for a failure message."""
        return "\n".join(f"--- {n}\n{p.output()[-1500:]}" for n, p in self.procs.items())

    def refused(self) -> list[str]:
        """409s a poller of a process received (each logs "409 Conflict for @bot: ...")."""
        return [
            f"{name}: {line}"
            for name, proc in self.procs.items()
            for line in proc.output().splitlines()
            if "409 Conflict for" in line
        ]

    def conflicts(self, bot_ids: list[int]) -> int:
        """409s the sandbox answered to getUpdates of ``bot_ids`` (to any socket, even
        one whose process had died: the next poll supersedes a parked one)."""
        return sum(
            1 for b in bot_ids for c in self.sb.calls("getUpdates", b) if c["error_code"] == 409
        )

    # -- the database ---------------------------------------------------------------------

    async def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        engine = create_engine(self.url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    async def instances(self) -> list[Instance]:
        """The live rows of ``instances``, oldest first, bots as telegram ids."""
        ids = dict(await self.query("SELECT id, telegram_id FROM bots"))
        rows = await self.query(
            "SELECT id, roles, bots, heartbeat_at FROM instances WHERE gone_at IS NULL "
            "ORDER BY started_at"
        )
        return [
            Instance(r[0], tuple(r[1] or ()), tuple(sorted(ids[b] for b in r[2] or ())), r[3])
            for r in rows
        ]

    async def running(self) -> list[Instance]:
        """Live rows whose process is alive: a SIGKILLed one's row stays until marked gone."""
        alive = {f":{p.proc.pid}:" for p in self.alive().values()}
        return [i for i in await self.instances() if any(a in i.id for a in alive)]

    # -- the status page ----------------------------------------------------------------

    def api_health(self, name: str, key: str | None = None) -> dict[str, Any]:
        """``/api/health`` of instance ``name`` (blocking: call it in a thread), the full
        view with an API key; components by name."""
        request = urllib.request.Request(self.procs[name].http_url + "/api/health")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=HANG_S) as resp:
            body = json.load(resp)
        return {c["name"]: c for c in body["components"]}

    async def component(self, name: str, component: str, key: str | None = None) -> Any:
        """One component of instance ``name``'s ``/api/health`` ({} while it has none)."""
        try:
            found = await asyncio.to_thread(self.api_health, name, key)
        except (urllib.error.URLError, OSError):
            return {}
        return found.get(component, {})


class RoleWatch:
    """Samples the singleton roles of the running processes every ``interval`` s for the
    life of the world and keeps every sample where two of them listed the same role.

    The rows are written at each heartbeat (5 s), so a role just lost on a stop could show
    twice for a moment; in these tests roles move only when their holder is SIGKILLed,
    and a dead process's row is not counted."""

    def __init__(self, world: ClusterWorld, interval: float = 0.5) -> None:
        self.world = world
        self.interval = interval
        self.samples = 0
        self.overlaps: list[dict[str, list[str]]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="role-watch")

    async def stop(self) -> None:
        """Let the sample under way finish (a cancelled query would leave its connection
        half closed), then stop."""
        if self._task is not None:
            self._stopping.set()
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):  # a sample may race a process's exit
                running = await self.world.running()
                holders = {
                    role: [self.world.name_of(i.id) or i.id for i in running if role in i.roles]
                    for role in SINGLETON_ROLES
                }
                self.samples += 1
                if any(len(h) > 1 for h in holders.values()):
                    self.overlaps.append(holders)
            with contextlib.suppress(TimeoutError):
                await wait_for(self._stopping.wait(), self.interval)


@contextlib.asynccontextmanager
async def cluster_world(
    tmp: Path,
    leases: str,
    *,
    seed: Callable[[ClusterWorld], Awaitable[None]],
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[ClusterWorld]:
    """A fresh PostgreSQL schema migrated by `piyasa migrate`, a Redis of the world's own
    when ``leases == "redis"``, the Telegram sandbox and the fake OpenAI server; ``seed``
    fills the sandbox and the migrated database before any instance starts. Stops every process
    (SIGTERM), the servers, and drops the schema."""
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    redis = None
    if leases == "redis":
        redis = OwnRedis()
        redis.start()
    schema = "t_" + uuid.uuid4().hex[:12]
    await _make_pg_schema(schema)
    sb = PatientSandbox()
    llm = FakeOpenAIServer(latency=(0.0, 0.05))
    world = ClusterWorld(
        tmp=tmp,
        leases=leases,
        url=postgres_schema_url(schema),
        sb=sb,
        telegram_url="",
        llm=llm,
        llm_url=await llm.start("127.0.0.1", 0),
        redis=redis,
        extra_env=dict(extra_env or {}),
    )
    try:
        world.telegram_url = await sb.start("127.0.0.1", 0)
        migrated = await asyncio.to_thread(run_cli, ["migrate"], world.env("migrate"))
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        await seed(world)
        yield world
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in world.procs.values()))
        await sb.stop()
        await llm.stop()
        await _drop_pg_schema(schema)
        if redis is not None:
            redis.kill()


__all__ = ["SINGLETON_ROLES", "ClusterWorld", "Instance", "RoleWatch", "cluster_world"]
