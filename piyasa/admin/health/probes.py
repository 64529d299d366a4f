"""One probe per component. Each returns a Reading and never raises on a bad dependency.

Probes that only read an in-process snapshot (runtime, Telegram, LLM, scheduler) are
instant; those that talk to a server (database, Redis, Telegram getMe, monitoring
targets) run under the service's per-probe timeout, which turns "no answer" into
critical without making anyone wait.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psutil
from sqlalchemy import text

from piyasa.admin.health import words
from piyasa.admin.health.model import Reading, State, worst
from piyasa.admin.health.thresholds import Thresholds
from piyasa.admin.health.words import RAW, Phrase, phrase
from piyasa.services import Services

Provider = Callable[[], Mapping[str, Any]]


@dataclass
class ProbeContext:
    """What a probe may look at during one refresh round."""

    services: Services
    thresholds: Thresholds
    fleet: Mapping[str, Any] | None  # fleet.snapshot() of this round, None = not running
    scheduler: Mapping[str, Any] | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The service's monotonic clock at the start of the round: windows over rounds use it.
    monotonic: float = field(default_factory=time.monotonic)


class Probe(Protocol):
    name: str

    async def check(self, ctx: ProbeContext) -> Reading: ...


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _age_s(value: Any, now: datetime) -> float | None:
    """Seconds since a timestamp given as datetime, ISO text or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return max(0.0, now.timestamp() - float(value))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return max(0.0, (now - value).total_seconds())
    return None


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


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
        disk = psutil.disk_usage(_existing_dir(Path(ctx.services.settings.data_dir)))
        free_percent = 100.0 * disk.free / disk.total if disk.total else 100.0
        details = {
            "cpu_percent": None if cpu is None else round(cpu, 1),
            "memory_percent": round(mem, 1),
            "disk_free_percent": round(free_percent, 1),
            "disk_free_bytes": disk.free,
            "hostname": os.uname().nodename,
            "data_dir": str(ctx.services.settings.data_dir),
        }
        states = [t.memory(mem), t.disk_free(free_percent)]
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


def _existing_dir(path: Path) -> str:
    """The data dir, or its nearest existing parent (disk usage of the same filesystem)."""
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return str(path)


# --- fleet-derived components ------------------------------------------------------------

NOT_RUNNING = "not running"


def _breaker_state(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("state")
    return str(value or "closed").lower().replace("-", "_")


def _breaker_health(state: str) -> State:
    if state == "open":
        return State.CRITICAL
    if state == "half_open":
        return State.WARNING
    return State.HEALTHY


class RuntimeProbe:
    """Workers active/total, restarts, the age of the last fleet message, and the bots the
    fleet disabled (warning: "bot @x disabled: kicked from chat Y").

    Reads ``Fleet.snapshot()`` (piyasa/runtime/fleet.py): ``running``, ``paused``,
    ``workers{active,total,detail{name:{restarts,…}}}``, ``last_message_by_bot{id:{at}}``,
    ``outbox_depth``, ``recent_errors[{at,where,kind,error}]``,
    ``disabled[{bot,chat,reason,summary,at}]`` (see piyasa/runtime/disable.py).
    """

    name = "runtime"

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.fleet
        if not snap or not snap.get("running"):
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        t = ctx.thresholds
        workers = snap.get("workers") or {}
        detail = workers.get("detail") or {}
        active, total = int(_num(workers.get("active"))), int(_num(workers.get("total")))
        restarts = sum(int(_num((w or {}).get("restarts"))) for w in detail.values())
        ages = [
            _age_s((last or {}).get("at"), ctx.now)
            for last in (snap.get("last_message_by_bot") or {}).values()
        ]
        known_ages = [a for a in ages if a is not None]
        age = min(known_ages) if known_ages else None
        states: list[State] = []
        paused = bool(snap.get("paused"))
        if paused:
            states.append(State.WARNING)
        if total and active == 0:
            states.append(State.CRITICAL)
        elif active < total:
            states.append(State.WARNING)
        if age is not None and age > t.last_message_warning_s and not paused:
            states.append(State.WARNING)
        disabled = [d for d in snap.get("disabled") or [] if isinstance(d, Mapping)]
        if disabled:
            states.append(State.WARNING)
        errors = [e for e in snap.get("recent_errors") or [] if isinstance(e, Mapping)]
        recent = [e for e in errors if (_age_s(e.get("at"), ctx.now) or 0) <= 300]
        details = {
            "workers_active": active,
            "workers_total": total,
            "restarts": restarts,
            "last_message_age_s": None if age is None else round(age),
            "outbox_depth": snap.get("outbox_depth"),
            "paused": paused,
            "errors_5min": len(recent),
            "disabled": [dict(d) for d in disabled],
            "recent_errors": [
                {"at": e.get("at"), "where": e.get("where"), "kind": e.get("kind")}
                for e in errors[-5:]
            ],
        }
        said = [phrase("workers", active=active, total=total), phrase("restarts", n=restarts)]
        if age is not None:
            key, n = words.age("last_message", age)
            said.append(phrase(key, n=n))
        if snap.get("outbox_depth"):
            said.append(phrase("outbox", n=snap["outbox_depth"]))
        if paused:
            said.append(phrase("paused"))
        said += [
            phrase(RAW, "; ", text=str(d.get("summary") or d.get("reason"))) for d in disabled[:3]
        ]
        if len(disabled) > 3:
            said.append(phrase("more_disabled", "; ", n=len(disabled) - 3))
        state = worst(states or [State.HEALTHY])
        return Reading.said(self.name, state, said, details, private=frozenset({"disabled"}))


def _error_class(text: Any) -> str | None:
    """``"TelegramServerError: Bad Gateway"`` -> ``"TelegramServerError"``."""
    if not text:
        return None
    head = str(text).split(":", 1)[0].strip()
    return head[:64] or None


class RateWindow:
    """An error rate over the last ``error_rate_window_s`` seconds, from growing totals.

    Each round adds what the totals grew by since the previous round; rounds older than
    the window fall out. One round (5 s) is too small a sample to judge alone: during a
    429 storm the sender waits out ``retry_after``, so some rounds see no attempt at all,
    and read one round at a time the component flipped healthy/critical every 5 s.

    Detect fast, recover slowly: a round whose own rate is critical makes the component
    critical at once (small samples are padded, see :meth:`Thresholds.error_rate`, so one
    failure among a few sends is not enough), and it stays critical until that round has
    left the window; in between the rate over the whole window decides. One storm is one
    incident in the history, not a flicker.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self._rounds: deque[tuple[float, int, int]] = deque()
        self._bad_at: float | None = None  # when a round's own rate was last critical

    def observe(
        self, at: float, errors_total: float, attempts_total: float, thresholds: Thresholds
    ) -> tuple[int, int, State]:
        """Record this round's totals (``at``: monotonic seconds); returns the errors and
        attempts in the window and the state they give."""
        window_s = thresholds.error_rate_window_s
        last, self._last = self._last, (errors_total, attempts_total)
        if last is None:  # the first round only sets the baseline
            errors = attempts = 0
        elif errors_total < last[0] or attempts_total < last[1]:
            # the counters restarted (a new fleet): all they hold is new
            errors, attempts = int(errors_total), int(attempts_total)
        else:
            errors, attempts = int(errors_total - last[0]), int(attempts_total - last[1])
        while self._rounds and self._rounds[0][0] < at - window_s:
            self._rounds.popleft()
        if errors or attempts:
            self._rounds.append((at, errors, attempts))
        if thresholds.error_rate(errors, attempts) is State.CRITICAL:
            self._bad_at = at
        in_window = sum(r[1] for r in self._rounds), sum(r[2] for r in self._rounds)
        state = thresholds.error_rate(*in_window)
        if self._bad_at is not None and at - self._bad_at <= window_s:
            state = State.CRITICAL
        return in_window[0], in_window[1], state


class TelegramProbe:
    """Per bot: breaker state and last error; fleet-wide: share of 429s over the last
    ``error_rate_window_s`` (from the delivery gate's counters, see :class:`RateWindow`);
    the admin bot: getMe once a minute."""

    name = "telegram"
    GETME_EVERY_S = 60.0

    def __init__(self) -> None:
        self._admin: dict[str, Any] | None = None
        self._admin_checked = -1e18
        self._gate = RateWindow()

    async def _admin_bot(self, ctx: ProbeContext) -> dict[str, Any] | None:
        """The admin bot's getMe, at most once a minute (it is not the fleet's to report)."""
        settings = ctx.services.settings
        token = settings.admin_bot_token.reveal() if settings.admin_bot_token else ""
        if not token:
            return None
        if time.monotonic() - self._admin_checked >= self.GETME_EVERY_S or (
            self._admin and not self._admin["getme_ok"]
        ):
            ok, err = await telegram_getme(
                settings.telegram_api_url, token, max(0.05, ctx.thresholds.probe_timeout_s * 0.9)
            )
            self._admin_checked = time.monotonic()
            self._admin = {"getme_ok": ok, "last_getme_at": ctx.now.isoformat(), "error": err}
        return self._admin

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.fleet if ctx.fleet and ctx.fleet.get("running") else None
        admin = await self._admin_bot(ctx)
        if snap is None and admin is None:
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        t = ctx.thresholds
        per_bot: dict[str, dict[str, Any]] = {}
        states: list[State] = []
        breakers = ((snap or {}).get("breakers") or {}).get("bots") or {}
        for key, desc in breakers.items():
            breaker = _breaker_state(desc)
            state = _breaker_health(breaker)
            states.append(state)
            per_bot[str(key)] = {
                "state": state.value,
                "breaker": breaker,
                "failures": int(_num((desc or {}).get("failures"))),
                "last_error_class": _error_class((desc or {}).get("last_error")),
            }
        if admin is not None:
            state = State.HEALTHY if admin["getme_ok"] else State.CRITICAL
            states.append(state)
            per_bot["admin"] = {"state": state.value, **admin}
        details: dict[str, Any] = {"bots": per_bot}
        n429 = attempts = 0
        if snap is not None:
            # The gate's counters are totals; ``sent`` counts the sends that went through.
            gate = snap.get("gate") or {}
            total_429 = _num(gate.get("count_429"))
            n429, attempts, rate = self._gate.observe(
                ctx.monotonic, total_429, total_429 + _num(gate.get("sent")), t
            )
            states.append(rate)
            details.update(
                recent_429=n429, recent_attempts=attempts, window_s=t.error_rate_window_s
            )
        if not states:
            return Reading(self.name, State.UNKNOWN, "no bots", details)
        bad = sum(1 for b in per_bot.values() if b["state"] != "healthy")
        said = [
            phrase("bots_bad", n=len(per_bot), bad=bad)
            if bad
            else phrase("bots_ok", n=len(per_bot))
        ]
        if n429:
            window = f"{t.error_rate_window_s:g}"
            said.append(phrase("rate_429", n=n429, attempts=attempts, window=window))
        if admin is not None and not admin["getme_ok"]:
            said.append(admin_bot_problem(admin["error"]))
        return Reading.said(self.name, worst(states), said, details, private=frozenset({"bots"}))


class SchedulerProbe:
    name = "scheduler"

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.scheduler
        if snap is None:  # no scheduler in this deployment (yet): not part of the overall
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING, configured=False)
        if not snap:
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        running = bool(snap.get("running"))
        failed = int(_num(snap.get("failed_jobs")))
        missed = int(_num(snap.get("missed_jobs")))
        jobs = int(_num(snap.get("jobs")))
        state = (
            State.CRITICAL
            if not running
            else (State.WARNING if failed or missed else State.HEALTHY)
        )
        said = [phrase("jobs", n=jobs)]
        if failed:
            said.append(phrase("jobs_failed", n=failed))
        if missed:
            said.append(phrase("jobs_missed", n=missed))
        details = {"running": running, "jobs": jobs, "failed_jobs": failed, "missed_jobs": missed}
        if not running:
            return Reading(self.name, state, "stopped", details)
        return Reading.said(self.name, state, said, details)


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


def admin_bot_problem(error: str | None) -> Phrase:
    """What a failed getMe of the admin bot means, for the status page and the alert
    (``error``: the Bot API's error code, or the exception class of a call that got no
    answer; see :func:`telegram_getme`). 401 is a revoked or wrong token (Bot API docs)."""
    if error == "401":
        return phrase("admin_token_refused", sep="; ")
    if error and error.isdigit():
        return phrase("admin_getme_code", sep="; ", n=error)
    return phrase("admin_unreachable", sep="; ", error=error or "no answer")


async def telegram_getme(api_url: str, token: str, deadline_s: float) -> tuple[bool, str | None]:
    """Call getMe; the URL holds the token, so it is never logged or returned."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{api_url.rstrip('/')}/bot{token}/getMe",
                timeout=aiohttp.ClientTimeout(total=deadline_s),
            ) as resp,
        ):
            body = await resp.json(content_type=None)
            if body.get("ok"):
                return True, None
            return False, f"{body.get('error_code', resp.status)}"
    except Exception as exc:
        return False, type(exc).__name__


ProbeFn = Callable[[ProbeContext], Awaitable[Reading]]


def __getattr__(name: str) -> Any:
    """``LLMProbe`` lives in piyasa.admin.health.llm_probe; importable from here as before."""
    if name == "LLMProbe":
        from piyasa.admin.health.llm_probe import LLMProbe

        return LLMProbe
    raise AttributeError(name)


class FunctionProbe:
    """Wrap a plain async function as a probe (extensions, tests)."""

    def __init__(self, name: str, fn: ProbeFn) -> None:
        self.name = name
        self._fn = fn

    async def check(self, ctx: ProbeContext) -> Reading:
        return await self._fn(ctx)
