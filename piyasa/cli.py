"""The `piyasa` command. Subcommands live in `piyasa.clicmd.*`, each with `register()`.

Every expected failure (bad setting, unreachable database, unwritable data dir) ends in
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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


def run(argv: Sequence[str] | None = None) -> int:
    """The process entry point (the `piyasa` script, `python -m piyasa.cli`): :func:`main`,
    then skip the interpreter's final garbage collection.

    At exit CPython walks every tracked object once more. With aiogram's pydantic models
    loaded that pass costs about 1 s of CPU, and on a loaded 2-core machine it was most of
    the 5 s from SIGTERM to the exit of `piyasa up` (`piyasa bench startup`). By now the
    command has closed what it opened, so freezing the heap only skips that walk; atexit
    handlers (logging's flush) still run. Not in :func:`main`: tests call it in-process.
    """
    code = main(argv)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
