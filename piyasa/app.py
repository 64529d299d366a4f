"""`piyasa up`: start every part in order, stop them in reverse, within 10 seconds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from piyasa import __version__
from piyasa.config import Settings, mask_url
from piyasa.db.connect import check_reachable, prepare_schema
from piyasa.logs import setup_logging
from piyasa.services import Services

log = logging.getLogger("piyasa")
STOP_DEADLINE_S = 10.0

Stopper = Callable[[], Awaitable[Any]]


@dataclass
class Running:
    """What `start()` brought up, so tests and the CLI can reach and stop it."""

    services: Services
    web_url: str = ""
    sandbox: Any = None
    sandbox_url: str = ""
    llm_server: Any = None
    lines: list[str] = field(default_factory=list)
    stoppers: list[tuple[str, Stopper]] = field(default_factory=list)

    def say(self, line: str, printer: Callable[[str], None] = print) -> None:
        self.lines.append(line)
        printer(line)

    async def stop(self) -> None:
        """Stop in reverse start order; one slow part cannot hold the others hostage."""
        per_part = STOP_DEADLINE_S / max(1, len(self.stoppers) + 1)
        for name, stopper in reversed(self.stoppers):
            try:
                await asyncio.wait_for(stopper(), per_part)
            except Exception as exc:
                log.warning("stopping %s failed: %s", name, type(exc).__name__)
        self.stoppers.clear()
        await self.services.close()


async def start(
    settings: Settings, *, sandbox: bool = False, printer: Callable[[str], None] = print
) -> Running:
    """Bring up database, sandbox (when asked or when no token is set) and the web server."""
    from chatops.alerts import start_alerts
    from chatops.startup import Surfaces
    from chatops.web.server import make_web_app, start_web

    secrets = [
        s.reveal()
        for s in (
            settings.admin_bot_token,
            settings.openai_api_key,
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.secret_key,
        )
        if s
    ]
    setup_logging(settings.log_level, secrets)
    services = Services.build(settings)
    running = Running(services=services)
    try:
        await check_reachable(services.engine, settings)
        schema_line = await prepare_schema(services.engine, settings)
        running.say(
            f"Piyasa {__version__}: data dir {settings.data_dir}, "
            f"database {settings.database_kind} ({mask_url(settings.database_url)}): {schema_line}",
            printer,
        )
        use_sandbox = sandbox or settings.sandbox or not settings.admin_bot_token
        if use_sandbox:
            await _start_sandbox(running, settings, reason_no_token=not sandbox, printer=printer)
        fleet = await _start_fleet(running, printer)
        await _start_health(running, fleet)
        web_app = make_web_app(running.services)
        _mount_fleet_webhook(web_app, fleet)
        surfaces = Surfaces(running.services, web_app)
        runner, port = await start_web(web_app, settings.http_host, settings.http_port)
        running.stoppers.append(("web", runner.cleanup))
        running.web_url = f"http://{settings.http_host}:{port}"
        running.say(
            f"Web: {running.web_url} (status page /, /healthz, /readyz, /api/health, /metrics"
            + (", sandbox chat /sandbox)" if running.sandbox else ")"),
            printer,
        )
        for line in await surfaces.start():
            running.say(line, printer)
        running.stoppers.append(("chat surfaces", surfaces.stop))
        running.stoppers.append(("alerts", await start_alerts(running.services, surfaces)))
    except BaseException:
        await running.stop()
        raise
    return running


async def _start_fleet(running: Running, printer: Callable[[str], None]) -> Any:
    """The bot fleet: bots and chats come from the database."""
    from piyasa.runtime.fleet import Fleet

    fleet = Fleet(running.services)
    running.services.extras["fleet"] = fleet
    await fleet.start()
    running.stoppers.append(("fleet", fleet.stop))
    snap = fleet.snapshot()
    llm = snap["llm"]
    running.say(
        f"Fleet: {snap['bots']} bots in {snap['chats']} chats, "
        f"{snap['workers']['total']} workers, "
        f"LLM {llm['provider']} ({llm['model']})",
        printer,
    )
    return fleet


async def _start_health(running: Running, fleet: Any) -> None:
    from piyasa.admin.health import HealthService

    health = HealthService(running.services, fleet=fleet)
    running.services.extras["health"] = health
    await health.start()
    running.stoppers.append(("health", health.stop))


def _mount_fleet_webhook(web_app: Any, fleet: Any) -> None:
    """Fleet bots in webhook mode post to /telegram/webhook/{bot_id}; 503 until active."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        handler = fleet.webhook_handler
        if handler is None:
            return web.json_response({"error": "fleet webhook mode is off"}, status=503)
        return await handler(request)

    web_app.router.add_post("/telegram/webhook/{bot_id}", handle)


async def _start_sandbox(
    running: Running, settings: Settings, *, reason_no_token: bool, printer: Callable[[str], None]
) -> None:
    from piyasa.sandbox.demo import seed_database, seed_sandbox
    from piyasa.sandbox.telegram import TelegramSandbox

    sb = TelegramSandbox()
    world = seed_sandbox(sb)
    url = await sb.start(settings.http_host, settings.sandbox_port)
    running.stoppers.append(("sandbox", sb.stop))
    running.sandbox, running.sandbox_url = sb, url
    running.services.extras["sandbox"] = sb  # the web app's /sandbox chat page reads it
    running.services.settings = dataclasses.replace(
        settings,
        telegram_api_url=url,
        admin_bot_token=type(settings.admin_bot_token)(world.admin_bot_token),
        admin_chat_ids=(world.admin_chat_id,),
        sandbox=True,
    )
    await seed_database(running.services)
    why = " (no PIYASA_ADMIN_BOT_TOKEN configured)" if reason_no_token else ""
    running.say(f"Telegram sandbox{why}: Bot API base URL {url}", printer)
    running.say(
        f"  demo fleet: {len(world.fleet_tokens)} bots in {len(world.group_ids)} groups; "
        f"admin bot token {world.admin_bot_token}",
        printer,
    )


def dump_tasks() -> None:
    """SIGUSR1: print every asyncio task's stack, to see what a stuck process waits on."""
    import io
    import sys

    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task.get_name()} {task.get_coro()!r}\n")
        task.print_stack(limit=12, file=out)
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


async def serve_forever(settings: Settings, *, sandbox: bool = False) -> int:
    """Run until SIGINT/SIGTERM, then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    starting = asyncio.create_task(start(settings, sandbox=sandbox))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # a stop signal during start-up: abandon it, clean up
        print("Stopping during start-up…", flush=True)
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        print("Stopped.", flush=True)
        return 0
    running = starting.result()
    print("Running. Press Ctrl+C to stop.", flush=True)
    try:
        await stopping
    finally:
        print("Stopping…", flush=True)
        await running.stop()
        print("Stopped.", flush=True)
    return 0
