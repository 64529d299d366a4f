"""Auto-adjust against a 429 storm: the fleet with and without it, in the same run.

The Telegram sandbox enforces a group window *stricter* than the one the gate plans for
(``--real-group-max`` per minute per bot and group instead of Telegram's published 20),
as when Telegram enforces less than it publishes; the operator's ``scale_factor`` asks
for more than that. Both runs share one accelerated clock (``--speed`` × real time,
driving the sandbox's limits and the fleet's clocks), so minutes pass in seconds.

Figures per run: ``n429_per_minute`` (429 answers of the sandbox in each simulated
minute), ``last_429_s`` (when the last 429 came, seconds after the start; the fleet was at
0 × 429 per minute from then on), ``delivered``, ``still_queued`` and ``failed`` (a
message decided but neither delivered nor queued would be lost), the ``scale_factor``
at the end and the system's changes of it. The baseline is the same fleet with
``autoadjust_enabled`` off. Target: ``last_429_s`` ≤ 120 with auto-adjust, nothing lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DESCRIPTION = "a 429 storm from a too-high scale_factor: auto-adjust vs. none (sandbox)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bots", type=int, default=6)
    p.add_argument("--chats", type=int, default=2)
    p.add_argument("--minutes", type=float, default=4.0, help="simulated minutes per run")
    p.add_argument("--speed", type=float, default=8.0, help="simulated seconds per second")
    p.add_argument("--per-min", type=float, default=12.0, help="max_msgs_per_min")
    p.add_argument("--scale", type=float, default=10.0, help="the operator's scale_factor")
    p.add_argument("--real-group-max", type=int, default=6, help="sends/min Telegram allows")
    p.add_argument("--no-baseline", action="store_true")


class Accelerated:
    """Seconds that pass ``speed`` times faster than real time (monotonic and wall)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.time()
        self.m0 = time.monotonic()

    def now(self) -> float:
        return self.t0 + (time.monotonic() - self.m0) * self.speed

    def __call__(self) -> float:
        return self.now()

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


def _token(n: int) -> str:
    return f"{6100000000 + n}:BENCH-autoadjust-bot-{n:04d}-do-not-use"


async def _one_run(args: argparse.Namespace, autoadjust: bool) -> dict[str, Any]:
    import asyncio

    from sqlalchemy import func, select

    from piyasa.admin import audit
    from piyasa.config import load_settings
    from piyasa.crypto import fingerprint
    from piyasa.db import migrate
    from piyasa.db.models import Bot, Chat, Message
    from piyasa.runtime.fleet import Fleet
    from piyasa.sandbox.telegram import SandboxLimits, TelegramSandbox
    from piyasa.services import Services

    clock = Accelerated(args.speed)
    sb = TelegramSandbox(clock=clock, limits=SandboxLimits(group_max=args.real_group_max))
    url = await sb.start("127.0.0.1", 0)
    tmp = tempfile.TemporaryDirectory(prefix="piyasa-bench-autoadjust-")
    db_url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    settings = load_settings({"PIYASA_DATA_DIR": tmp.name, "PIYASA_DATABASE_URL": db_url})
    settings = dataclasses.replace(settings, telegram_api_url=url, redis_url="")
    services = Services.build(settings)
    fleet = None
    try:
        await migrate.upgrade(services.engine)
        async with services.sessions() as session, session.begin():
            bots = []
            for i in range(args.bots):
                tok = _token(i)
                acct = sb.add_bot(tok, f"adj{i}_bot", f"Adj {i}")
                bots.append(
                    Bot(
                        telegram_id=acct.id,
                        token_encrypted=services.box.encrypt(tok),
                        token_fingerprint=fingerprint(tok),
                        username=f"adj{i}_bot",
                        persona={"name": f"Adj{i}", "language": "tr"},
                        hourly_limit=1_000_000,
                    )
                )
            session.add_all(bots)
            for j in range(args.chats):
                cid = -1004100000000 - j
                sb.add_group(cid, f"Storm {j}", members=[b.telegram_id for b in bots])
                session.add(Chat(telegram_id=cid, title=f"Storm {j}", topics=["bist", "fx"]))
        fleet = Fleet(
            services,
            receive="off",
            clock=clock,
            wall=clock.wall,
            autoadjust_tick_s=max(0.05, 5.0 / args.speed),
            limiter_namespace="bench:autoadjust:",
        )
        store = fleet.settings_store
        await store.set("max_msgs_per_min", args.per_min, "operator")
        await store.set("scale_factor", args.scale, "operator")
        await store.set("autoadjust_enabled", autoadjust, "operator")
        start = clock()
        await fleet.start()
        await asyncio.sleep(args.minutes * 60 / args.speed)
        end = clock()
        scale_end = store.number("scale_factor")
        await fleet.stop()
        calls = [c for c in sb.calls("sendMessage") if start <= c["time"] <= end]
        minutes = int(args.minutes + 0.999)
        per_min = [0] * minutes
        last_429 = None
        for c in calls:
            if c["error_code"] == 429:
                rel = c["time"] - start
                per_min[min(minutes - 1, int(rel // 60))] += 1
                last_429 = rel if last_429 is None else max(last_429, rel)
        async with services.sessions() as session:
            rows = dict(
                (
                    await session.execute(
                        select(Message.status, func.count()).group_by(Message.status)
                    )
                ).all()
            )
        changes = [
            (r.params or {}).get("new")
            for r in reversed(
                await audit.recent(
                    services, limit=100, action="settings.set", target="scale_factor"
                )
            )
            if r.actor == "system"
        ]
        return {
            "n429_per_minute": per_min,
            "last_429_s": None if last_429 is None else round(last_429, 1),
            "delivered": len(sb.sent()),
            "still_queued": int(rows.get("queued", 0)),
            "failed": int(rows.get("failed", 0)),
            "decided": int(sum(rows.values())),
            "scale_factor_end": scale_end,
            "system_changes": changes,
        }
    finally:
        if fleet is not None and fleet.started:
            await fleet.stop()
        await services.close()
        await sb.stop()
        tmp.cleanup()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "setup": {
            "bots": args.bots,
            "chats": args.chats,
            "simulated_minutes": args.minutes,
            "speed": args.speed,
            "max_msgs_per_min": args.per_min,
            "operator_scale_factor": args.scale,
            "telegram_group_max_per_min": args.real_group_max,
            "gate_group_max_per_min": 20,
        },
        "autoadjust": await _one_run(args, True),
    }
    if not args.no_baseline:
        out["baseline_no_autoadjust"] = await _one_run(args, False)
    a = out["autoadjust"]
    out["target_met"] = bool(
        (a["last_429_s"] is None or a["last_429_s"] <= 120)
        and a["failed"] == 0
        and a["delivered"] + a["still_queued"] >= a["decided"] - a["failed"]
    )
    return out
