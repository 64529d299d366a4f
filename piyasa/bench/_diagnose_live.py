"""The live mode of ``piyasa bench diagnose``: each fault injected into a running
``piyasa up`` (its own data dir, started for that scenario) against the Telegram sandbox
and the local OpenAI-compatible server, both run by the harness on its own event loop;
an operator linked by Telegram id sends ``/diagnose`` to the admin bot in private chat,
as a user would, and the harness reads the report message (the progress message once
edited into the report): the first issue's title, and the fix it offers.

How each fault is injected (``injection`` in the JSON row):

- ``live``: dead LLM endpoint (the LLM server stopped), invalid LLM key (the server stops
  accepting the process's key), Redis down / PostgreSQL down (a private server the
  process uses, SIGKILLed), SQLite "database is locked" (a second writer holds the
  process's database with ``BEGIN EXCLUSIVE`` until the process's own writes fail with it
  in its log), disk nearly full (the process runs with
  ``PIYASA_DISK_QUOTA_BYTES``; a file written into its data dir fills 98 % of it);
- ``configuration``: no alert destination (no ``PIYASA_ADMIN_CHAT_IDS``, no Slack);
- ``log``: 429 storm, revoked fleet token, kicked bot, clock skew breaking TOTP,
  malformed active hours: a burst of the platform's real error text appended to the
  running process's ``piyasa.jsonl`` (these need a fleet of real bots sending, or the
  host's clock; the live path of a 429 storm is ``tests/help/test_diagnose_e2e.py``).

Right = the report's first issue is the expected KB entry (its English title), and the
fix offered is that entry's: its **🛠 1. Apply fix** button when the entry has an
automatic fix, otherwise its first manual step under the issue. Latency: ``/diagnose``
sent → report received, in ms, ``rounds`` times per scenario, :data:`ROUND_GAP_S` apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from piyasa.bench._common import pct
from piyasa.bench._procs import clean_env, free_port
from piyasa.bench._servers import PrivatePostgres, PrivateRedis, postgres_unavailable

ADMIN_TOKEN = "7190000000:BENCH-admin-bot-token-for-diagnose"
ADMIN_ID = int(ADMIN_TOKEN.split(":")[0])
ADMIN_GROUP = -1007190000001
OPERATOR = 819004
ROUND_GAP_S = 3.0  # between /diagnose rounds in one chat (its Telegram send budget refills)
QUOTA = 32 << 20  # the disk scenario's PIYASA_DISK_QUOTA_BYTES
HEALTH_ENV = {"PIYASA_HEALTH_PROBE_TIMEOUT_S": "5"}
LOG = "log"
LIVE = "live"
CONFIG = "configuration"
# scenario -> (expected KB entry, how it is injected)
SCENARIOS: dict[str, tuple[str, str]] = {
    "429 storm": ("tg-429", LOG),
    "dead LLM endpoint": ("llm-connection", LIVE),
    "invalid LLM key": ("llm-invalid-key", LIVE),
    "revoked fleet token": ("tg-401-unauthorized", LOG),
    "kicked bot": ("tg-403-kicked", LOG),
    "SQLite database is locked": ("db-locked", LIVE),
    "Redis down": ("redis-refused", LIVE),
    "PostgreSQL down": ("db-pg-refused", LIVE),
    "disk nearly full": ("system-disk-full", LIVE),
    "clock skew breaking TOTP": ("system-clock-skew", LOG),
    "malformed active hours": ("config-active-hours", LOG),
    "no alert destination": ("alerts-no-destination", CONFIG),
}


@dataclass
class World:
    """One running ``piyasa up`` and the servers the harness runs for it."""

    proc: subprocess.Popen
    data: Path
    sb: Any  # piyasa.sandbox.telegram.TelegramSandbox
    llm: Any  # piyasa.sandbox.llm_server.FakeOpenAIServer
    log_path: Path
    redis: PrivateRedis | None = None
    pg: PrivatePostgres | None = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


async def _seed(env: dict[str, str]) -> None:
    """The schema and the operator, linked by Telegram id, before the process starts."""
    from piyasa.admin.users import add_user
    from piyasa.config import load_settings
    from piyasa.db.migrate import upgrade
    from piyasa.services import Services

    services = Services.build(load_settings(env))
    try:
        await upgrade(services.engine)
        await add_user(services, "ops", "operator", telegram_id=OPERATOR)
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def world(
    tmp: Path, *, admin_chat: bool = True, redis: bool = False, pg: bool = False, **env: str
) -> AsyncIterator[World]:
    """Start the servers and one ``piyasa up`` on them; stop everything at the end."""
    from piyasa.sandbox.llm_server import FakeOpenAIServer
    from piyasa.sandbox.telegram import TelegramSandbox

    sb = TelegramSandbox()
    sb.add_bot(token=ADMIN_TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin")
    sb.add_user(user_id=OPERATOR, first_name="Oya", username="oya_ops", language_code="en")
    sb.add_group(chat_id=ADMIN_GROUP, title="Ops", members=[ADMIN_ID, OPERATOR], admins=[ADMIN_ID])
    llm, llm_port = FakeOpenAIServer(latency=(0.0, 0.01)), free_port()
    own_redis, own_pg = PrivateRedis() if redis else None, PrivatePostgres() if pg else None
    proc = None
    log_path = tmp / "up.log"
    try:
        telegram_url = await sb.start("127.0.0.1", 0)
        llm_url = await llm.start("127.0.0.1", llm_port)
        extra = dict(HEALTH_ENV, **env)
        if own_redis:
            await asyncio.to_thread(own_redis.start)
            extra["PIYASA_REDIS_URL"] = own_redis.url(0)
        if own_pg:
            await asyncio.to_thread(own_pg.start)
            extra["PIYASA_DATABASE_URL"] = own_pg.url
        if admin_chat:
            extra["PIYASA_ADMIN_CHAT_IDS"] = str(ADMIN_GROUP)
        environ = clean_env(
            tmp / "data",
            PIYASA_LANG="en",
            PIYASA_ADMIN_BOT_TOKEN=ADMIN_TOKEN,
            PIYASA_TELEGRAM_API_URL=telegram_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=llm_url,
            PIYASA_LLM_MODEL="gpt-4o-mini",
            **extra,
        )
        await _seed(environ)
        proc = _launch(environ, log_path)
        w = World(proc, tmp / "data", sb, llm, log_path, own_redis, own_pg)
        await _until_polling(w)
        await _warm(w)
        yield w
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        await sb.stop()
        await llm.stop()
        for server in (own_redis, own_pg):
            if server is not None:
                await asyncio.to_thread(getattr(server, "remove", server.kill))


def _launch(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """``piyasa up`` with its output in ``log_path`` (a file: no pipe to block on)."""
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "piyasa.cli", "up"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _fill(data: Path) -> None:
    """Write zeros into the data dir until it holds 98 % of :data:`QUOTA`."""
    from piyasa.admin.health.diskspace import tree_bytes

    fill = int(QUOTA * 0.98) - tree_bytes(data)
    with (data / "bench-filler.bin").open("wb") as f:
        for _ in range(max(0, fill) >> 20):
            f.write(b"\0" * (1 << 20))


async def _until_polling(w: World, ceiling_s: float = 180.0) -> None:
    """Until the admin bot asks the sandbox for updates (it can answer commands)."""
    deadline = time.monotonic() + ceiling_s
    while not w.sb.calls("getUpdates", bot_id=ADMIN_ID):
        if w.proc.poll() is not None:
            raise RuntimeError(f"piyasa up exited {w.proc.returncode}:\n{w.output()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the admin bot did not poll within {ceiling_s:.0f} s")
        await asyncio.sleep(0.1)


async def _warm(w: World, ceiling_s: float = 120.0) -> None:
    """The operator has used the bot before the fault (``/whoami`` answered), as one who
    looks after the fleet has: the process knows them (its last-known-good principals
    answer read-only commands while the database is down)."""
    mark = w.sb.mark()
    await w.sb.send_user_message(OPERATOR, OPERATOR, "/whoami", bot_id=ADMIN_ID)
    await w.sb.wait_for_message(chat_id=OPERATOR, bot_id=ADMIN_ID, after=mark, timeout=ceiling_s)


async def ask(w: World, timeout_s: float) -> tuple[dict[str, Any] | None, float]:
    """The operator sends /diagnose; the report message and the ms it took (None on a
    timeout, with the ceiling as its latency)."""
    mark = w.sb.mark()
    start = time.perf_counter()
    await w.sb.send_user_message(OPERATOR, OPERATOR, "/diagnose", bot_id=ADMIN_ID)
    try:  # the report, or any other answer (a refusal): not the progress message
        msg = await w.sb.wait_for_message(
            lambda m: "/100" in (m.get("text") or "") or "…" not in (m.get("text") or ""),
            chat_id=OPERATOR,
            bot_id=ADMIN_ID,
            edits=True,
            after=mark,
            timeout=timeout_s,
        )
    except TimeoutError:
        return None, timeout_s * 1000
    return msg, (time.perf_counter() - start) * 1000


def judge(msg: dict[str, Any] | None, expected: str | None) -> dict[str, Any]:
    """The first issue's title and the fix offered, against the ``expected`` entry."""
    from piyasa.help.kb import knowledge_base

    if msg is None:
        return {"first": None, "named_right": False, "fix_right": False, "answered": False}
    text = msg.get("text") or ""
    if "/100" not in text:  # answered, but not with a report
        verdict = False if expected else None
        first_line = text.split("\n", 1)[0][:200]
        return {
            "first": first_line,
            "answered": True,
            "report": False,
            "named_right": verdict,
            "fix_right": verdict,
        }
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    labels = [b.get("text", "") for row in rows for b in row]
    first = text.split("\n1. ", 1)[1] if "\n1. " in text else ""
    block = first.split("\n2. ", 1)[0]
    title = first.split("\n", 1)[0].strip()
    out: dict[str, Any] = {"first": title or None, "answered": True}
    entry = knowledge_base().get(expected) if expected else None
    if entry is None:
        return {**out, "named_right": None, "fix_right": None, "score": _score(text)}
    named = entry.w("en").title in title
    if entry.fix:
        fix, fix_right = entry.fix, "🛠 1. Apply fix" in labels
    else:
        step = entry.w("en").steps[0]
        fix, fix_right = "manual: " + step, step[:40] in block
    verdict = {"named_right": named, "fix_right": named and fix_right, "fix": fix}
    return {**out, **verdict, "score": _score(text)}


def _score(text: str) -> int | None:
    head = text.split("/100", 1)[0].rsplit(" ", 1)[-1]
    return int(head) if head.isdigit() else None


def _burst(data: Path, text: str, n: int = 12) -> None:
    now = datetime.now(UTC).isoformat()
    row = json.dumps({"ts": now, "level": "ERROR", "logger": "piyasa.bench", "msg": text})
    with (data / "piyasa.jsonl").open("a", encoding="utf-8") as f:
        f.writelines(row + "\n" for _ in range(n))


async def inject(name: str, w: World) -> None:
    """Break one thing in the running world (see the module docstring)."""
    from piyasa.bench.diagnose import LOG_FAULTS

    if name == "SQLite database is locked":
        await _lock_sqlite(w)
    elif name in LOG_FAULTS:
        _burst(w.data, LOG_FAULTS[name][1])
    elif name == "dead LLM endpoint":
        await w.llm.stop()
    elif name == "invalid LLM key":
        w.llm.api_keys = {"sk-rotated-elsewhere"}
    elif name == "Redis down" and w.redis is not None:
        await asyncio.to_thread(w.redis.kill)
    elif name == "PostgreSQL down" and w.pg is not None:
        await asyncio.to_thread(w.pg.kill)
    elif name == "disk nearly full":
        await asyncio.to_thread(_fill, w.data)


async def _lock_sqlite(w: World, ceiling_s: float = 60.0) -> None:
    """A second writer holds the process's SQLite database (``BEGIN EXCLUSIVE``) until the
    process's own writes (the delivery gate claims its outbox every second) have failed
    with "database is locked" in its log, then lets go."""
    import sqlite3

    db = w.data / "piyasa.db"
    con = sqlite3.connect(db, timeout=10.0, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(con.execute, "BEGIN EXCLUSIVE")
        deadline = time.monotonic() + ceiling_s
        log = w.data / "piyasa.jsonl"
        while "database is locked" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no 'database is locked' in the log in {ceiling_s:.0f} s")
            await asyncio.sleep(0.5)
        con.execute("ROLLBACK")
    finally:
        con.close()


def _world_options(name: str) -> dict[str, Any]:
    return {
        "Redis down": {"redis": True},
        "PostgreSQL down": {"pg": True},
        "disk nearly full": {"PIYASA_DISK_QUOTA_BYTES": str(QUOTA)},
        "no alert destination": {"admin_chat": False},
    }.get(name, {})


async def scenario(name: str | None, rounds: int, timeout_s: float) -> tuple[dict, list[float]]:
    """One fresh world, one fault (None: the no-fault baseline), ``rounds`` /diagnose."""
    expected, how = SCENARIOS[name] if name else (None, "none")
    if name == "PostgreSQL down" and (why := postgres_unavailable()):
        row = {"expected": expected, "injection": how, "skipped": why}
        return {**row, "named_right": False, "fix_right": False}, []
    with tempfile.TemporaryDirectory(prefix="piyasa-bench-diagnose-live-") as tmp:
        async with world(Path(tmp), **_world_options(name or "")) as w:
            await inject(name or "", w)
            times, verdicts = [], []
            for k in range(max(1, rounds)):
                if k:  # a person asks again after a look, not 3 times a second
                    await asyncio.sleep(ROUND_GAP_S)
                msg, ms = await ask(w, timeout_s)
                times.append(ms)
                verdicts.append(judge(msg, expected))
    row = {"expected": expected, "injection": how, **verdicts[0]}
    if expected:
        row["named_right"] = all(v["named_right"] for v in verdicts)
        row["fix_right"] = all(v["fix_right"] for v in verdicts)
    row["latency_ms"] = [round(t, 1) for t in times]
    return row, times


async def run_live(names: list[str], rounds: int, timeout_s: float) -> dict[str, Any]:
    """Every scenario in ``names``, and the no-fault baseline, in this run."""
    base, base_times = await scenario(None, rounds, timeout_s)
    rows: dict[str, dict[str, Any]] = {}
    every: list[float] = []
    for name in names:
        try:
            rows[name], times = await scenario(name, rounds, timeout_s)
        except Exception as exc:  # a world that would not start is this row's result
            rows[name], times = {"error": f"{type(exc).__name__}: {exc}"[:500]}, []
            rows[name].update(named_right=False, fix_right=False)
        every += times
    right = sum(1 for r in rows.values() if r.get("named_right") and r.get("fix_right"))
    named = sum(1 for r in rows.values() if r.get("named_right"))
    p95 = pct(every, 0.95) or 0.0
    return {
        "mode": "live",
        "scenarios_right": f"{right}/{len(rows)}",
        "named_first": f"{named}/{len(rows)}",
        "diagnose_p50_ms": round(pct(every, 0.5) or 0, 1),
        "diagnose_p95_ms": round(p95, 1),
        "baseline_no_fault": {**base, "p50_ms": round(pct(base_times, 0.5) or 0, 1)},
        "scenarios": rows,
        "rounds": rounds,
    }


__all__ = ["SCENARIOS", "run_live", "scenario"]
