"""`piyasa migrate`: apply (or undo) database migrations."""

from __future__ import annotations

import argparse

from piyasa.config import load_settings, mask_url


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate",
        help="apply database migrations",
        description="Upgrade the configured database to the newest schema (or --to REVISION).",
    )
    p.add_argument("--to", default="head", help="target revision (default: head)")
    p.add_argument("--downgrade", action="store_true", help="move down to --to instead of up")
    p.add_argument("--status", action="store_true", help="only print current and newest revision")
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    from piyasa.db import migrate
    from piyasa.db.connect import check_reachable
    from piyasa.db.engine import create_engine

    settings = load_settings()
    engine = create_engine(settings.database_url)
    try:
        await check_reachable(engine, settings)
        before = await migrate.current_revision(engine)
        head = migrate.head_revision()
        where = mask_url(settings.database_url)
        if args.status:
            print(f"{where}: at {before or 'empty'}, newest {head}")
            return 0
        if args.downgrade:
            await migrate.downgrade(engine, args.to if args.to != "head" else "-1")
        else:
            await migrate.upgrade(engine, args.to)
        after = await migrate.current_revision(engine)
        print(f"{where}: {before or 'empty'} -> {after or 'empty'}")
        return 0
    finally:
        await engine.dispose()
