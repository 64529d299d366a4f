"""The `piyasa` command. Subcommands live in `piyasa.clicmd.*`, each with `register()`.

Every expected failure (bad setting, unreachable database, unwritable data dir) ends in
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import pkgutil
import sys
from collections.abc import Sequence

from piyasa import __version__
from piyasa.config import PRIVATE_UMASK
from piyasa.errors import UserFacingError


class CommandError(UserFacingError):
    """An expected CLI failure whose message is the whole story for the operator."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="piyasa",
        description="Run a fleet of LLM-driven Telegram market-chat bots, and run it from chat.",
    )
    parser.add_argument("--version", action="version", version=f"piyasa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import piyasa.clicmd as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"piyasa.clicmd.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Everything it creates (database, log, config, backups) is readable
    by the owner only: the umask is 0077 while it runs (restored after, for callers that
    run commands in-process)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        result = args.func(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except UserFacingError as exc:
        print(f"piyasa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(previous_umask)


if __name__ == "__main__":
    sys.exit(main())
