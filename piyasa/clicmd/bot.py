"""`piyasa bot …`: the fleet's bots from the shell (break-glass), with ``--json``.

The same services as ``/bots`` (``piyasa.fleetadmin``), the same validation, and an audit
row per change with actor ``cli``. A token is read from stdin (``--token-stdin``) or a
terminal prompt, never from the command line (it would land in the shell history and in
``ps``), and is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

SETTABLE = ("name", "active_hours", "timezone", "speed", "hourly_limit")


def register(sub: argparse._SubParsersAction) -> None:
    from piyasa.fleetadmin.persona import PERSONA_FIELDS

    p = sub.add_parser(
        "bot",
        help="manage the fleet's bots from the shell",
        description="List, show, add, change, enable, disable and remove fleet bots. "
        "Changes are validated like in chat and audited (actor cli).",
    )
    bsub = p.add_subparsers(dest="bot_command", metavar="ACTION")
    ls = bsub.add_parser("list", help="list bots with their status")
    ls.add_argument("--search", default="", help="only names/usernames containing this")
    ls.add_argument(
        "--status", choices=["enabled", "disabled", "system", "active_now", "inactive_now"]
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)

    show = bsub.add_parser("show", help="one bot's card")
    show.add_argument("bot", help="id, username or @username")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)

    add = bsub.add_parser(
        "add", help="add a bot (token from stdin or a prompt; checked with getMe)"
    )
    add.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    add.add_argument("--template", help="start from a persona template (analyst, fx, crypto)")
    add.add_argument("--enable", action="store_true", help="enable it at once")
    add.add_argument("--json", action="store_true", help="machine-readable output")
    add.set_defaults(func=run_add)

    st = bsub.add_parser(
        "set",
        help="change one field",
        description="FIELD is one of "
        + ", ".join([*SETTABLE, *(f"persona.{f}" for f in PERSONA_FIELDS)]),
    )
    st.add_argument("bot")
    st.add_argument("field")
    st.add_argument("value")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=run_set)

    for name in ("enable", "disable"):
        en = bsub.add_parser(name, help=f"{name} a bot")
        en.add_argument("bot")
        en.add_argument("--json", action="store_true", help="machine-readable output")
        en.set_defaults(func=run_enable, enabled=name == "enable")

    rm = bsub.add_parser("remove", help="remove a bot (asks for its username unless --yes)")
    rm.add_argument("bot")
    rm.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    rm.add_argument("--json", action="store_true", help="machine-readable output")
    rm.set_defaults(func=run_remove)
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _fail(message: str) -> None:
    from piyasa.cli import CommandError

    raise CommandError(message)


async def _with_services(fn: Any) -> Any:
    from piyasa.clicmd.user import _with_services as with_services
    from piyasa.fleetadmin.bots import BotError
    from piyasa.fleetadmin.persona import PersonaError

    async def guarded(services: Any) -> Any:
        try:
            return await fn(services)
        except (BotError, PersonaError) as exc:
            _fail(f"{exc}; nothing was changed")

    return await with_services(guarded)


async def _audit(
    services: Any, action: str, target: str, result: str = "ok", **params: Any
) -> None:
    from piyasa.admin import audit

    await audit.record(
        services,
        actor="cli",
        surface="cli",
        action=action,
        target=target,
        result=result,
        params=params,
    )


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)
    return 0


async def run_list(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin.bots import list_bots

    async def go(s: Any) -> Any:
        return await list_bots(s, search=args.search, status=args.status, per_page=100_000)

    page = await _with_services(go)
    rows = [r.as_json() for r in page.rows]
    lines = [f"{'ID':<5} {'BOT':<24} {'STATUS':<8} {'NOW':<6} {'TODAY':>5} {'ERR':>4} {'429':>4}"]
    for r in page.rows:
        status = "on" if r.enabled else ("stopped" if r.disabled_reason else "off")
        now = "-" if r.active_now is None else ("yes" if r.active_now else "no")
        lines.append(
            f"{r.id:<5} {('@' + r.username) if r.username else r.name:<24} {status:<8} {now:<6} "
            f"{r.messages_today:>5} {r.errors_1h:>4} {r.r429_1h:>4}"
        )
    return _print(args, rows, "\n".join(lines) if page.rows else "no bots yet: piyasa bot add")


async def run_show(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin.bots import card
    from piyasa.fleetadmin.persona import PERSONA_FIELDS, show_field

    c = await _with_services(lambda s: card(s, args.bot))
    r = c.row
    lines = [
        f"bot:          {r.name} (@{r.username}, id {r.id})",
        f"status:       {'on' if r.enabled else 'off'}"
        + (f" — stopped by the system: {r.disabled_reason}" if r.disabled_reason else ""),
        f"active hours: {c.active_hours} ({c.timezone})",
        f"speed:        {c.speed_profile}, at most {c.hourly_limit}/hour",
        f"today:        {r.messages_today} sent; last hour {r.errors_1h} failed, {r.r429_1h} 429",
        f"token:        {c.token_hint}",
        "chats:        " + (", ".join(ch.title for ch in c.chats if ch.member) or "none"),
    ]
    lines += [f"{f + ':':<13} {show_field(f, c.persona.get(f))}" for f in PERSONA_FIELDS]
    return _print(args, c.as_json(), "\n".join(lines))


def _read_token(args: argparse.Namespace) -> str:
    if args.token_stdin:
        return sys.stdin.readline().strip()
    if sys.stdin.isatty():
        return getpass.getpass("Bot token (from BotFather): ").strip()
    _fail("give the token on stdin with --token-stdin (never on the command line)")
    return ""


async def run_add(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import bot_changes
    from piyasa.fleetadmin.persona import TEMPLATES

    token = _read_token(args)
    if args.template and args.template not in TEMPLATES:
        _fail(f"no template {args.template!r}; one of {', '.join(TEMPLATES)}")
    persona = dict(TEMPLATES.get(args.template or "", {}))

    async def go(s: Any) -> int:
        new_id = await bot_changes.add_bot(s, token, persona, actor="cli", enabled=args.enable)
        await _audit(s, "bot.add", str(new_id), enabled=args.enable)
        return new_id

    new_id = await _with_services(go)
    state = "enabled" if args.enable else "disabled (piyasa bot enable to start it)"
    return _print(args, {"id": new_id, "enabled": args.enable}, f"added bot {new_id}, {state}")


async def run_set(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import bot_changes as ch

    field = args.field.lower()
    setters = {
        "name": ch.rename,
        "active_hours": ch.set_active_hours,
        "timezone": ch.set_timezone,
        "speed": ch.set_speed,
        "hourly_limit": ch.set_hourly_limit,
    }

    async def go(s: Any) -> Any:
        if field.startswith("persona."):
            done = await ch.set_persona_field(
                s, args.bot, field.removeprefix("persona."), args.value, actor="cli"
            )
        elif field in setters:
            done = await setters[field](s, args.bot, args.value, actor="cli")
        else:
            _fail(f"cannot set {field!r}; one of {', '.join(SETTABLE)} or persona.<field>")
        await _audit(
            s, "bot.set", str(done.bot_id), field=field, old=str(done.old), new=str(done.new)
        )
        return done

    done = await _with_services(go)
    data = {"id": done.bot_id, "field": field, "old": done.old, "new": done.new}
    return _print(args, data, f"{done.name}: {field} {done.old!r} -> {done.new!r}")


async def run_enable(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import bot_changes

    async def go(s: Any) -> Any:
        done = await bot_changes.set_enabled(s, args.bot, args.enabled, actor="cli")
        await _audit(s, "bot.enable" if args.enabled else "bot.disable", str(done.bot_id))
        return done

    done = await _with_services(go)
    word = "enabled" if args.enabled else "disabled"
    return _print(args, {"id": done.bot_id, "enabled": args.enabled}, f"{done.name} is {word}")


def run_remove(args: argparse.Namespace) -> Any:
    """Ask for the username first (a plain function: the prompt blocks nothing)."""
    typed = args.bot
    if not args.yes:
        if not sys.stdin.isatty():
            _fail("removing needs confirmation: pass --yes (or run it in a terminal)")
        typed = input("Type the bot's username to remove it: ").strip()
    return _remove(args, typed)


async def _remove(args: argparse.Namespace, typed: str) -> int:
    from piyasa.fleetadmin import bot_changes

    async def go(s: Any) -> str:
        name = await bot_changes.remove_bot(s, args.bot, typed, actor="cli")
        await _audit(s, "bot.remove", args.bot)
        return name

    name = await _with_services(go)
    return _print(args, {"removed": args.bot}, f"{name} is removed")
