"""`piyasa user …`: break-glass user administration from the shell."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from piyasa.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "user",
        help="manage panel users from the shell (break-glass)",
        description="Add and list users and create one-time chat link codes, without chat.",
    )
    usub = p.add_subparsers(dest="user_command", metavar="ACTION")
    add = usub.add_parser("add", help="create a user", description="Create a panel user.")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    add.add_argument("--telegram-id", type=int, help="numeric Telegram user id to link")
    add.add_argument("--slack-id", help="Slack user id to link (e.g. U0123ABCD)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    add.set_defaults(func=run_add)
    ls = usub.add_parser("list", help="list users", description="List panel users.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    lc = usub.add_parser(
        "link-code",
        help="one-time code to link a Telegram/Slack account",
        description="Print a one-time code (10 minutes, single use); the user sends "
        "/link CODE to the admin bot in a private chat (or /piyasa link CODE in Slack).",
    )
    lc.add_argument("username")
    lc.set_defaults(func=run_link_code)
    p.set_defaults(func=lambda _args: p.print_help() or 0)


async def _with_services(fn):  # type: ignore[no-untyped-def]
    from piyasa.db.connect import check_reachable, prepare_schema
    from piyasa.services import Services

    settings = load_settings()
    services = Services.build(settings)
    try:
        await check_reachable(services.engine, settings)
        await prepare_schema(services.engine, settings)
        return await fn(services)
    finally:
        await services.close()


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        return line or None
    if sys.stdin.isatty():
        first = getpass.getpass("Password (empty: none until one is set): ")
        if not first:
            return None
        if getpass.getpass("Repeat password: ") != first:
            from piyasa.cli import CommandError

            raise CommandError("the passwords do not match; nothing was changed")
        return first
    return None


async def run_add(args: argparse.Namespace) -> int:
    from piyasa.admin.users import add_user

    password = _read_password(args)

    async def go(services):  # type: ignore[no-untyped-def]
        return await add_user(
            services,
            args.username,
            args.role,
            password=password,
            telegram_id=args.telegram_id,
            slack_id=args.slack_id,
        )

    info = await _with_services(go)
    linked = [f"telegram {t}" for t in info.telegram_ids] + [f"slack {s}" for s in info.slack_ids]
    print(
        f"created {info.username} ({info.role})"
        + (", linked to " + ", ".join(linked) if linked else "")
        + ("" if info.has_password else "; no password set")
    )
    return 0


async def run_list(args: argparse.Namespace) -> int:
    from piyasa.admin.users import list_users

    users = await _with_services(list_users)
    if args.json:
        print(json.dumps([u.as_json() for u in users], indent=2))
        return 0
    if not users:
        print("no users yet; create one with: piyasa user add NAME --role admin")
        return 0
    print(f"{'USERNAME':<24} {'ROLE':<9} {'STATUS':<7} {'MFA':<4} LINKED")
    for u in users:
        linked = ",".join([f"tg:{t}" for t in u.telegram_ids] + [f"slack:{s}" for s in u.slack_ids])
        status = "locked" if u.locked else "active"
        print(f"{u.username:<24} {u.role:<9} {status:<7} {'on' if u.mfa else 'off':<4} {linked}")
    return 0


async def run_link_code(args: argparse.Namespace) -> int:
    from piyasa.admin.users import link_code_for

    code = await _with_services(lambda s: link_code_for(s, args.username))
    print(code)
    print(
        f"Valid 10 minutes, once. {args.username} sends `/link {code}` to the admin bot in a "
        f"private chat, or `/piyasa link {code}` in Slack.",
        file=sys.stderr,
    )
    return 0
