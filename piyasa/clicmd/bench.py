"""`piyasa bench NAME [--json]`: run a benchmark from ``piyasa.bench``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from piyasa.bench import available

    p = sub.add_parser(
        "bench",
        help="run a benchmark and print its figures",
        description="Run a benchmark (with its baseline, in the same run) and print the figures.",
    )
    names = p.add_subparsers(dest="bench_name", metavar="NAME")
    for name, mod in sorted(available().items()):
        bp = names.add_parser(name, help=mod.DESCRIPTION, description=mod.DESCRIPTION)
        bp.add_argument("--json", action="store_true", help="print JSON only")
        mod.add_arguments(bp)
        bp.set_defaults(func=run, bench_module=mod)
    p.set_defaults(func=lambda _a: p.print_help() or 0)


async def run(args: argparse.Namespace) -> int:
    result = await args.bench_module.run(args)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=False))
    else:
        for key, value in result.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for k, v in value.items():
                    print(f"  {k}: {v}")
            else:
                print(f"{key}: {value}")
    return 0
