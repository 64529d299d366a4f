"""The aiohttp web server: liveness/readiness now; status page, Slack and webhooks plug in."""

from __future__ import annotations

import logging

from aiohttp import web

from chatops.web.analytics_api import setup_analytics_api
from chatops.web.backup_download import setup_backup_download
from chatops.web.boot import MAX_BODY_BYTES, refuse_large_bodies, start_web
from chatops.web.docs import setup_docs_routes
from chatops.web.sandbox_page import setup_sandbox_page
from chatops.web.status import setup_status_routes
from piyasa.db.engine import ping
from piyasa.services import Services
from piyasa.tasks import wait_for

log = logging.getLogger(__name__)
__all__ = ["make_web_app", "start_web"]
SERVICES_KEY = web.AppKey("services", Services)
READY_TIMEOUT_S = 2.0


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. Never touches dependencies."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 when the database cannot be reached within a short deadline."""
    services = request.app[SERVICES_KEY]
    try:
        latency = await wait_for(ping(services.engine), READY_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready"; the class is enough detail
        return web.json_response(
            {"status": "unavailable", "database": "unreachable", "error": type(exc).__name__},
            status=503,
        )
    return web.json_response({"status": "ready", "database_ms": round(latency, 1)})


def make_web_app(services: Services) -> web.Application:
    """The full app (served by the boot app in `piyasa up`, or on its own by tools and
    tests), with the same body limit: 413 over :data:`MAX_BODY_BYTES`."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[refuse_large_bodies])
    app[SERVICES_KEY] = services
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    setup_status_routes(app, services.extras.get("health"))
    setup_analytics_api(app, services)  # /api/analytics, behind the same API-key check
    setup_docs_routes(app)  # /docs: the user guide as HTML, reads no service
    setup_sandbox_page(app, services)  # /sandbox, only when the Telegram sandbox runs
    setup_backup_download(app, services)  # /backups/download/<token>: one-time links
    return app
