"""`piyasa analytics …`: rollup upkeep and figures from the shell.

``overview`` (alias ``show``), ``bots [--sort S] [--limit N]``, ``bot NAME_OR_ID`` and
``export [TABLE] [--out FILE]`` print the figures of a period (``--period`` 24h, 7d, 30d or
YYYY-MM-DD..YYYY-MM-DD, the chat's parser) as a compact table, ``--json`` in the shapes of
``piyasa.analytics.report`` (those of ``GET /api/analytics``), or the chat's CSV.
``rebuild [--since DATE]`` recomputes rollups from raw rows, ``reprice --from --to
[--prices FILE]`` re-prices a period, ``prune --older-than DAYS`` deletes raw message rows
(rollups stay). Each first brings the rollups up to date (``piyasa.analytics.rollup``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from piyasa.analytics.types import EXPORT_TABLES as TABLES
from piyasa.analytics.types import SORTS
from piyasa.clicmd.user import _with_services
from piyasa.errors import UserFacingError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analytics",
        help="bot analytics: show figures, rebuild, reprice and prune rollups",
        description="Bot analytics read hourly/daily rollups of every bot message. These "
        "commands show the figures and maintain the rollups.",
    )
    asub = p.add_subparsers(dest="analytics_command", metavar="ACTION")

    def add(name: str, helptext: str, func: Any) -> argparse.ArgumentParser:
        sp = asub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.set_defaults(func=func)
        return sp

    period_help = "24h (default), 7d, 30d or YYYY-MM-DD..YYYY-MM-DD (UTC, both days included)"
    for name in ("overview", "show"):
        ov = add(name, "the overview of a period (from rollups)", run_show)
        ov.add_argument("--period", default="24h", help=period_help)
    bots = add("bots", "every bot's figures in a period, sorted", run_bots)
    bots.add_argument("--period", default="24h", help=period_help)
    bots.add_argument("--sort", choices=SORTS, default="messages", help="default: messages")
    bots.add_argument("--limit", type=int, help="show the first N bots only")
    bot = add("bot", "one bot's figures, topics, chats, models and errors", run_bot)
    bot.add_argument("bot", metavar="NAME_OR_ID", help="bot id, @username or display name")
    bot.add_argument("--period", default="24h", help=period_help)
    ex = add("export", "a table as CSV (the chat's [CSV]), to stdout or --out FILE", run_export)
    ex.add_argument("table", nargs="?", choices=TABLES, default="bots", help="default: bots")
    ex.add_argument("--period", default="24h", help=period_help)
    ex.add_argument("--bot", metavar="NAME_OR_ID", help="the bot of the 'bot' table")
    ex.add_argument("--sort", choices=SORTS, default="messages", help="order of 'bots'")
    ex.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    rb = add("rebuild", "recompute rollups from raw message rows", run_rebuild)
    rb.add_argument("--since", type=_day, help="first day (YYYY-MM-DD, UTC); default all")
    rp = add("reprice", "recompute the cost of a period with the price table", run_reprice)
    rp.add_argument("--from", dest="start", type=_day, required=True, help="YYYY-MM-DD (UTC)")
    rp.add_argument("--to", dest="end", type=_day, required=True, help="YYYY-MM-DD, included")
    rp.add_argument(
        "--prices",
        type=Path,
        help='JSON file {"model": {"input": $, "cached": $, "output": $}} per million tokens; '
        "default: the fleet's llm_prices setting over the built-in list prices",
    )
    pr = add("prune", "delete raw message rows older than DAYS days (rollups stay)", run_prune)
    pr.add_argument("--older-than", dest="days", type=int, required=True, metavar="DAYS")
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-30") from None


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


async def _upkeep(services: Any) -> Any:
    from piyasa.analytics.maintenance import Upkeep

    job = Upkeep(services.sessions, services.engine.dialect.name)
    await job.catch_up()
    return job


def _period(args: argparse.Namespace) -> Any:
    """``--period`` parsed as the chat parses it; ``PeriodError`` (exit 2) for bad text."""
    from piyasa.analytics.queries import Period

    return Period.parse(args.period, datetime.now(UTC))


async def _figures(args: argparse.Namespace, view: str, **kw: Any) -> dict[str, Any]:
    """``report.figures`` after the rollup catch-up; a ValueError is a one-line exit 2."""
    from piyasa.analytics.report import figures
    from piyasa.cli import CommandError

    period = _period(args)

    async def go(services: Any) -> Any:
        await _upkeep(services)
        return await figures(services.sessions, view, period, **kw)

    try:
        return await _with_services(go)
    except ValueError as exc:
        if isinstance(exc, UserFacingError):
            raise
        raise CommandError(str(exc)) from None


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """Left-aligned first column, right-aligned figures, two spaces apart."""
    cells = [header, *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    )


def _head(p: dict[str, Any]) -> str:
    return f"period {p['label']}: {p['start'][:16]} .. {p['end'][:16]} UTC"


def _bot_cells(r: dict[str, Any]) -> tuple[Any, ...]:
    f = r["figures"]
    rate = "-" if f["success_rate"] is None else f"{f['success_rate']:.1%}"
    name = r["name"] if r["enabled"] else f"{r['name']} (paused)"
    return (f"#{r['bot_id']} {name}", f["messages"], rate, _ms(f["p95_ms"]), f["cost_usd"])


BOT_HEADER = ("bot", "messages", "success", "p95 ms", "cost $")


async def run_show(args: argparse.Namespace) -> int:
    ov = await _figures(args, "overview")
    f, was = ov["figures"], ov["previous"]
    rate = "-" if f["success_rate"] is None else f"{f['success_rate']:.1%}"
    lines = [
        _head(ov["period"]),
        _table(
            ("", "messages", "success", "cost $", "avg ms", "p95 ms"),
            [
                ("now", f["messages"], rate, f["cost_usd"], _ms(f["avg_ms"]), _ms(f["p95_ms"])),
                (
                    "previous",
                    was["messages"],
                    "-" if was["success_rate"] is None else f"{was['success_rate']:.1%}",
                    was["cost_usd"],
                    _ms(was["avg_ms"]),
                    _ms(was["p95_ms"]),
                ),
            ],
        ),
        f"tokens in {f['tokens_in']} (cached {f['tokens_cached']}) out {f['tokens_out']}",
    ]
    if ov["top"]:
        lines += ["top:", _table(BOT_HEADER, [_bot_cells(r) for r in ov["top"]])]
    lines += [
        f"issue: {i['kind']} bot #{i['bot_id']} {i['value']:.3g} > {i['threshold']:.3g}"
        for i in ov["issues"]
    ]
    return _print(args, ov, "\n".join(lines))


async def run_bots(args: argparse.Namespace) -> int:
    data = await _figures(args, "bots", sort=args.sort, limit=args.limit)
    lines = [
        f"{_head(data['period'])}; {data['total']} bots by {data['sort']}",
        _table(BOT_HEADER, [_bot_cells(r) for r in data["bots"]]),
    ]
    return _print(args, data, "\n".join(lines))


async def run_bot(args: argparse.Namespace) -> int:
    data = await _figures(args, "bot", bot=args.bot)
    d = data["bot"]
    f = d["row"]["figures"]
    lines = [_head(data["period"]), _table(BOT_HEADER, [_bot_cells(d["row"])])]
    lines.append(
        f"sent {f['sent']}  failed {f['failed']}  per hour {d['per_hour']:.1f}  "
        f"cost/message ${d['cost_per_message'] or '-'}"
    )
    lines.append(
        "response ms: "
        + "  ".join(f"{k} {_ms(f[k + '_ms'])}" for k in ("avg", "p50", "p95", "p99", "min"))
    )
    lines.append(f"tokens in {f['tokens_in']} (cached {f['tokens_cached']}) out {f['tokens_out']}")
    for what in ("topics", "chats", "models"):
        if d[what]:
            lines.append(
                f"{what}: "
                + ", ".join(f"{s['name']} {s['messages']} ({s['share']:.0%})" for s in d[what])
            )
    lines += [
        f"error {e['error_class']}: {e['count']} (last {e['last_seen'][:16]})" for e in d["errors"]
    ]
    return _print(args, data, "\n".join(lines))


async def run_export(args: argparse.Namespace) -> int:
    from piyasa.analytics.report import table_csv
    from piyasa.clicmd.user import _fail

    if args.table == "bot" and not args.bot:
        _fail("export bot needs --bot NAME_OR_ID")
    if args.json and not args.out:
        _fail("export writes CSV; --json reports on a file written with --out FILE")
    period = _period(args)

    async def go(services: Any) -> bytes:
        await _upkeep(services)
        return await table_csv(services.sessions, args.table, period, bot=args.bot, sort=args.sort)

    data = await _with_services(go)
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    rows = max(data.count(b"\n") - 1, 0)
    report = {"table": args.table, "period": period.label, "rows": rows, "out": str(args.out)}
    return _print(args, report, f"wrote {rows} rows of {args.table} to {args.out}")


async def run_rebuild(args: argparse.Namespace) -> int:
    async def go(services: Any) -> Any:
        return await (await _upkeep(services)).rebuild(args.since)

    out = await _with_services(go)
    note = (
        f" (raw rows before {out.clamped_to:%Y-%m-%d} are pruned; kept)" if out.clamped_to else ""
    )
    return _print(args, out.as_dict(), f"rebuilt from {out.messages} messages{note}")


async def run_reprice(args: argparse.Namespace) -> int:
    from piyasa.clicmd.user import _fail

    if args.start > args.end:
        _fail("--from is after --to")
    prices = None
    if args.prices:
        try:
            prices = json.loads(args.prices.read_text())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read {args.prices}: {exc}")
    end = args.end.replace(hour=0) + (datetime(2000, 1, 2) - datetime(2000, 1, 1))

    async def go(services: Any) -> Any:
        return await (await _upkeep(services)).reprice(args.start, end, prices)

    out = await _with_services(go)
    return _print(args, out.as_dict(), f"re-priced {out.messages} messages")


async def run_prune(args: argparse.Namespace) -> int:
    from piyasa.clicmd.user import _fail

    if args.days < 1:
        _fail("--older-than takes a number of days, at least 1")

    async def go(services: Any) -> Any:
        return await (await _upkeep(services)).prune(args.days)

    out = await _with_services(go)
    return _print(
        args,
        out.as_dict(),
        f"deleted {out.messages} raw message rows older than {out.end:%Y-%m-%d}; rollups kept",
    )
