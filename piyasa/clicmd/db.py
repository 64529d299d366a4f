"""`piyasa db copy --to URL`: copy every table to another database and verify row counts."""

from __future__ import annotations

import argparse
import json
import sys

from piyasa.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "db",
        help="database tools (copy to another database)",
        description="Database tools.",
    )
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    cp = dsub.add_parser(
        "copy",
        help="copy all data to another database (SQLite -> PostgreSQL), verified",
        description="Copy every table from the configured database to --to URL: the target "
        "gets the newest schema, rows are upserted by primary key (safe to re-run), and "
        "row counts are compared per table. Exit 1 when they differ. The configured "
        "database is not changed; switch with PIYASA_DATABASE_URL=URL and `piyasa restart`.",
    )
    cp.add_argument("--to", required=True, metavar="URL", help="target database URL")
    cp.add_argument("--json", action="store_true", help="print the report as JSON")
    cp.set_defaults(func=run_copy)
    p.set_defaults(func=lambda _a: p.print_help() or 0)


async def run_copy(args: argparse.Namespace) -> int:
    from piyasa.admin.setup.dbcopy import copy_database

    settings = load_settings()
    last = {"table": ""}

    def progress(table: str, done: int, total: int, i: int, n: int) -> None:
        if args.json or not table:
            return
        if table != last["table"]:
            last["table"] = table
            print(f"[{i + 1}/{n}] {table}: {total} rows", file=sys.stderr)

    report = await copy_database(settings.database_url, args.to, progress=progress)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for t in report.tables:
            mark = "✓" if t.ok else "✗"
            print(f"{mark} {t.name:<24} source {t.source_rows:>8}  target {t.target_rows:>8}")
        print(
            f"{report.rows} rows in {len(report.tables)} tables copied to {report.target} "
            f"in {report.seconds:.1f}s: "
            + ("row counts match." if report.ok else "ROW COUNTS DIFFER (see ✗ above).")
        )
        if report.ok:
            print("To switch: set PIYASA_DATABASE_URL to the new URL and run `piyasa restart`.")
    return 0 if report.ok else 1
