"""`piyasa alerts list|ack|silence|test|channel`: the notification center from the shell.

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
    _register_channel(asub)
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _register_channel(asub: argparse._SubParsersAction) -> None:
    ch = asub.add_parser(
        "channel",
        help="add, remove or list email / webhook / Apprise channels",
        description="Configure the channels notifications go to beyond chat. A channel "
        "that cannot work (a bad option, a webhook URL that is not http(s), an SMTP host "
        "that does not answer) is refused with the fix, and nothing is saved. Options are "
        "NAME=VALUE (docs/notifications.md lists them); a secret option (password, secret, "
        "url) can be read from standard input with --secret-stdin OPTION so it never shows "
        "in the process list.",
    )
    csub = ch.add_subparsers(dest="channel_command", metavar="ACTION")
    add = csub.add_parser(
        "add",
        help="add a channel (checked against the far end first)",
        description="e.g. `piyasa alerts channel add ops-mail email host=smtp.example.com "
        "from=piyasa@example.com to=ops@example.com username=piyasa --secret-stdin password`",
    )
    add.add_argument("name")
    add.add_argument("kind", choices=["email", "webhook", "apprise"])
    add.add_argument("options", nargs="*", metavar="OPTION=VALUE")
    add.add_argument("--secret-stdin", metavar="OPTION", help="read this option from stdin")
    add.add_argument("--no-check", action="store_true", help="save without contacting the far end")
    add.add_argument("--json", action="store_true", help="machine-readable output")
    add.set_defaults(func=run_channel_add)
    rm = csub.add_parser("remove", help="remove a channel")
    rm.add_argument("name")
    rm.set_defaults(func=run_channel_remove)
    ls = csub.add_parser("list", help="list configured channels (secrets masked)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_channels)
    ch.set_defaults(func=lambda _args: ch.print_help() or 0)


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


def _options(args: argparse.Namespace) -> dict[str, str]:
    """``OPTION=VALUE`` words (and the ``--secret-stdin`` one) as a config; exit 1 on a
    word that is not ``OPTION=VALUE``."""
    import sys

    config: dict[str, str] = {}
    for word in args.options:
        key, eq, value = word.partition("=")
        if not eq or not key.strip():
            _fail(f"{word!r} is not OPTION=VALUE (e.g. host=smtp.example.com); nothing was changed")
        config[key.strip().lower()] = value.strip()
    if args.secret_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            _fail(f"no value for {args.secret_stdin} on standard input; nothing was changed")
        config[args.secret_stdin.strip().lower()] = value
    return config


async def run_channel_add(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import destinations
    from piyasa.admin.notify.service import default_channel_factory

    config = _options(args)

    async def go(services: Any) -> Any:
        await destinations.add_channel(
            services, args.name, args.kind, config, default_channel_factory, check=not args.no_check
        )
        info = next(c for c in await destinations.channels(services) if c.name == args.name.lower())
        await _audit(services, "alerts.channel.add", f"channel:{info.name}", **info.config)
        return info

    info = await _run(go)
    if args.json:
        print(json.dumps(info.as_json(), indent=2))
    else:
        print(f"channel {info.name} ({info.kind}) added: {json.dumps(info.config)}")
    return 0


async def run_channel_remove(args: argparse.Namespace) -> int:
    from piyasa.admin.notify import destinations

    async def go(services: Any) -> None:
        await destinations.remove_channel(services, args.name)
        await _audit(services, "alerts.channel.remove", f"channel:{args.name.lower()}")

    await _run(go)
    print(f"channel {args.name.lower()} removed")
    return 0
