"""`piyasa alerts list|ack|silence|test|channels`: the notification center from the shell.

Shell access is the strongest credential, so no step-up; every change is audited with
actor ``cli``. Errors say what to fix and change nothing (exit 1).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from piyasa.admin.notify.store import STATE_FILTERS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "alerts",
        help="notifications: list, acknowledge, silence, test a channel",
        description="The notification center from the shell: list incidents, acknowledge "
        "one, add a silence (matchers + expiry), send a test notification to a channel.",
    )
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION")
    ls = asub.add_parser("list", help="list incidents, newest first")
    ls.add_argument("--state", default="open", choices=["open", "acked", "resolved", "all"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    ack = asub.add_parser("ack", help="acknowledge an incident (no more reminders)")
    ack.add_argument("id", type=int)
    ack.set_defaults(func=run_ack)
    si = asub.add_parser(
        "silence",
        help="mute events matching labels for a time",
        description="Mute every event whose labels match all matchers (name=value, "
        "name!=value, name=~regex) until the expiry. Labels: source, key, severity, bot, "
        "component, ...",
    )
    si.add_argument("--match", action="append", default=[], metavar="NAME=VALUE")
    si.add_argument("--for", dest="duration", default="", help="expiry: 30m, 4h, 1d, 2w")
    si.add_argument("--comment", default="")
    si.set_defaults(func=run_silence)
    te = asub.add_parser("test", help="send a test notification to a configured channel")
    te.add_argument("--channel", required=True, metavar="NAME")
    te.set_defaults(func=run_test)
    ch = asub.add_parser("channels", help="list configured channels (secrets masked)")
    ch.add_argument("--json", action="store_true", help="machine-readable output")
    ch.set_defaults(func=run_channels)
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(message: str) -> None:
    from piyasa.cli import CommandError

    raise CommandError(message)


async def _run(fn: Any) -> Any:
    from piyasa.admin.notify.rules import NotifyError
    from piyasa.clicmd.user import _with_services

    try:
        return await _with_services(fn)
    except NotifyError as exc:
        _fail(f"{exc}; nothing was changed")


async def _audit(services: Any, action: str, target: str, **params: Any) -> None:
    from piyasa.admin import audit

    await audit.record(
        services,
        actor="cli",
        surface="cli",
        action=action,
        target=target,
        params=params,
        result="ok",
    )


async def run_list(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import store

    state = {"acked": "acked", "open": "open", "resolved": "resolved", "all": "all"}[args.state]
    assert state in STATE_FILTERS

    async def go(services: Any) -> Any:
        return await store.center(services, None, _now(), state=state, limit=args.limit)

    center = await _run(go)
    if args.json:
        print(
            json.dumps(
                {"items": [i.as_json() for i in center.items], "undelivered": center.pending},
                indent=2,
                default=str,
            )
        )
        return 0
    for it in center.items:
        params = ", ".join(f"{k}={v}" for k, v in it.params.items() if v)
        print(
            f"#{it.id:<5} {it.severity:<8} {it.state:<12} x{it.count:<4} "
            f"{it.last_seen:%Y-%m-%d %H:%M} {it.fingerprint}  {params}"[:200]
        )
    if not center.items:
        print(f"no {args.state} incidents")
    if center.pending:
        print(f"{center.pending} notification(s) not delivered yet")
    return 0


async def run_ack(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import store

    async def go(services: Any) -> Any:
        it = await store.ack(services, args.id, "cli", _now())
        await _audit(services, "alerts.ack", f"#{it.id}")
        return it

    it = await _run(go)
    print(f"#{it.id} acknowledged")
    return 0


async def run_silence(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import store

    async def go(services: Any) -> Any:
        info = await store.add_silence(
            services, " ".join(args.match), args.duration, "cli", _now(), comment=args.comment
        )
        await _audit(services, "silence", f"silence #{info.id}", matchers=info.matchers)
        return info

    info = await _run(go)
    print(f"silence #{info.id}: {info.matchers} until {info.ends_at:%Y-%m-%d %H:%M} UTC")
    return 0


async def run_test(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import destinations, outbox
    from piyasa.admin.notify.service import default_channel_factory

    async def go(services: Any) -> None:
        channel = await destinations.build(services, args.channel, default_channel_factory)
        lang = services.settings.lang
        try:
            await channel.send(outbox.outgoing([], lang, "test", outbox.plain_english))
        except Exception as exc:
            _fail(f"the test to {args.channel} failed: {outbox.error_text(exc)}")
        await _audit(services, "alerts.test", f"channel:{args.channel}")

    await _run(go)
    print(f"test notification sent to {args.channel}")
    return 0


async def run_channels(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import destinations

    rows = await _run(destinations.channels)
    if args.json:
        print(json.dumps([r.as_json() for r in rows], indent=2))
        return 0
    for r in rows:
        state = "enabled" if r.enabled else "disabled"
        print(f"{r.name:<20} {r.kind:<8} {state:<8} {json.dumps(r.config)}")
    if not rows:
        print("no channels configured")
    return 0
