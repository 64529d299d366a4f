"""`piyasa chat …`: the fleet's chats from the shell (break-glass for /chats).

Same service and rules as chat (:mod:`piyasa.fleetadmin.chats`); changes are audited with
actor ``cli``. Every subcommand takes ``--json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from piyasa.clicmd.user import _with_services


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="the fleet's chats: list, show, add, enable, disable, set, remove",
        description="List and change the Telegram groups the fleet talks in. Changes are "
        "audited (actor cli) and reach a running fleet at its next roster refresh.",
    )
    csub = p.add_subparsers(dest="chat_command", metavar="ACTION")

    def add(name: str, helptext: str, func: Any, *refs: str) -> argparse.ArgumentParser:
        sp = csub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        for ref in refs:
            sp.add_argument(ref, help="the chat: its row id or its Telegram id (-100…)")
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.set_defaults(func=func)
        return sp

    ls = add("list", "list chats", run_list)
    ls.add_argument("--search", default="", help="part of the title, or the exact chat id")
    ls.add_argument("--status", choices=["enabled", "disabled"], help="only chats in this state")
    add("show", "one chat's card: its bots and how much each said", run_show, "chat")
    new = add("add", "add a chat after checking the bots' membership with Telegram", run_add)
    new.add_argument("ref", help="the chat's id (-100…) or its public @username")
    new.add_argument("--bot", type=int, action="append", help="ask only this bot id (repeat)")
    add("enable", "let the fleet talk in a chat", run_enable, "chat")
    add("disable", "stop the fleet in a chat (queued messages stay)", run_disable, "chat")
    st = add("set", "change a chat's title, topics or budget", run_set, "chat")
    st.add_argument("--title")
    st.add_argument("--topics", help="comma separated: bist, fx, crypto, macro or custom")
    st.add_argument("--budget", help="fleet messages an hour (1-1200) or off")
    add("remove", "remove a disabled chat with nothing undelivered", run_remove, "chat")
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


def _line(r: Any) -> str:
    budget = f"{r.msg_budget}/h" if r.msg_budget else "-"
    state = "on" if r.enabled else "off"
    return f"{r.id:<5} {r.telegram_id:<16} {state:<4} {r.bots:<5} {r.today:<6} {budget:<7} {r.name}"


async def run_list(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import chats

    async def rows(services: Any) -> list[Any]:
        out, page, pages = [], 1, 1
        while page <= pages:
            got = await chats.query_chats(
                services, search=args.search, status=args.status, page=page, per_page=50
            )
            out += got.rows
            page, pages = page + 1, got.pages
        return out

    found = await _with_services(rows)
    header = f"{'ID':<5} {'TELEGRAM ID':<16} {'ON':<4} {'BOTS':<5} {'TODAY':<6} {'BUDGET':<7} TITLE"
    text = "\n".join([header, *(_line(r) for r in found)]) if found else "no chats yet"
    return _out(args, [dataclasses.asdict(r) for r in found], text)


async def run_show(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import chats

    c = await _with_services(lambda s: chats.card(s, args.chat))
    lines = [
        _line(c.chat),
        f"topics: {', '.join(c.chat.topics)}",
        f"last hour: {c.last_hour}  undelivered: {c.pending}",
    ]
    lines += [
        f"  {b.name:<24} today {b.today:<5} 24h {b.last_24h:<5} {b.disabled_reason or ''}"
        for b in c.bots
    ]
    return _out(args, dataclasses.asdict(c), "\n".join(lines))


async def run_add(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin.chat_add import add_chat

    row = await _with_services(lambda s: add_chat(s, args.ref, actor="cli", bot_ids=args.bot))
    return _out(args, dataclasses.asdict(row), f"added: {_line(row)}")


async def _toggle(args: argparse.Namespace, on: bool) -> int:
    from piyasa.fleetadmin import chat_changes

    row = await _with_services(lambda s: chat_changes.set_enabled(s, args.chat, on, actor="cli"))
    return _out(args, dataclasses.asdict(row), _line(row))


async def run_enable(args: argparse.Namespace) -> int:
    return await _toggle(args, True)


async def run_disable(args: argparse.Namespace) -> int:
    return await _toggle(args, False)


async def run_set(args: argparse.Namespace) -> int:
    from piyasa.cli import CommandError
    from piyasa.fleetadmin import chat_changes

    if args.title is None and args.topics is None and args.budget is None:
        raise CommandError("nothing to set: give --title, --topics or --budget")
    # validate every value before changing any, so a bad one changes nothing
    if args.title is not None:
        chat_changes.clean_title(args.title)
    if args.topics is not None:
        chat_changes.clean_topics(args.topics)
    if args.budget is not None:
        chat_changes.clean_budget(args.budget)

    async def change(services: Any) -> Any:
        row = None
        if args.title is not None:
            row = await chat_changes.set_title(services, args.chat, args.title, actor="cli")
        if args.topics is not None:
            row = await chat_changes.set_topics(services, args.chat, args.topics, actor="cli")
        if args.budget is not None:
            row = await chat_changes.set_budget(services, args.chat, args.budget, actor="cli")
        return row

    row = await _with_services(change)
    return _out(args, dataclasses.asdict(row), _line(row))


async def run_remove(args: argparse.Namespace) -> int:
    from piyasa.fleetadmin import chat_changes

    name = await _with_services(lambda s: chat_changes.remove_chat(s, args.chat, actor="cli"))
    return _out(args, {"removed": name}, f"removed: {name}")
