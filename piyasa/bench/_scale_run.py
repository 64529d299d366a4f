"""One run of ``piyasa bench scale``: N real ``piyasa up`` processes against a fresh
:class:`~piyasa.bench._scale_world.World`, on one PostgreSQL schema and one Redis (or, for
the naive baseline, each on its own SQLite file: the single-instance path, which polls
every bot and keeps its own caps, as every instance did before issue 18).

The fleet is seeded paused; when every instance is ready (and, with leases, every bot is
owned and the bots are spread) the fleet is resumed and the measured window starts
(``t0``, epoch s). After ``seconds`` the fleet budget is set to 0 (no more decisions; a
paused fleet would stop sending too), the outbox drains, the processes stop (SIGTERM) and the figures are read from the sandbox and the database(s).
Environment: ``PIYASA_BENCH_CEILING_S`` (a phase's hang ceiling, default 240 s);
``PIYASA_BENCH_SCALE_KEEP_LOGS`` (a directory the instances' logs are copied to).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from piyasa.bench._diagnose_live import _launch
from piyasa.bench._procs import clean_env
from piyasa.bench._scale_world import ADMIN_TOKEN, World
from piyasa.bench.runtime import _chat_id, _membership, _token
from piyasa.bench.startup import _status

SECRET = "bench-scale-shared-secret-key-0123456789abcdef"
CEILING_S = float(
    os.environ.get("PIYASA_BENCH_CEILING_S", "240")
)  # a phase (start, spread, drain, stop) still going after this is a hang
ROLES = ("admin", "backups", "rollups")


@dataclass
class Instance:
    name: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    cpu0: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds of the live process so far (from /proc)."""
        import psutil

        t = psutil.Process(self.pid).cpu_times()
        return t.user + t.system

    def peak_rss_mb(self) -> float:
        """Peak resident set size of the live process, MiB (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def refused(self) -> int:
        """409s a live poller of this process was answered (each logged once)."""
        return self.log.read_text(errors="replace").count("409 Conflict for")


async def _sql(url: str, statement: str, write: bool = False) -> list[tuple]:
    from sqlalchemy import text

    from piyasa.db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() if write else engine.connect() as conn:
            result = await conn.execute(text(statement))
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def _seed(
    env: dict[str, str], bots: int, chats: int, cap_per_min: float, workers: int
) -> None:
    """Migrate, then the fleet (paused), its groups, the cap and the concurrent
    generations per instance (``fleet_workers``), in one transaction."""
    from sqlalchemy import insert, select

    from piyasa.config import load_settings
    from piyasa.crypto import fingerprint
    from piyasa.db.migrate import upgrade
    from piyasa.db.models import Bot, Chat, Setting
    from piyasa.db.runtime_models import BotChat
    from piyasa.services import Services

    services = Services.build(load_settings(env))
    try:
        await upgrade(services.engine)
        rows = [
            {
                "telegram_id": int(_token(i).split(":")[0]),
                "token_encrypted": services.box.encrypt(_token(i)),
                "token_fingerprint": fingerprint(_token(i)),
                "username": f"bench{i}_bot",
                "display_name": f"Bench {i}",
                "persona": {"name": f"Bench{i}", "style": "teknik", "language": "tr"},
                "hourly_limit": 1_000_000,
            }
            for i in range(bots)
        ]
        groups = [
            {"telegram_id": _chat_id(j), "title": f"Bench {j}", "topics": ["bist", "fx"]}
            for j in range(chats)
        ]
        async with services.sessions() as session, session.begin():
            await session.execute(insert(Bot), rows)
            await session.execute(insert(Chat), groups)
            bot_of = dict((await session.execute(select(Bot.telegram_id, Bot.id))).all())
            chat_of = dict((await session.execute(select(Chat.telegram_id, Chat.id))).all())
            links = [
                {"bot_id": bot_of[int(_token(i).split(":")[0])], "chat_id": chat_of[_chat_id(j)]}
                for j, members in _membership(bots, chats, 1).items()
                for i in members
            ]
            await session.execute(insert(BotChat), links)
            for key, value in (
                ("max_msgs_per_min", cap_per_min),
                ("fleet_paused", True),
                ("footer_enabled", False),
                ("fleet_workers", workers),
            ):
                session.add(Setting(key=key, value=value))
    finally:
        await services.close()


def _db_url(env: dict[str, str]) -> str:
    from piyasa.config import load_settings

    return load_settings(env).database_url


async def _set(urls: list[str], key: str, value: str) -> None:
    """Change a fleet setting as another writer would: each instance re-reads within 2 s."""
    for url in urls:
        await _sql(
            url,
            f"UPDATE settings SET value = '{value}', version = version + 1 WHERE key = '{key}'",
            write=True,
        )


class Leases:
    """Who holds what, read from the same store the instances use (Redis or PostgreSQL)."""

    def __init__(self, env: dict[str, str]) -> None:
        from piyasa.cluster.lease import make_lease
        from piyasa.config import load_settings
        from piyasa.services import Services

        self.services = Services.build(load_settings(env))
        s = self.services
        self.lease = make_lease(s.settings, s.engine, s.cache)

    async def holders(self) -> dict[str, str]:
        return await self.lease.holders()

    async def close(self) -> None:
        await self.services.close()


async def _until(what: str, test: Any, procs: list[Instance], interval: float = 0.5) -> float:
    """Await ``test()`` true; seconds it took. A dead instance or the ceiling raises."""
    start = time.monotonic()
    while not await _try(test):
        for inst in procs:
            if inst.proc is not None and inst.proc.poll() not in (None, -signal.SIGKILL):
                tail = inst.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{inst.name} exited {inst.proc.returncode}:\n{tail}")
        if time.monotonic() - start > CEILING_S:
            last = getattr(test, "last", "")
            raise RuntimeError(f"{what}: not within {CEILING_S:.0f} s {last}")
        await asyncio.sleep(interval)
    return time.monotonic() - start


async def _try(test: Any) -> bool:
    """``test()``, or False when it failed (a busy database refusing a connection)."""
    try:
        return bool(await test())
    except Exception as exc:
        test.last = f"{type(exc).__name__}: {exc}"[:300]
        return False


def _spread(holders: dict[str, str], bot_ids: list[int], n: int) -> bool:
    """Every bot owned, by n instances, none above the fair share."""
    owners = Counter(holders.get(f"bot:{b}") for b in bot_ids)
    if None in owners or len(owners) != n:
        return False
    return max(owners.values()) <= math.ceil(len(bot_ids) / n)


async def run_once(
    *,
    instances: int,
    bots: int,
    chats: int,
    seconds: float,
    cap_per_min: float,
    workers: int,
    postgres_url: str,
    redis_url: str,
    naive: bool = False,
    kill_at: float | None = None,
) -> dict[str, Any]:
    """One measured run; returns its raw material for :func:`piyasa.bench._scale_figures`."""
    world = World(bots, chats)
    tmp = Path(tempfile.mkdtemp(prefix="piyasa-bench-scale-"))
    schema = "bench_scale_" + uuid.uuid4().hex[:10]
    procs: list[Instance] = []
    leases: Leases | None = None
    out: dict[str, Any] = {}
    try:
        urls = await world.ready()
        common = {
            "PIYASA_SECRET_KEY": SECRET,
            "PIYASA_ADMIN_BOT_TOKEN": ADMIN_TOKEN,
            "PIYASA_TELEGRAM_API_URL": urls["telegram"],
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": urls["llm"],
            "PIYASA_LLM_MODEL": "gpt-4o-mini",
            "PIYASA_LANG": "en",
        }
        if not naive:
            await _sql(postgres_url, f'CREATE SCHEMA "{schema}"', write=True)
            sep = "&" if "?" in postgres_url else "?"
            common["PIYASA_DATABASE_URL"] = f"{postgres_url}{sep}search_path={schema}"
            common["PIYASA_REDIS_URL"] = redis_url
        for k in range(instances):
            env = clean_env(tmp / f"i{k}", **common)
            (tmp / f"i{k}").mkdir(parents=True, exist_ok=True)
            procs.append(Instance(f"i{k}", env, tmp / f"i{k}.log"))
        db_urls = list(dict.fromkeys(_db_url(p.env) for p in procs))
        for k in range(len(db_urls)):
            await _seed(procs[k].env, bots, chats, cap_per_min, workers)
        for inst in procs:
            inst.proc = _launch(inst.env, inst.log)

        async def all_ready() -> bool:
            ports = [int(p.env["PIYASA_HTTP_PORT"]) for p in procs]
            codes = await asyncio.gather(*(asyncio.to_thread(_status, q, "/readyz") for q in ports))
            return all(c == 200 for c in codes)

        out["start_s"] = round(await _until("every instance ready", all_ready, procs), 1)
        bot_ids = [r[0] for r in await _sql(db_urls[0], "SELECT id FROM bots ORDER BY id")]
        if not naive:
            leases = Leases(procs[0].env)
            lz = leases

            async def spread() -> bool:
                return _spread(await lz.holders(), bot_ids, instances)

            out["spread_s"] = round(await _until("the bots spread", spread, procs), 1)
        await _set(db_urls, "fleet_paused", "false")
        t0 = time.time()
        for inst in procs:
            inst.cpu0 = inst.cpu_s()
        if kill_at is not None and leases is not None:
            await asyncio.sleep(max(0.0, t0 + kill_at - time.time()))
            out["failover"] = await _kill_holder(procs, leases, bot_ids)
        await asyncio.sleep(max(0.0, t0 + seconds - time.time()))
        for inst in procs:
            if inst.proc is not None and inst.proc.poll() is None:
                cpu = inst.cpu_s() - inst.cpu0
                inst.figures = {
                    "cpu_s": round(cpu, 1),
                    "cpu_share_of_core": round(cpu / seconds, 3),
                    "peak_rss_mb": inst.peak_rss_mb(),
                }
        # stop deciding, keep sending (a paused fleet's gate sends nothing): budget 0
        await _set(db_urls, "max_msgs_per_min", "0")
        live = [p for p in procs if p.proc is not None and p.proc.poll() is None]
        out["drain_s"] = round(await _until("the outbox to drain", _drained(db_urls), live), 1)
        out["stats"] = await world.stats()
        out["refused_live"] = sum(p.refused() for p in procs)
        out["rows"] = []
        for url in db_urls:
            out["rows"] += await _sql(
                url,
                "SELECT o.state, o.tg_chat_id, b.telegram_id, m.text, o.resends_after_ambiguity,"
                " o.decided_at, o.sent_at FROM outbox o JOIN messages m ON m.id = o.message_id"
                " JOIN bots b ON b.id = o.bot_id",
            )
        out["t0"] = t0
        out["instances"] = [{"name": p.name, **p.figures} for p in procs]
    finally:
        for inst in procs:
            await asyncio.to_thread(_stop, inst)
        if leases is not None:
            await leases.close()
        world.close()
        if not naive:
            with contextlib.suppress(Exception):
                await _sql(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', write=True)
        if redis_url and not naive:
            await _flush(redis_url)
        import shutil

        keep = os.environ.get("PIYASA_BENCH_SCALE_KEEP_LOGS")  # a dir: the logs are copied
        if keep:
            for inst in procs:
                shutil.copy(inst.log, Path(keep) / f"{schema}-{inst.name}.log")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _drained(db_urls: list[str]) -> Any:
    """A test: nothing waiting in any outbox, and no row added since the last look."""
    seen: list[int] = []

    async def test() -> bool:
        waiting = total = 0
        for url in db_urls:
            rows = await _sql(
                url,
                "SELECT sum(CASE WHEN state IN ('queued', 'claimed', 'sending') THEN 1 ELSE 0"
                " END), count(*) FROM outbox",
            )
            waiting += int(rows[0][0] or 0)
            total += int(rows[0][1])
        done = waiting == 0 and seen[-1:] == [total]
        seen.append(total)
        test.last = f"{waiting} waiting of {total}"  # type: ignore[attr-defined]
        if waiting and len(seen) % 20 == 0:
            for url in db_urls:
                test.last += "\n" + "\n".join(  # type: ignore[attr-defined]
                    repr(r)
                    for r in await _sql(
                        url,
                        "SELECT o.id, o.state, b.id, o.claimed_by, o.lease_until, o.attempts,"
                        " o.next_attempt_at, o.last_error, now() FROM outbox o"
                        " JOIN bots b ON b.id = o.bot_id"
                        " WHERE o.state IN ('queued', 'claimed', 'sending')",
                    )
                )
        return done

    return test


async def _kill_holder(procs: list[Instance], leases: Leases, bot_ids: list[int]) -> dict:
    """SIGKILL the instance holding the admin role; seconds until every role and every bot
    is held by a survivor (lease store polled every 0.2 s)."""
    holders = await leases.holders()
    victim_id = holders["admin"]
    victim = next(p for p in procs if f":{p.pid}:" in victim_id)
    owned = sum(1 for b in bot_ids if holders.get(f"bot:{b}") == victim_id)
    roles = [r for r in ROLES if holders.get(r) == victim_id]
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.to_thread(victim.proc.wait)  # type: ignore[union-attr]
    names = [*ROLES, *(f"bot:{b}" for b in bot_ids)]

    async def owned_again() -> bool:
        h = await leases.holders()
        return all(h.get(n) not in (None, victim_id) for n in names)

    await _until("every role and bot owned again", owned_again, procs, interval=0.2)
    return {
        "killed": victim.name,
        "killed_roles": roles,
        "killed_bots": owned,
        "owned_again_s": round(time.monotonic() - killed, 1),
    }


def _stop(inst: Instance) -> None:
    proc = inst.proc
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(CEILING_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _flush(redis_url: str) -> None:
    """Forget the run's leases, ledger and buckets: the Redis is the bench's own db."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
