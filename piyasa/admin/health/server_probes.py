"""Probes that ask a server: the database, Redis, this host, and the monitoring targets.
Each runs under the service's per-probe timeout (see :mod:`piyasa.admin.health.probes`)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import Any

import psutil
from sqlalchemy import text

from piyasa.admin.health.diskspace import data_dir_space, quota_of
from piyasa.admin.health.model import Reading, State, worst
from piyasa.admin.health.probes import ProbeContext, _ms_since
from piyasa.admin.health.words import RAW, phrase
from piyasa.services import Services

# --- database -------------------------------------------------------------------------


class DatabaseProbe:
    """Round-trip latency, pool use and database size."""

    name = "database"

    async def check(self, ctx: ProbeContext) -> Reading:
        engine = ctx.services.engine
        kind = engine.dialect.name
        details: dict[str, Any] = {"type": "sqlite" if kind == "sqlite" else "postgresql"}
        start = time.perf_counter()
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                latency = _ms_since(start)
                if kind == "postgresql":
                    size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
                    details["size_bytes"] = int(size or 0)
        except Exception as exc:
            return Reading.said(
                self.name,
                State.CRITICAL,
                [phrase("db_unreachable", type=details["type"], error=type(exc).__name__)],
                details,
                error=type(exc).__name__,
            )
        if kind == "sqlite":
            details["size_bytes"] = _sqlite_size(engine.url.database)
        pool = engine.pool
        used, capacity = _pool_use(pool)
        details["pool_checked_out"] = used
        details["pool_capacity"] = capacity
        state = worst([ctx.thresholds.latency(latency), ctx.thresholds.pool_use(used, capacity)])
        details["latency_ms"] = round(latency, 1)
        said = [
            phrase("db", type=details["type"], ms=f"{latency:.0f}"),
            phrase("pool", used=used, capacity=capacity),
        ]
        if "size_bytes" in details:
            said.append(phrase(RAW, text=_human_bytes(details["size_bytes"])))
        return Reading.said(self.name, state, said, details, latency_ms=latency)


def _pool_use(pool: Any) -> tuple[int, int]:
    try:
        used = int(pool.checkedout())
        capacity = int(pool.size()) + max(0, int(getattr(pool, "_max_overflow", 0)))
        return used, capacity
    except Exception:  # pools without counters (NullPool, StaticPool)
        return 0, 0


def _sqlite_size(database: str | None) -> int:
    if not database or database == ":memory:":
        return 0
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(database + suffix)
        except OSError:
            pass
    return total


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# --- Redis ----------------------------------------------------------------------------


class RedisProbe:
    """Latency, keys, memory and hit rate (over the last interval, not since boot)."""

    name = "redis"

    def __init__(self) -> None:
        self._own_client: Any = None
        self._last_hits: tuple[int, int] | None = None

    def _client(self, services: Services) -> Any:
        cache = services.cache
        if getattr(cache, "kind", "") == "redis":
            return cache.client  # type: ignore[union-attr]
        if self._own_client is None:
            import redis.asyncio as aioredis

            self._own_client = aioredis.from_url(
                services.settings.redis_url, socket_connect_timeout=2, socket_timeout=2
            )
        return self._own_client

    async def check(self, ctx: ProbeContext) -> Reading:
        if (
            not ctx.services.settings.redis_url
            and getattr(ctx.services.cache, "kind", "") != "redis"
        ):
            return Reading(
                self.name, State.UNKNOWN, "not configured (in-process cache)", configured=False
            )
        client = self._client(ctx.services)
        start = time.perf_counter()
        try:
            await client.ping()
            latency = _ms_since(start)
            info = await client.info()
            keys = int(await client.dbsize())
        except Exception as exc:
            self._last_hits = None
            return Reading.said(
                self.name,
                State.CRITICAL,
                [phrase("unreachable", error=type(exc).__name__)],
                error=type(exc).__name__,
            )
        hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
        if self._last_hits and hits >= self._last_hits[0] and misses >= self._last_hits[1]:
            dh, dm = hits - self._last_hits[0], misses - self._last_hits[1]
        else:
            dh, dm = hits, misses
        self._last_hits = (hits, misses)
        hit_rate = None if dh + dm == 0 else round(100.0 * dh / (dh + dm), 1)
        details = {
            "latency_ms": round(latency, 1),
            "keys": keys,
            "used_memory_bytes": int(info.get("used_memory", 0)),
            "hit_rate_percent": hit_rate,
            "version": info.get("redis_version"),
        }
        said = [
            phrase("latency", ms=f"{latency:.0f}"),
            phrase("keys", n=keys),
            phrase(RAW, text=_human_bytes(details["used_memory_bytes"])),
        ]
        if hit_rate is not None:
            said.append(phrase("hit_rate", n=f"{hit_rate:.0f}"))
        return Reading.said(
            self.name,
            ctx.thresholds.latency(latency),
            said,
            details,
            private=frozenset({"version"}),
            latency_ms=latency,
        )

    async def close(self) -> None:
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None


# --- host -----------------------------------------------------------------------------


class HostProbe:
    """CPU, memory and disk of the machine; psutil reads are quick and non-blocking."""

    name = "host"

    MIN_CPU_WINDOW_S = 0.5

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # starts the window the next reading covers
        self._primed = time.monotonic()

    async def check(self, ctx: ProbeContext) -> Reading:
        t = ctx.thresholds
        # CPU is averaged since the previous call (one refresh interval); a window of a
        # few milliseconds right after start says nothing, so the first round skips it.
        cpu: float | None = None
        if time.monotonic() - self._primed >= self.MIN_CPU_WINDOW_S:
            cpu = psutil.cpu_percent(interval=None)
            self._primed = time.monotonic()
        mem = psutil.virtual_memory().percent
        settings = ctx.services.settings
        # With PIYASA_DISK_QUOTA_BYTES the data dir is walked: off the event loop.
        if quota_of(settings) is None:
            disk = data_dir_space(settings)
        else:
            disk = await asyncio.to_thread(data_dir_space, settings)
        free_percent = disk.free_percent
        disk_state = t.disk_free(free_percent)
        details = {
            "cpu_percent": None if cpu is None else round(cpu, 1),
            "memory_percent": round(mem, 1),
            "disk_free_percent": round(free_percent, 1),
            "disk_free_bytes": disk.free,
            "disk_quota_bytes": disk.quota,
            "disk_used_bytes": disk.used,
            "disk_state": disk_state.value,
            "hostname": os.uname().nodename,
            "data_dir": str(settings.data_dir),
        }
        states = [t.memory(mem), disk_state]
        if cpu is not None:
            states.append(t.cpu(cpu))
        cpu_text = "?" if cpu is None else f"{cpu:.0f}"
        said = [
            phrase("cpu", n=cpu_text),
            phrase("memory", n=f"{mem:.0f}"),
            phrase("disk_free", n=f"{free_percent:.0f}"),
        ]
        state = worst(states)
        return Reading.said(
            self.name, state, said, details, private=frozenset({"hostname", "data_dir"})
        )


# --- monitoring targets and Telegram getMe --------------------------------------------


class HttpTargetsProbe:
    """GET each configured URL (``PIYASA_HEALTH_TARGETS=name=url,name=url``)."""

    name = "targets"

    def __init__(self, targets: Mapping[str, str]) -> None:
        self.targets = dict(targets)
        self._session: Any = None

    async def _get(self, url: str, deadline_s: float) -> tuple[int | None, float, str | None]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        start = time.perf_counter()
        try:
            async with self._session.get(
                url, timeout=aiohttp.ClientTimeout(total=deadline_s), allow_redirects=False
            ) as resp:
                await resp.read()
                return resp.status, _ms_since(start), None
        except Exception as exc:
            return None, _ms_since(start), type(exc).__name__

    async def check(self, ctx: ProbeContext) -> Reading:
        timeout = max(0.05, ctx.thresholds.probe_timeout_s * 0.9)
        results = await asyncio.gather(*(self._get(u, timeout) for u in self.targets.values()))
        per: dict[str, Any] = {}
        states = []
        for name, (status, ms, err) in zip(self.targets, results, strict=True):
            if status is None or status >= 500:
                state = State.CRITICAL
            elif status >= 400:
                state = State.WARNING
            else:
                state = ctx.thresholds.latency(ms)
            states.append(state)
            per[name] = {
                "state": state.value,
                "status": status,
                "latency_ms": round(ms, 1),
                "error": err,
            }
        bad = [n for n, v in per.items() if v["state"] != "healthy"]
        said = [
            phrase("targets_bad", n=len(per), names=", ".join(bad))
            if bad
            else phrase("targets_ok", n=len(per))
        ]
        return Reading.said(
            self.name, worst(states), said, {"targets": per}, private=frozenset({"targets"})
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def parse_targets(raw: str) -> dict[str, str]:
    """``name=url,name=url`` (or bare URLs, named target1, target2, …)."""
    out: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, _, url = part.partition("=") if "=" in part.split("://")[0] else ("", "", part)
        out[name.strip() or f"target{i + 1}"] = url.strip()
    return out
