"""`piyasa user …`: break-glass user administration from the shell.

Shell access to the data dir is the strongest credential there is, so the CLI needs no
step-up; it still keeps the safety rules (it cannot remove the last active admin) and
every change is audited with actor ``cli``. Secrets (a temporary password) are printed
once, to stdout, and nowhere else.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime

from piyasa.config import load_settings

ROLES = ["viewer", "operator", "admin"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "user",
        help="manage panel users from the shell (break-glass)",
        description="Add, inspect and change users without chat: roles, locks, passwords, "
        "two-factor, sessions. Every change is audited; the last active admin is protected.",
    )
    usub = p.add_subparsers(dest="user_command", metavar="ACTION")
    add = usub.add_parser("add", help="create a user", description="Create a panel user.")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--telegram-id", type=int, help="numeric Telegram user id to link")
    add.add_argument("--slack-id", help="Slack user id to link (e.g. U0123ABCD)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    add.add_argument(
        "--must-change", action="store_true", help="require a password change at first use"
    )
    add.set_defaults(func=run_add)

    ls = usub.add_parser("list", help="list users", description="List panel users.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--search", default="", help="only usernames containing this")
    ls.add_argument("--role", choices=ROLES, help="only this role")
    ls.add_argument(
        "--status",
        choices=["active", "locked", "must_change", "mfa_on", "mfa_off"],
        help="only users in this state",
    )
    ls.set_defaults(func=run_list)

    show = usub.add_parser(
        "show", help="one user's card", description="Role, status, activity and sessions."
    )
    show.add_argument("username")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)

    sr = usub.add_parser("set-role", help="change a user's role", description="Change a role.")
    sr.add_argument("username")
    sr.add_argument("role", choices=ROLES)
    sr.set_defaults(func=run_set_role)

    for name, helptext in (("lock", "lock a user out"), ("unlock", "let a locked user back in")):
        lk = usub.add_parser(name, help=helptext, description=helptext.capitalize() + ".")
        lk.add_argument("username")
        lk.set_defaults(func=run_lock, locked=name == "lock")

    rp = usub.add_parser(
        "reset-password",
        help="set a new temporary password",
        description="Print a new temporary password once (it must be changed at next use), "
        "or set the one read from stdin with --password-stdin.",
    )
    rp.add_argument("username")
    rp.add_argument("--password-stdin", action="store_true", help="read the new password")
    rp.set_defaults(func=run_reset_password)

    mr = usub.add_parser(
        "mfa-reset",
        help="turn off a user's two-factor authentication",
        description="Turn off two-factor authentication (lost phone); the user sets it up "
        "again with /mfa.",
    )
    mr.add_argument("username")
    mr.set_defaults(func=run_mfa_reset)

    rv = usub.add_parser(
        "revoke",
        help="end sessions: chat links, API keys, step-up",
        description="End one session (--identity ID, --api-key ID, --elevation) or all of "
        "them (--all). IDs are shown by `piyasa user show`.",
    )
    rv.add_argument("username")
    grp = rv.add_mutually_exclusive_group(required=True)
    grp.add_argument("--identity", type=int, metavar="ID", help="unlink one chat account")
    grp.add_argument("--api-key", type=int, metavar="ID", help="revoke one API key")
    grp.add_argument("--elevation", action="store_true", help="end the step-up elevation")
    grp.add_argument("--all", action="store_true", help="all of the above")
    rv.set_defaults(func=run_revoke)

    de = usub.add_parser(
        "delete",
        help="delete a user",
        description="Delete a user and everything linked to it. Asks you to type the "
        "username, unless --yes.",
    )
    de.add_argument("username")
    de.add_argument("--yes", action="store_true", help="do not ask (scripts)")
    de.set_defaults(func=run_delete)

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


def _fail(message: str) -> None:
    from piyasa.cli import CommandError

    raise CommandError(message)


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        return line or None
    if sys.stdin.isatty():
        first = getpass.getpass("Password (empty: none until one is set): ")
        if not first:
            return None
        if getpass.getpass("Repeat password: ") != first:
            _fail("the passwords do not match; nothing was changed")
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
            must_change=args.must_change,
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


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    s = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{int(s // size)} {unit} ago"
    return "just now"


async def run_list(args: argparse.Namespace) -> int:
    from piyasa.admin.users import list_users, query_users

    if args.search or args.role or args.status:

        async def filtered(services):  # type: ignore[no-untyped-def]
            names = []
            page, pages = 1, 1
            while page <= pages:
                result = await query_users(
                    services,
                    search=args.search,
                    role=args.role,
                    status=args.status,
                    page=page,
                    per_page=50,
                )
                names += [r.username for r in result.rows]
                page, pages = page + 1, result.pages
            return [u for u in await list_users(services) if u.username in set(names)]

        users = await _with_services(filtered)
    else:
        users = await _with_services(list_users)
    if args.json:
        print(json.dumps([u.as_json() for u in users], indent=2))
        return 0
    if not users:
        print("no users yet; create one with: piyasa user add NAME --role admin")
        return 0
    print(f"{'USERNAME':<24} {'ROLE':<9} {'STATUS':<7} {'MFA':<4} {'LAST LOGIN':<14} LINKED")
    for u in users:
        linked = ",".join([f"tg:{t}" for t in u.telegram_ids] + [f"slack:{s}" for s in u.slack_ids])
        status = "locked" if u.locked else "active"
        mfa = "on" if u.mfa else "off"
        print(
            f"{u.username:<24} {u.role:<9} {status:<7} {mfa:<4} "
            f"{_ago(u.last_login_at):<14} {linked}"
        )
    return 0


async def run_show(args: argparse.Namespace) -> int:
    from piyasa.admin.users import card

    c = await _with_services(lambda s: card(s, args.username))
    if args.json:
        print(json.dumps(c.as_json(), indent=2))
        return 0
    f = c.failures
    rows = [
        ("user", f"{c.username} (id {c.id})"),
        ("role", c.role),
        (
            "status",
            ("locked" if c.locked else "active")
            + (", must change password" if c.must_change else ""),
        ),
        ("password", "set" if c.has_password else "not set"),
        ("two-factor", c.mfa),
        ("created", _ago(c.created_at)),
        ("last login", _ago(c.last_login_at)),
        ("logins", str(c.ok_logins)),
        (
            "failed logins",
            f"{f.streak} in a row, {f.last_hour} in the last hour"
            + (f", next try in {f.retry_after_s} s" if f.retry_after_s else ""),
        ),
        ("step-up", c.elevated_until.isoformat() if c.elevated_until else "no"),
    ]
    for key, value in rows:
        print(f"{key + ':':<15} {value}")
    for i in c.identities:
        print(f"{'identity ' + str(i.id) + ':':<15} {i.provider} {i.external_id}")
    for k in c.api_keys:
        print(f"{'api key ' + str(k.id) + ':':<15} {k.prefix}… last used {_ago(k.last_used_at)}")
    return 0


async def run_set_role(args: argparse.Namespace) -> int:
    from piyasa.admin.users import CLI, set_role

    name = await _with_services(lambda s: set_role(s, CLI, args.username, args.role))
    print(f"{name} is now {args.role}")
    return 0


async def run_lock(args: argparse.Namespace) -> int:
    from piyasa.admin.users import CLI, set_locked

    name = await _with_services(lambda s: set_locked(s, CLI, args.username, args.locked))
    print(f"{name} is {'locked' if args.locked else 'unlocked'}")
    return 0


async def run_reset_password(args: argparse.Namespace) -> int:
    from piyasa.admin.users import CLI, reset_password, set_password

    if args.password_stdin:
        password = _read_password(args)
        if not password:
            _fail("no password on stdin; nothing was changed")
        name = await _with_services(lambda s: set_password(s, CLI, args.username, password))
        print(f"password of {name} is set")
        return 0
    name, temp = await _with_services(lambda s: reset_password(s, CLI, args.username))
    print(temp)
    print(
        f"Temporary password for {name}, shown once: it must be changed at next use.",
        file=sys.stderr,
    )
    return 0


async def run_mfa_reset(args: argparse.Namespace) -> int:
    from piyasa.admin.users import CLI, mfa_reset

    name = await _with_services(lambda s: mfa_reset(s, CLI, args.username))
    print(f"two-factor authentication is off for {name}; they set it up again with /mfa")
    return 0


async def run_revoke(args: argparse.Namespace) -> int:
    from piyasa.admin import users

    async def go(s):  # type: ignore[no-untyped-def]
        if args.identity is not None:
            return await users.unlink_identity(s, users.CLI, args.username, args.identity)
        if args.api_key is not None:
            return await users.revoke_api_key(s, users.CLI, args.username, args.api_key)
        if args.elevation:
            return await users.revoke_elevation(s, users.CLI, args.username)
        return await users.terminate_all(s, users.CLI, args.username)

    name = await _with_services(go)
    what = (
        "chat account unlinked"
        if args.identity is not None
        else "API key revoked"
        if args.api_key is not None
        else "step-up ended"
        if args.elevation
        else "every session ended"
    )
    print(f"{name}: {what}")
    return 0


def run_delete(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Ask first (a plain function, so the prompt blocks nothing), then delete."""
    if not args.yes:
        if not sys.stdin.isatty():
            _fail("deleting needs confirmation: pass --yes (or run it in a terminal)")
        typed = input(f"Type {args.username} to delete it: ").strip()
        if typed != args.username:
            _fail("the username does not match; nothing was deleted")
    return _delete(args)


async def _delete(args: argparse.Namespace) -> int:
    from piyasa.admin.users import CLI, delete_user

    name = await _with_services(lambda s: delete_user(s, CLI, args.username))
    print(f"{name} is deleted")
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
