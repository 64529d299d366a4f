"""Singleton roles by election on real PostgreSQL and Redis: one holder at a time, a dead
holder replaced, a holder that cannot renew stops its work before anyone else starts.

The elector runs here with a short lease (TTL 1.2 s, renewal every 0.3 s): protocol
values, so the tests take seconds, not the production 10 s. Waits use tests.waiting."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from piyasa.cache import RedisCache
from piyasa.cluster.elector import Elector
from piyasa.cluster.lease import LeaseBackend, LocalLease, RedisLease, SqlLease, make_lease
from piyasa.config import load_settings
from piyasa.db.engine import create_engine
from tests.conftest import (
    REDIS_URL,
)
from tests.waiting import finishes, until

FAST = {"ttl_s": 1.2, "renew_s": 0.3, "stop_margin_s": 0.4}


class Work:
    """A role's work as the instances run it: who is running it right now, and a log of
    (monotonic time, instance, 'start'|'stop')."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.log: list[tuple[float, str, str]] = []
        self.overlaps = 0

    def hooks(self, who: str) -> dict[str, Any]:
        async def gain() -> None:
            if self.running:
                self.overlaps += 1
            self.running.add(who)
            self.log.append((time.monotonic(), who, "start"))

        async def loss() -> None:
            self.running.discard(who)
            self.log.append((time.monotonic(), who, "stop"))

        return {"on_gain": gain, "on_loss": loss}


def electors(backends: list[LeaseBackend], work: Work, n: int) -> list[Elector]:
    out = []
    for i in range(n):
        e = Elector(backends[i], f"host:{1000 + i}:{uuid.uuid4().hex[:6]}", **FAST)
        e.watch("admin", **work.hooks(e.instance_id))
        out.append(e)
    return out


def kill(e: Elector) -> None:
    """Like SIGKILL for the election: its renewals stop, nothing is released."""
    for r in e.roles.values():
        if r.task is not None:
            r.task.cancel()


async def test_exactly_one_holder_and_a_killed_holder_is_replaced(
    backends: list[LeaseBackend],
) -> None:
    work = Work()
    group = electors(backends, work, 3)
    for e in group:
        await e.start()
    holders = [e for e in group if e.is_leader("admin")]
    assert len(holders) == 1 and len(work.running) == 1
    # several renewal rounds later, still the same single holder
    first = holders[0]
    await until(
        lambda: first.roles["admin"].changes == 1 and first.is_leader("admin"),
        "the holder to keep renewing",
    )
    renewed_until = first.roles["admin"].valid_until
    await until(lambda: first.roles["admin"].valid_until > renewed_until, "a renewal")
    assert [e.is_leader("admin") for e in group].count(True) == 1

    killed_at = time.monotonic()
    kill(first)
    await until(
        lambda: work.running - {first.instance_id}, "another instance to take over the work"
    )
    print(f"takeover after {time.monotonic() - killed_at:.2f} s (lease TTL {FAST['ttl_s']} s)")
    assert sum(e.is_leader("admin") for e in group if e is not first) == 1
    for e in group:
        if e is not first:
            await e.stop()
    assert work.overlaps <= 1  # the killed one never ran its on_loss: it is "dead"


async def test_a_clean_stop_hands_over_at_once(backends: list[LeaseBackend]) -> None:
    work = Work()
    a, b = electors(backends, work, 2)
    await a.start()
    await b.start()
    assert a.is_leader("admin") and not b.is_leader("admin")
    await a.stop()  # stops the work, then releases the lease
    assert work.running == set()
    await until(lambda: work.running == {b.instance_id}, "the standby to take over")
    await b.stop()
    assert work.overlaps == 0


class Partitioned:
    """A backend whose calls hang once cut off, as across a network partition."""

    def __init__(self, inner: LeaseBackend) -> None:
        self.inner, self.kind, self.cut = inner, inner.kind, False

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool:
        if self.cut:
            await asyncio.Event().wait()
        return await self.inner.try_hold(name, holder, ttl_s)

    async def release(self, name: str, holder: str) -> None:
        if self.cut:
            await asyncio.Event().wait()
        await self.inner.release(name, holder)

    async def holders(self) -> dict[str, str]:
        return await self.inner.holders()


async def test_a_cut_off_holder_stops_before_another_starts(
    backends: list[LeaseBackend],
) -> None:
    work = Work()
    cut = Partitioned(backends[0])
    a = Elector(cut, "host:1:aaaaaa", **FAST)
    b = Elector(backends[1], "host:2:bbbbbb", **FAST)
    a.watch("admin", **work.hooks(a.instance_id))
    b.watch("admin", **work.hooks(b.instance_id))
    await a.start()
    await b.start()
    assert a.is_leader("admin")
    cut.cut = True
    await until(lambda: b.instance_id in work.running, "the other side to take over")
    stops = [t for t, who, what in work.log if who == a.instance_id and what == "stop"]
    starts = [t for t, who, what in work.log if who == b.instance_id and what == "start"]
    assert stops and starts and stops[0] < starts[0], work.log
    assert work.overlaps == 0
    assert not a.is_leader("admin")
    kill(a)
    await b.stop()


async def test_epoch_grows_with_each_new_holder(backends: list[LeaseBackend]) -> None:
    one, two = backends[0], backends[1]
    assert await one.try_hold("r", "one", 0.5)
    epoch = one.epochs["r"]  # type: ignore[attr-defined]
    assert await one.try_hold("r", "one", 0.5)  # a renewal keeps the epoch
    assert one.epochs["r"] == epoch  # type: ignore[attr-defined]
    assert not await two.try_hold("r", "two", 0.5)
    await one.release("r", "one")
    assert await two.try_hold("r", "two", 0.5)
    assert two.epochs["r"] == epoch + 1  # type: ignore[attr-defined]
    assert (await one.holders()).get("r") == "two"
    await two.release("r", "one")  # not the holder: nothing released
    assert (await one.holders()).get("r") == "two"


async def test_sqlite_is_one_process_the_lease_is_simply_held(tmp_path: Any) -> None:
    settings = load_settings({"PIYASA_DATA_DIR": str(tmp_path / "data")})
    engine = create_engine(settings.database_url)
    try:
        lease = make_lease(settings, engine, None)
        assert isinstance(lease, LocalLease)
        work = Work()
        e = Elector(lease, "host:1:abcdef")
        e.watch("admin", **work.hooks(e.instance_id))
        await e.start()
        assert e.is_leader("admin") and work.running == {e.instance_id}
        await e.stop()
        assert work.running == set()
    finally:
        await engine.dispose()


async def test_the_lease_store_follows_the_deployment(tmp_path: Any) -> None:
    """SQLite: local; PostgreSQL: the leases table; PostgreSQL + Redis: Redis keys."""
    pg = "postgresql://postgres@127.0.0.1:5432/test"
    data = str(tmp_path / "data")
    plain = load_settings({"PIYASA_DATA_DIR": data, "PIYASA_DATABASE_URL": pg})
    with_redis = load_settings(
        {"PIYASA_DATA_DIR": data, "PIYASA_DATABASE_URL": pg, "PIYASA_REDIS_URL": REDIS_URL}
    )
    engine = create_engine(plain.database_url)
    cache = RedisCache(REDIS_URL, namespace="test:lease:")
    try:
        assert isinstance(make_lease(plain, engine, cache), SqlLease)
        assert isinstance(make_lease(with_redis, engine, cache), RedisLease)
    finally:
        await cache.close()
        await engine.dispose()


async def test_a_lone_holder_keeps_its_role_while_the_store_is_away(
    backends: list[LeaseBackend],
) -> None:
    """One instance on PostgreSQL, the database down: the admin bot and the alerts go on
    (nobody else is alive to take them); with a peer alive it would stop (test above)."""
    work = Work()
    cut = Partitioned(backends[0])
    a = Elector(cut, "host:1:aaaaaa", alone=lambda: True, **FAST)
    a.watch("admin", **work.hooks(a.instance_id))
    await a.start()
    cut.cut = True
    rounds = a.roles["admin"].valid_until
    # several TTLs of failed renewals later, still running
    await until(lambda: a.roles["admin"].valid_until > rounds + 3 * FAST["ttl_s"], "retries")
    assert a.is_leader("admin") and work.running == {a.instance_id}
    cut.cut = False
    kill(a)


class Contested:
    """A lease store where this instance wins once, then another instance holds it."""

    kind = "local"

    def __init__(self) -> None:
        self.asks = 0

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool:
        self.asks += 1
        return self.asks == 1

    async def release(self, name: str, holder: str) -> None:
        return None


async def test_stop_ends_even_while_a_lost_role_is_still_winding_down_its_start() -> None:
    """The role is lost while its start is still running and slow to cancel; stopping the
    elector then (its loop task cancelled inside that wait) must end the loop, not let it
    swallow the cancel and renew forever (stop() hung: the CI hang at 900 s)."""
    winding_down = asyncio.Event()

    async def slow_start() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            winding_down.set()
            await asyncio.sleep(0.5)  # cleaning up takes a while
            raise

    e = Elector(Contested(), "host:1:a", ttl_s=10, renew_s=0.05, stop_margin_s=1)
    await e.start()
    e.watch("admin", on_gain=slow_start)  # contested from now on, by the role's loop task
    await until(winding_down.is_set, "the lost role's start to be cancelled")
    await finishes(e.stop(), "the elector to stop")
    assert not e.is_leader("admin") and e.roles["admin"].task is None
