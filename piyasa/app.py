"""`piyasa up`: answer `/healthz` first, bring the parts up in order, stop at any moment.

Order: web server (liveness, readiness, a "starting…" page; aiohttp and the standard library
only) → aiogram + openai imported once, in a daemon thread, while the loop keeps answering →
database (reachability, migrations that are never cut half-way) → sandbox → fleet → health →
chat surfaces → alerts. `/readyz` lists the parts still starting or failed; the banner prints
the time from launch to ready.

SIGINT/SIGTERM at any point — imports, migrations, sandbox start, polling, shutdown itself —
stops within ``STOP_DEADLINE_S`` with exit status 0 and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from piyasa import __version__
from piyasa.config import Settings, mask_url
from piyasa.readiness import Readiness
from piyasa.tasks import cancel_and_wait, wait_for

if TYPE_CHECKING:
    from aiohttp import web

    from piyasa.services import Services

log = logging.getLogger("piyasa")
STOP_DEADLINE_S = 4.0  # whole shutdown, all parts together (the promise is 5 s)
HOLD_ENV = "PIYASA_START_HOLD"  # test hook: pause start-up at a named point until a stop signal
HOLD_POINTS = ("web", "imports", "migrations", "sandbox")
HEAVY_MODULES = ("aiogram", "aiogram.types", "openai")  # 3-8 s of CPU (pydantic schemas)

Stopper = Callable[[], Awaitable[Any]]
Printer = Callable[[str], None]


class HeavyImports:
    """Import ``HEAVY_MODULES`` once per process in a daemon thread.

    The loop keeps serving `/healthz` meanwhile (the thread yields the GIL every few ms),
    and a stop signal does not wait for an import: the thread is a daemon, and
    :func:`serve_forever` ends the process at once if it is still importing.
    """

    _thread: threading.Thread | None = None
    _done = threading.Event()
    _error: BaseException | None = None

    @classmethod
    def start(cls) -> None:
        if cls._thread is None:
            cls._thread = threading.Thread(target=cls._run, name="piyasa-imports", daemon=True)
            cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        try:
            for name in HEAVY_MODULES:
                importlib.import_module(name)
        except BaseException as exc:  # reported by wait(), in the loop
            cls._error = exc
        finally:
            cls._done.set()

    @classmethod
    def busy(cls) -> bool:
        return cls._thread is not None and not cls._done.is_set()

    @classmethod
    async def wait(cls) -> None:
        """Until the imports are done; raises what the import raised."""
        cls.start()
        # A threading.Event cannot be awaited without a thread of its own; poll it (50 ms).
        while not cls._done.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if cls._error is not None:
            raise RuntimeError(f"cannot import the Telegram/OpenAI libraries: {cls._error}")


@dataclass
class Running:
    """What `start()` brought up, so tests and the CLI can reach and stop it."""

    services: Services | None = None
    readiness: Readiness = field(default_factory=Readiness)
    web_app: Any = None
    web_url: str = ""
    sandbox: Any = None
    sandbox_url: str = ""
    llm_server: Any = None
    lines: list[str] = field(default_factory=list)
    stoppers: list[tuple[str, Stopper]] = field(default_factory=list)

    def say(self, line: str, printer: Printer = print) -> None:
        self.lines.append(line)
        printer(line)

    async def stop(self) -> None:
        """Stop in reverse start order within ``STOP_DEADLINE_S`` together: each part gets
        an equal share of what is left, so one slow part cannot hold the others hostage."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_DEADLINE_S
        parts = list(reversed(self.stoppers))
        if self.services is not None:
            parts.append(("services", self.services.close))
        self.stoppers.clear()
        for left, (name, stopper) in zip(range(len(parts), 0, -1), parts, strict=True):
            share = max(0.1, (deadline - loop.time()) / left)
            try:
                await wait_for(stopper(), share)
            except Exception as exc:
                log.warning("stopping %s failed: %s", name, type(exc).__name__)
        self.services = None


async def start(
    settings: Settings,
    *,
    sandbox: bool = False,
    printer: Printer = print,
    stop_requested: asyncio.Event | None = None,
) -> Running:
    """Bind the web server, then bring every part up; returns once all are ready.

    Raises what a part raised (e.g. ``DatabaseUnavailable``), after stopping what started.
    ``stop_requested``: a hold point named by ``PIYASA_START_HOLD`` waits for it.
    """
    from piyasa.admin.setup.pidfile import log_path
    from piyasa.logs import setup_logging

    setup_logging(settings.log_level, settings.secret_values(), log_path(settings.data_dir))
    running = Running()
    hold_at = os.environ.get(HOLD_ENV, "")

    async def hold(point: str) -> None:
        if point == hold_at and stop_requested is not None:
            printer(f"start-up held at {point} until a stop signal ({HOLD_ENV})")
            await stop_requested.wait()

    use_sandbox = sandbox or settings.sandbox or not settings.admin_bot_token
    if use_sandbox:  # the demo never touches the configured database or Redis
        from piyasa.sandbox.demo import demo_settings

        settings = demo_settings(settings)
    slack = bool(settings.slack_bot_token and settings.slack_signing_secret)
    running.readiness.expect(
        "database",
        *(["sandbox"] if use_sandbox else []),
        "libraries",
        "instance",
        "fleet",
        "health",
        "telegram",
        *(["slack"] if slack else []),
        "alerts",
    )
    try:
        await hold("web")
        await _start_web(running, settings, printer)
        HeavyImports.start()
        await hold("imports")
        await _start_database(running, settings, printer, hold)
        if use_sandbox:
            with running.readiness.part("sandbox"):
                world = await _start_sandbox(running, settings)
                await hold("sandbox")
                await _seed_sandbox(running, world, printer, reason_no_token=not sandbox)
        with running.readiness.part("libraries", "importing aiogram and openai"):
            await HeavyImports.wait()
        with running.readiness.part("instance"):
            await _start_instance(running)
        with running.readiness.part("fleet"):
            fleet = await _start_fleet(running, printer)
        with running.readiness.part("health"):
            await _start_health(running, fleet)
            await _start_analytics(running)
        await _start_chat(running, fleet, printer)
        after = running.readiness.finish()
        if failed := running.readiness.failed:
            why = "; ".join(f"{p.name}: {p.detail}" for p in failed)
            running.say(f"Started in {after:.1f} s but not ready ({why}).", printer)
        else:
            running.say(f"Ready in {after:.1f} s after launch.", printer)
    except BaseException:
        await running.stop()
        raise
    return running


async def _start_web(running: Running, settings: Settings, printer: Printer) -> None:
    """Liveness first: bind the boot app before anything heavy is imported."""
    from chatops.web.boot import attach, make_boot_app, start_web
    from chatops.web.docs import make_docs_app

    running.web_app = make_boot_app(running.readiness, settings.lang)
    runner, port = await start_web(running.web_app, settings.http_host, settings.http_port)
    running.stoppers.append(("web", runner.cleanup))
    attach(running.web_app, make_docs_app())  # /docs needs no database: serve it at once
    running.web_url = f"http://{settings.http_host}:{port}"
    running.say(
        f"Web: {running.web_url} (status page /, /healthz, /readyz, /api/health, /metrics, guide /docs); "
        f"/healthz answers {running.readiness.since_launch():.1f} s after launch",
        printer,
    )


async def _start_database(
    running: Running,
    settings: Settings,
    printer: Printer,
    hold: Callable[[str], Awaitable[None]],
) -> None:
    """Reach the database and bring its schema up to date.

    A stop signal during a migration lets it finish within the stop deadline; one that needs
    longer (a slow machine) is rolled back whole, since migrations apply in one transaction
    (``piyasa.db.migrate._run``), and the next start applies it again.
    """
    from piyasa.db.connect import check_reachable, prepare_schema
    from piyasa.db.engine import ping
    from piyasa.services import Services

    with running.readiness.part("database", "connecting"):
        services = Services.build(settings)
        running.services = services
        await check_reachable(services.engine, settings)

        async def migrate() -> str:
            from piyasa.db.migrate import current_revision, head_revision

            await hold("migrations")
            before = await current_revision(services.engine)
            line = await prepare_schema(services.engine, settings)
            if before != head_revision():  # told once notifications run (chatops.alerts)
                services.extras["schema.applied"] = (before, head_revision())
            return line

        running.readiness.parts["database"].detail = "applying migrations"
        task = asyncio.ensure_future(migrate())
        try:
            schema_line = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await wait_for(task, STOP_DEADLINE_S)
            raise

        async def live_check() -> dict[str, Any]:
            return {"database_ms": round(await ping(services.engine), 1)}

        running.readiness.live_check = live_check
    running.say(
        f"Piyasa {__version__}: data dir {settings.data_dir}, "
        f"database {settings.database_kind} ({mask_url(settings.database_url)}): {schema_line}",
        printer,
    )


async def _start_sandbox(running: Running, settings: Settings) -> Any:
    """The local Telegram Bot API with the demo world; returns the world."""
    import dataclasses

    from piyasa.sandbox.demo import seed_sandbox
    from piyasa.sandbox.guard import SandboxGuard, is_loopback
    from piyasa.sandbox.telegram import TelegramSandbox

    assert running.services is not None
    remote = settings.sandbox_remote
    sb = TelegramSandbox(guard=SandboxGuard(loopback_only=not remote))
    world = seed_sandbox(sb)
    # The demo's Bot API serves the demo admin's chats: loopback unless asked otherwise.
    url = await sb.start(settings.http_host if remote else "127.0.0.1", settings.sandbox_port)
    running.stoppers.append(("sandbox", sb.stop))
    running.sandbox, running.sandbox_url = sb, url
    if remote or is_loopback(settings.http_host):
        running.services.extras["sandbox"] = sb  # the web app's /sandbox chat page reads it
    running.services.settings = dataclasses.replace(
        settings,
        telegram_api_url=url,
        admin_bot_token=type(settings.admin_bot_token)(world.admin_bot_token),
        admin_chat_ids=(world.admin_chat_id,),
        sandbox=True,
    )
    return world


async def _seed_sandbox(
    running: Running, world: Any, printer: Printer, *, reason_no_token: bool
) -> None:
    from piyasa.sandbox.demo import seed_database

    assert running.services is not None
    await seed_database(running.services)
    why = " (no PIYASA_ADMIN_BOT_TOKEN configured)" if reason_no_token else ""
    running.say(f"Telegram sandbox{why}: Bot API base URL {running.sandbox_url}", printer)
    running.say(
        f"  demo fleet: {len(world.fleet_tokens)} bots in {len(world.group_ids)} groups, "
        f"on its own database {mask_url(running.services.settings.database_url)}; "
        f"admin bot token {world.admin_bot_token}",
        printer,
    )
    guard = running.sandbox.guard
    if "sandbox" in running.services.extras:  # printed once: the link carries the run's key
        line = f"  sandbox chat: {running.web_url}{guard.entry_path()} (sets the key as a cookie"
    else:
        line = (
            "  sandbox chat page not served: PIYASA_HTTP_HOST is not a loopback address (set "
            f"PIYASA_SANDBOX_REMOTE=1 to serve it there, behind its key); key {guard.key}"
        )
    running.say(f"{line}; the API takes it as X-Sandbox-Key)", printer)


async def _start_instance(running: Running) -> None:
    """Register this instance (``instances`` row + heartbeat: piyasa/cluster/); the
    singleton roles are contested once the chat surfaces exist (:func:`_start_chat`)."""
    from piyasa.cluster import Cluster
    from piyasa.db.migrate import head_revision

    assert running.services is not None
    cluster = Cluster(running.services, head_revision())
    await cluster.start()
    running.stoppers.append(("instance", cluster.leave))


async def _start_fleet(running: Running, printer: Printer) -> Any:
    """The bot fleet: bots and chats come from the database."""
    from piyasa.runtime.fleet import Fleet

    assert running.services is not None
    fleet = Fleet(running.services)
    running.services.extras["fleet"] = fleet
    await fleet.start()
    services = running.services  # the wizard's database switch may replace the fleet
    running.stoppers.append(("fleet", lambda: services.extras["fleet"].stop()))
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

    assert running.services is not None
    health = HealthService(running.services, fleet=fleet)
    cluster = running.services.extras.get("cluster")
    if cluster is not None:
        from piyasa.cluster.health import InstancesProbe

        health.add_probe(InstancesProbe(cluster))
    running.services.extras["health"] = health
    await health.start()
    running.stoppers.append(("health", health.stop))
    await _start_backups(running, health)


async def _start_backups(running: Running, health: Any) -> None:
    """The backup schedule (piyasa.backup.schedule); its last/next run and last result
    are the health "scheduler" component. A failure here never stops `piyasa up`."""
    from piyasa.backup.schedule import BackupScheduler
    from piyasa.backup.service import backup_service

    assert running.services is not None
    from piyasa.cluster.jobs import BACKUPS_ROLE, by_role, held_here

    services = running.services
    try:
        sched = BackupScheduler(backup_service(services))
    except Exception:
        log.exception("backup schedule not started")
        return

    started = {"done": False}  # the role may be held a moment before start() returns

    async def start() -> None:  # on the instance holding the "backups" role only
        try:
            await sched.start()
        except Exception:
            log.exception("backup schedule not started")
        finally:
            started["done"] = True  # from now on a stopped schedule reads "stopped"

    def snapshot() -> dict[str, Any]:
        if held_here(services, BACKUPS_ROLE) and started["done"]:
            return sched.snapshot()
        if held_here(services, BACKUPS_ROLE):  # won, still starting: no outage to alert on
            return {
                "running": True,
                "jobs": 0,
                "failed_jobs": 0,
                "missed_jobs": 0,
                "last_result": "starting",
            }
        return {
            "running": True,
            "jobs": 0,
            "failed_jobs": 0,
            "missed_jobs": 0,
            "last_result": "standby: another instance runs the backup schedule",
        }

    health.set_scheduler(snapshot)
    running.stoppers.append(("backups", await by_role(services, BACKUPS_ROLE, start, sched.stop)))


async def _start_analytics(running: Running) -> None:
    """The analytics rollup job (issue 15): rollups follow the messages within seconds;
    on the instance holding the "rollups" role only (piyasa.cluster.jobs)."""
    from piyasa.analytics.background import start_rollups
    from piyasa.cluster.jobs import ROLLUPS_ROLE, by_role

    services = running.services
    assert services is not None
    stoppers: list[Any] = []

    async def start() -> None:
        stoppers.append(await start_rollups(services))

    async def stop() -> None:
        while stoppers:
            await stoppers.pop()()

    running.stoppers.append(("analytics", await by_role(services, ROLLUPS_ROLE, start, stop)))


async def _start_chat(running: Running, fleet: Any, printer: Printer) -> None:
    """The full web app (status page, Slack, webhooks, sandbox page), then the chat surfaces
    and the alerts that post through them."""
    from chatops.roles import elect_admin
    from chatops.startup import Surfaces
    from chatops.web.boot import attach
    from chatops.web.server import make_web_app

    services = running.services
    assert services is not None
    readiness = running.readiness
    web_app = make_web_app(services)
    _mount_fleet_webhook(web_app, services)
    surfaces = Surfaces(services, web_app, on_state=readiness.mark)
    surfaces.poll_admin_bot = False  # until this instance holds the admin role
    attach(running.web_app, web_app)
    running.stoppers.append(("chat surfaces", surfaces.stop))
    for line in await surfaces.start():
        running.say(line, printer)
    with readiness.part("alerts"):
        running.stoppers.append(("roles", services.extras["cluster"].elector.stop))
        running.say(await elect_admin(services, surfaces), printer)


def _mount_fleet_webhook(web_app: web.Application, services: Services) -> None:
    """Fleet bots in webhook mode post to /telegram/webhook/{bot_id}; 503 until active.
    The fleet is looked up per request: the wizard's database switch starts a new one."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        handler = services.extras["fleet"].webhook_handler
        if handler is None:
            return web.json_response({"error": "fleet webhook mode is off"}, status=503)
        return await handler(request)

    web_app.router.add_post("/telegram/webhook/{bot_id}", handle)


def dump_tasks() -> None:
    """SIGUSR1: print every asyncio task's stack, to see what a stuck process waits on."""
    import io

    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task.get_name()} {task.get_coro()!r}\n")
        task.print_stack(limit=12, file=out)
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


def _install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop``, now and after the loop closed (then they do nothing:
    the process is already on its way out). Python-level handlers, so a second signal
    during shutdown is harmless and a signal never kills the process half-way."""
    loop = asyncio.get_running_loop()

    def on_signal(_signum: int, _frame: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: already exiting
            loop.call_soon_threadsafe(stop.set)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with contextlib.suppress(NotImplementedError, ValueError):
        signal.signal(signal.SIGUSR1, lambda *_: loop.call_soon_threadsafe(dump_tasks))


async def serve_forever(settings: Settings, *, sandbox: bool = False) -> int:
    """Run until SIGINT/SIGTERM, then stop cleanly; exit status 0 either way."""
    stop = asyncio.Event()
    _install_stop_signals(stop)
    starting = asyncio.create_task(start(settings, sandbox=sandbox, stop_requested=stop))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # a stop signal during start-up: abandon it, clean up
        print("Stopping during start-up…", flush=True)
        await cancel_and_wait(starting)
        _stopped()
        return 0
    stopping_now = starting.result()
    print("Running. Press Ctrl+C to stop.", flush=True)
    try:
        await stopping
    finally:
        print("Stopping…", flush=True)
        await stopping_now.stop()
        _stopped()
    return 0


def _stopped() -> None:
    """Say so; if the import thread is still importing, end the process now: waiting for
    it would break the stop deadline, and nothing of ours is left to clean up."""
    print("Stopped.", flush=True)
    if HeavyImports.busy():
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
