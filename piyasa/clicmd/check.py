"""`piyasa check [--json]`: the doctor. Exit 1 when anything is critical."""

from __future__ import annotations

import argparse
import json

from piyasa.config import Settings, load_settings

MARK = {"healthy": "✓", "unknown": "·", "warning": "!", "critical": "✗"}  # also `piyasa setup`


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check every configured connection and setting (exit 1 on critical)",
        description="Check the machine and every configured connection and setting: "
        "healthy / warning / critical per item, with the fix. Exit 1 when anything is "
        "critical.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    from piyasa.admin.setup import checks

    settings = load_settings()
    items = await checks.run_all(settings)
    code = checks.exit_code(items)
    if any(c.name == "schema" for c in items):  # the database answered
        await tell_running(settings)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": code == 0,
                    "critical": sum(c.critical for c in items),
                    "checks": [c.as_json() for c in items],
                },
                indent=2,
            )
        )
        return code
    width = max(len(c.name) for c in items)
    for c in items:
        print(f"{MARK[c.state.value]} {c.name:<{width}}  {c.state.value:<8} {c.summary}")
        if c.fix and c.state.value != "healthy":
            print(f"  {'':<{width}}  fix: {c.fix}")
    bad = sum(c.critical for c in items)
    print("\n" + (f"{bad} critical problem(s)." if bad else "No critical problems."))
    return code


async def tell_running(settings: Settings) -> bool:
    """Store whether migrations are pending as a notification (issue 13): the running
    `piyasa up` delivers it to the operators on its next tick, and a later check (or
    `piyasa up`'s start) with the schema current resolves it. False when nothing could
    be stored (an empty or unreachable database: the check's own lines say why)."""
    from piyasa.admin.notify.producers import record, schema_status
    from piyasa.services import Services

    services = Services.build(settings)
    try:
        event = await schema_status(services.engine)
        return event is not None and await record(services, event)
    except Exception:
        return False
    finally:
        await services.close()
