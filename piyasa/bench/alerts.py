"""An alert storm through the real notification pipeline (issue 13).

10,000 events in 60 s from 200 bots and five sources (``piyasa.bench._storm``: flapping
checks, a PostgreSQL outage with 1,000 events it causes, critical incidents, repeated
warnings) are emitted on the bus of a :class:`~piyasa.admin.notify.service.NotifyService`
storing incidents in a real database (a fresh SQLite file, or ``--database-url``), with
the product's timers (``PIYASA_NOTIFY_*`` or Alertmanager's defaults), its outbox, and
its senders: the Telegram admin bot (aiogram) into the sandbox Telegram
(``piyasa.sandbox.telegram``, Telegram's send limits enforced), the Slack app
(slack-sdk) into the sandbox Slack (``piyasa.sandbox.slack``) and the email channel
(aiosmtplib) into a local SMTP server (``piyasa.sandbox.smtp``).

One subscribed admin (critical and warning, Telegram and Slack DMs, the email channel
to their address) is the operator. ``messages_to_operator`` counts what reached them at
the far ends; ``baseline_messages_to_operator`` is a naive notifier on the same bus in
the same run (one message per event on each of the operator's three channels).

When the storm is over and everything due is delivered, what is still owed is owed
later by the grouping timers (``group_interval``, ``resolve_wait``): the service's clock
is moved forward to each such time instead of waiting for it (``fast_forward_s``), so
the run ends with every notice told or shown as pending.

``lost``: firing events not stored, plus (incident, destination) pairs the operator
should have been told and was not (open and unmuted: its alert; told and resolved: its
recovery). ``duplicates``: a delivery sent twice, or an open incident told again to a
destination without its recovery in between. ``p95_critical_event_to_delivery_ms``:
from a critical incident's first event on the bus to its first delivery accepted by each
far end. Targets: lost 0, duplicates 0, p95 < 2,000 ms, messages <= 1 % of baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from piyasa.bench._common import pct, throwaway_services
from piyasa.bench._storm import Ledger, storm

DESCRIPTION = "an alert storm (10,000 events in 60 s) through the notification pipeline"
TARGET_P95_MS = 2000.0
TARGET_RATIO = 0.01
ADMIN_TOKEN = "7300000013:BENCH-alerts-admin-bot-token"
OP_TG = 930013
OP_SLACK = "U0OPERATOR"
OP_EMAIL = "operator@piyasa.test"
SETTLE_CEILING_S = 600.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=60.0, help="the storm's length")
    p.add_argument("--bots", type=int, default=200)
    p.add_argument(
        "--quick", action="store_true", help="a small storm (1,000 events in 6 s, 20 bots)"
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")


class Clock:
    """The service's clock: real UTC time plus ``offset`` (moved forward after the storm)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


async def _operator(services: Any, mailbox_port: int) -> list[str]:
    """The subscribed admin and the email channel to their address; returns the
    operator's destinations (Telegram DM, Slack DM, email)."""
    from piyasa.admin.notify.destinations import add_channel
    from piyasa.admin.notify.routing import set_pref
    from piyasa.admin.notify.service import default_channel_factory
    from piyasa.admin.users import add_user

    user = await add_user(services, "operator", "admin", telegram_id=OP_TG, slack_id=OP_SLACK)
    await set_pref(services, user.id, "on")
    await set_pref(services, user.id, "severities", "critical,warning")
    await set_pref(services, user.id, "channels", "telegram,slack")
    config = {
        "host": "127.0.0.1",
        "port": str(mailbox_port),
        "from": "piyasa@piyasa.test",
        "to": OP_EMAIL,
        "starttls": "false",
    }
    await add_channel(services, "ops-email", "email", config, default_channel_factory)
    return [f"user:{user.id}:telegram", f"user:{user.id}:slack", "channel:ops-email"]


async def _drive(services: Any, events: list[tuple[float, Any]], ledger: Ledger) -> float:
    """Emit ``events`` on the bus at their times; returns the seconds it took."""
    from piyasa.admin.notify import emit

    start = time.perf_counter()
    for at, event in events:
        delay = at - (time.perf_counter() - start)
        if delay > 0.002:
            await asyncio.sleep(delay)
        ledger.on_emit(event)
        emit(services.extras, event)
    return time.perf_counter() - start


async def _settle(svc: Any, clock: Clock) -> float:
    """Wait until nothing is queued or due; then move the clock to the next notice the
    timers still owe (firing or recovery, not repeats) until none is owed. Returns the
    seconds skipped."""
    from sqlalchemy import func, select

    from piyasa.admin.notify import store
    from piyasa.db.notify_models import Notification

    skipped = 0.0
    deadline = time.monotonic() + SETTLE_CEILING_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if svc.inbox:
            continue
        now = svc.now()
        async with svc.services.sessions() as session:
            # owed first, then the outbox: a flush moving notices from one to the other
            # in between is then seen in the outbox (SQLite reads are not one snapshot)
            nxt = await session.scalar(
                select(func.min(Notification.due_at)).where(
                    Notification.due_kind.in_(("firing", "resolved"))
                )
            )
            unsent = await store.undelivered_count(session)
        if unsent or svc.inbox:
            continue
        if nxt is None:
            return skipped
        if nxt > now:
            step = (nxt - now).total_seconds() + 0.01
            clock.offset += timedelta(seconds=step)
            skipped += step
        svc._wake.set()
    raise RuntimeError(f"the notification service did not settle within {SETTLE_CEILING_S} s")


async def _score(
    services: Any, ledger: Ledger, firing_emitted: int, op_dests: list[str]
) -> dict[str, Any]:
    """lost, duplicates and the incidents' numbers, read back from the store."""
    from sqlalchemy import select

    from piyasa.admin.notify import store
    from piyasa.db.notify_models import Notification

    async with services.sessions() as session:
        rows = list(await session.scalars(select(Notification)))
        unsent = await store.undelivered(services)
    lost_notices = 0
    examples: list[str] = []
    for row in rows:
        if row.state == "silenced" or not row.confirmed:
            continue
        # the email channel hears of everything; the DMs of critical and warning
        wanted = op_dests if row.severity in ("critical", "warning") else op_dests[2:]
        for dest in wanted:
            told = ledger.told.get(dest, set())
            missing = (
                row.state in ("open", "acknowledged") and (row.id, "firing") not in told
            ) or (
                row.state == "resolved"
                and (row.id, "firing") in told
                and (row.id, "resolved") not in told
            )
            if missing:
                lost_notices += 1
                if len(examples) < 5:
                    examples.append(f"#{row.id} {row.fingerprint} {row.state} -> {dest}")
    stored = sum(r.count for r in rows)
    critical = {r.fingerprint for r in rows if r.severity == "critical" and r.state != "silenced"}
    return {
        "rows": rows,
        "stored": stored,
        "lost": max(0, firing_emitted - stored) + lost_notices,
        "lost_events": max(0, firing_emitted - stored),
        "lost_notices": lost_notices,
        "pending": len(unsent),
        "lost_examples": examples,
        "pending_examples": [
            f"{d.destination} {d.state} {d.last_error or ''}"[:160] for d in unsent[:5]
        ],
        "critical": critical,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from chatops import i18n
    from chatops.commands import load_all
    from chatops.notify_delivery import slack_sender, telegram_sender
    from chatops.slack.surface import SlackSurface
    from chatops.telegram.surface import TelegramSurface
    from piyasa.admin.notify.service import NotifyService
    from piyasa.config import Secret
    from piyasa.sandbox.slack import BOT_TOKEN, SlackSandbox, dm_of
    from piyasa.sandbox.smtp import Mailbox
    from piyasa.sandbox.telegram import TelegramSandbox

    if args.quick:
        args.events, args.seconds, args.bots = 1000, 6.0, 20
    events = storm(args.events, args.bots, args.seconds, args.seed)
    tg_sandbox = TelegramSandbox()  # Telegram's send limits enforced
    bot = tg_sandbox.add_bot(ADMIN_TOKEN, "piyasa_bench_admin_bot", "Piyasa Admin")
    tg_sandbox.add_user(OP_TG, "Operator", "operator", "en")
    tg_sandbox.world.started.add((OP_TG, bot.id))  # the operator has started the bot
    tg_url = await tg_sandbox.start("127.0.0.1", 0)
    slack_sandbox = SlackSandbox()
    slack_url = await slack_sandbox.start()
    mailbox = Mailbox().start()
    surfaces = SimpleNamespace(telegram=None, slack=None)
    svc: NotifyService | None = None
    try:
        async with throwaway_services(
            args.database_url,
            "piyasa-bench-alerts-",
            lang="en",
            telegram_api_url=tg_url,
            admin_bot_token=Secret(ADMIN_TOKEN),
            slack_bot_token=Secret(BOT_TOKEN),
            slack_api_url=slack_url,
        ) as services:
            op_dests = await _operator(services, mailbox.port)
            registry = load_all()
            surfaces.telegram = TelegramSurface(services, registry)
            surfaces.slack = SlackSurface(services, registry, signing_secret="bench-not-used")
            await surfaces.slack.start()
            clock = Clock()
            svc = NotifyService(services, translate=i18n.t, clock=clock)
            svc.add_sender("telegram", telegram_sender(services, surfaces))
            svc.add_sender("slack", slack_sender(services, surfaces))
            ledger = Ledger()
            svc.observers.append(ledger.observe)
            baseline = {"messages": 0}

            def naive(_event: Any) -> None:  # one message per event on each channel
                baseline["messages"] += 3

            svc.bus.subscribe(naive)
            await svc.start()
            rss_before = _rss_mb()
            wall0 = time.perf_counter()
            storm_s = await _drive(services, events, ledger)
            skipped = await _settle(svc, clock)
            wall = time.perf_counter() - wall0
            rss_after = _rss_mb()
            await svc.stop()
            firing = sum(1 for _, e in events if not e.resolved)
            score = await _score(services, ledger, firing, op_dests)
            kind = services.settings.database_kind
            timers = svc.timers
    finally:
        if svc is not None:
            await svc.stop()  # (again: a no-op) when the run failed before its end
        if surfaces.slack is not None:
            await surfaces.slack.stop()
        if surfaces.telegram is not None:
            await surfaces.telegram.bot.session.close()
        mailbox.stop()
        await slack_sandbox.stop()
        await tg_sandbox.stop()
    per_channel = {
        "telegram": len(tg_sandbox.messages(OP_TG, bot.id)),
        "slack": len(slack_sandbox.in_channel(dm_of(OP_SLACK))),
        "email": len(mailbox.to(OP_EMAIL)),
    }
    to_operator = sum(per_channel.values())
    latencies = ledger.critical_latencies_ms(score["critical"], op_dests)
    p95 = pct(latencies, 0.95)
    by_channel = {
        name: round(pct(ledger.critical_latencies_ms(score["critical"], [dest]), 0.95) or 0, 1)
        for name, dest in zip(("telegram", "slack", "email"), op_dests, strict=True)
    }
    ratio = to_operator / baseline["messages"] if baseline["messages"] else None
    rows = score["rows"]
    return {
        "database": kind,
        "events": len(events),
        "bots": args.bots,
        "sources": len({e.source for _, e in events}),
        "storm_s": round(storm_s, 2),
        "settle_wall_s": round(wall - storm_s, 2),
        "fast_forward_s": round(skipped, 1),
        "timers": {
            "group_wait_s": timers.group_wait_s,
            "group_interval_s": timers.group_interval_s,
            "repeat_interval_s": timers.repeat_interval_s,
            "resolve_wait_s": timers.resolve_wait_s,
        },
        "notifications": len(rows),
        "incidents_muted": sum(1 for r in rows if r.state == "silenced"),
        "deliveries": ledger.deliveries,
        "messages_to_operator": to_operator,
        "messages_to_operator_by_channel": per_channel,
        "baseline_messages_to_operator": baseline["messages"],
        "ratio": None if ratio is None else round(ratio, 5),
        "lost": score["lost"],
        "lost_events": score["lost_events"],
        "lost_notices": score["lost_notices"],
        "pending_at_end": score["pending"],
        "lost_examples": score["lost_examples"],
        "pending_examples": score["pending_examples"],
        "duplicates": ledger.duplicates,
        "critical_incidents": len(score["critical"]),
        "critical_samples": len(latencies),
        "p50_critical_event_to_delivery_ms": round(pct(latencies, 0.5) or 0, 1),
        "p95_critical_event_to_delivery_ms": round(p95 or 0, 1),
        "max_critical_event_to_delivery_ms": round(max(latencies, default=0), 1),
        "p95_critical_event_to_delivery_ms_by_channel": by_channel,
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "targets": {
            "lost": 0,
            "duplicates": 0,
            "p95_critical_event_to_delivery_ms": TARGET_P95_MS,
            "ratio": TARGET_RATIO,
        },
        "within_target": score["lost"] == 0
        and ledger.duplicates == 0
        and p95 is not None
        and p95 < TARGET_P95_MS
        and ratio is not None
        and ratio <= TARGET_RATIO,
    }
