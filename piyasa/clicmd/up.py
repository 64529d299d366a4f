"""`piyasa up`: run everything in the foreground."""

from __future__ import annotations

import argparse
import signal

from piyasa.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up",
        help="run the fleet, admin bots, scheduler and web server in the foreground",
        description="Run everything in the foreground; stops cleanly on Ctrl+C / SIGTERM. "
        "With no Telegram token configured it starts the local Telegram sandbox.",
    )
    p.add_argument("--sandbox", action="store_true", help="use the local Telegram sandbox")
    p.add_argument("--host", help="HTTP host (default PIYASA_HTTP_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default PIYASA_HTTP_PORT or 8080)")
    p.add_argument(
        "--detach",
        action="store_true",
        help="run in the background (pid file and log in the data dir); "
        "see `piyasa status|stop|restart`",
    )
    p.set_defaults(func=run)


def _stop_before_the_loop(_signum: int, _frame: object) -> None:
    """SIGINT/SIGTERM before `serve_forever` takes over: nothing started yet, exit 0."""
    print("Stopped.", flush=True)
    raise SystemExit(0)


def run(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    if not args.detach:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _stop_before_the_loop)
    if args.detach:
        from piyasa.clicmd.daemon import start_detached

        up_args = ["--sandbox"] if args.sandbox else []
        if args.host:
            up_args += ["--host", args.host]
        if args.port is not None:
            up_args += ["--port", str(args.port)]
        return start_detached(load_settings().data_dir, up_args)
    return run_foreground(args)


async def run_foreground(args: argparse.Namespace) -> int:
    from piyasa.app import serve_forever

    overrides = {}
    if args.host:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    settings = load_settings(**overrides)
    return await serve_forever(settings, sandbox=args.sandbox)
