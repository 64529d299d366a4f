"""`piyasa settings get|set|history|undo`: fleet-wide settings from the shell.

Same validation, versioning, history and audit (actor ``cli``) as ``/settings``
(:mod:`piyasa.fleetadmin.settings`); a running fleet picks a change up at its next
settings refresh (a few seconds). Every subcommand takes ``--json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from piyasa.clicmd.user import _with_services


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "settings",
        help="fleet-wide settings: get, set, history, undo",
        description="Read and change the fleet's runtime settings (validated, versioned, "
        "audited as cli, undoable).",
    )
    ssub = p.add_subparsers(dest="settings_command", metavar="ACTION")

    def add(name: str, helptext: str, func: Any) -> argparse.ArgumentParser:
        sp = ssub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.set_defaults(func=func)
        return sp

    get = add("get", "every setting (or one) with its value and valid range", run_get)
    get.add_argument("key", nargs="?")
    st = add("set", "change a setting (validated; old and new printed)", run_set)
    st.add_argument("key")
    st.add_argument("value")
    st.add_argument("--reason", help="why, kept in the history and the audit log")
    hi = add("history", "the newest changes (of one setting, or all)", run_history)
    hi.add_argument("key", nargs="?")
    hi.add_argument("--limit", type=int, default=20)
    un = add("undo", "put back the value before the last change", run_undo)
    un.add_argument("key", nargs="?")
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _change_json(c: Any) -> dict[str, Any]:
    return {**dataclasses.asdict(c), "at": c.at.isoformat()}


def _change_line(c: Any) -> str:
    undo = f" (undo of #{c.undo_of})" if c.undo_of else ""
    return f"#{c.id} {c.at:%Y-%m-%d %H:%M} {c.key}: {c.old!r} -> {c.new!r} v{c.version} by {c.actor}{undo}"


async def run_get(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import settings as fs

    async def values(services: Any) -> list[Any]:
        if args.key:
            return [await fs.get(services, args.key)]
        return await fs.current(services)

    found = await _with_services(values)
    data = [
        {
            "key": v.spec.key,
            "value": v.value,
            "version": v.version,
            "range": v.spec.range_text(),
            "role": v.spec.role,
            "updated_by": v.updated_by,
        }
        for v in found
    ]
    text = "\n".join(
        f"{d['key']:<18} {d['value']!r:<24} v{d['version']:<4} {d['range']:<14} {d['role']}"
        for d in data
    )
    print(json.dumps(data[0] if args.key else data, indent=2) if args.json else text)
    return 0


async def run_set(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import settings as fs

    c = await _with_services(
        lambda s: fs.change_setting(s, args.key, args.value, actor="cli", reason=args.reason)
    )
    print(json.dumps(_change_json(c), indent=2) if args.json else _change_line(c))
    return 0


async def run_history(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import settings as fs

    found = await _with_services(lambda s: fs.history(s, args.key, args.limit))
    if args.json:
        print(json.dumps([_change_json(c) for c in found], indent=2))
    else:
        print("\n".join(_change_line(c) for c in found) or "no change yet")
    return 0


async def run_undo(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import settings as fs

    c = await _with_services(lambda s: fs.undo_last(s, args.key, actor="cli"))
    print(json.dumps(_change_json(c), indent=2) if args.json else _change_line(c))
    return 0
