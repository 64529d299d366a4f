"""The web server `piyasa up` binds first, before any heavy import.

It answers `/healthz` at once, `/readyz` from the start-up :class:`~piyasa.readiness.Readiness`
(503 with the parts still starting or failed, then 200), and `/` with a "starting…" page.
Every other path goes to the apps attached as start-up brings them up (the full status
page, Slack, webhooks, the sandbox): aiohttp freezes a router once it serves, so the parts
that arrive later live in their own apps and are dispatched to here.

Imports: aiohttp and the standard library only.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from chatops.web.status_i18n import negotiate
from piyasa.readiness import Readiness
from piyasa.tasks import wait_for

READINESS_KEY = web.AppKey("readiness", Readiness)
LATE_APPS_KEY = web.AppKey("late_apps", list)
LANG_KEY = web.AppKey("default_lang", str)
READY_CHECK_TIMEOUT_S = 2.0
# The largest request body any route accepts (Slack events, webhooks, sandbox forms):
# Slack and Telegram send a few KiB. A larger body is refused with 413 before it is read.
MAX_BODY_BYTES = 1024 * 1024

_STARTING = {
    "tr": ("Piyasa başlatılıyor…", "Hazır olmayan parçalar", "Sayfa kendini yeniler."),
    "en": ("Piyasa is starting…", "Parts not ready yet", "This page refreshes itself."),
}
_STATE_WORD = {
    "tr": {"pending": "sırada", "starting": "başlıyor", "ready": "hazır", "failed": "hata",
           "stopped": "durduruldu"},
    "en": {"pending": "pending", "starting": "starting", "ready": "ready", "failed": "failed",
           "stopped": "stopped"},
}  # fmt: skip


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. Never touches a dependency."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 ``{"status": "starting", "starting": [...], "failed": [...], "parts": [...]}``
    until every part is up; then 200, or 503 when the live check (database ping within
    ``READY_CHECK_TIMEOUT_S``) fails."""
    readiness = request.app[READINESS_KEY]
    body = readiness.to_json()
    if not readiness.ready:
        return web.json_response(body, status=503, headers={"Cache-Control": "no-store"})
    if readiness.live_check is not None:
        try:
            body.update(await wait_for(readiness.live_check(), READY_CHECK_TIMEOUT_S))
        except Exception as exc:  # any failure means "not ready"; the class is enough detail
            body.update(status="unavailable", database="unreachable", error=type(exc).__name__)
            return web.json_response(body, status=503, headers={"Cache-Control": "no-store"})
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def starting_page(readiness: Readiness, lang: str) -> str:
    """The status page while start-up runs: which parts are still coming up."""
    title, heading, refresh = _STARTING[lang]
    words = _STATE_WORD[lang]
    rows = "".join(
        f"<li><b>{html.escape(p.name)}</b>: {words.get(p.state, p.state)}"
        + (f" — {html.escape(p.detail)}" if p.detail else "")
        + "</li>"
        for p in readiness.parts.values()
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="2">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{heading}:</p><ul>{rows}</ul><p><small>{refresh}</small></p></main></body></html>"
    )


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Hand the request to the first attached app whose router matches it (413 first for a
    body over the limit)."""
    refuse_large_body(request)
    method_not_allowed: web.HTTPException | None = None
    for inner in request.app[LATE_APPS_KEY]:
        match = await inner.router.resolve(request)
        error = match.http_exception
        if error is None:
            # Application._handle resolves again, binds request.app to ``inner`` and runs its
            # middlewares: the same path aiohttp takes for a sub-application.
            return await inner._handle(request)
        if isinstance(error, web.HTTPMethodNotAllowed):
            method_not_allowed = error
    readiness = request.app[READINESS_KEY]
    if not readiness.ready:
        if request.method in ("GET", "HEAD") and request.path == "/":
            lang = negotiate(
                request.query.get("lang"),
                request.headers.get("Accept-Language"),
                request.app[LANG_KEY],
            )
            return web.Response(
                text=starting_page(readiness, lang),
                content_type="text/html",
                charset="utf-8",
                headers={"Cache-Control": "no-store", "Content-Language": lang},
            )
        return web.json_response(readiness.to_json(), status=503, headers={"Retry-After": "2"})
    if method_not_allowed is not None:
        raise method_not_allowed
    raise web.HTTPNotFound()


def refuse_large_body(request: web.Request) -> None:
    """Raise 413 for a body declared (Content-Length) over :data:`MAX_BODY_BYTES`, before
    any of it is read. A chunked body declares no length: the app's ``client_max_size``
    (the same limit) makes ``read()`` raise 413 once it grows past it, holding at most the
    limit. Raises ``web.HTTPRequestEntityTooLarge``."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        refused = web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=declared)
        refused.force_close()  # aiohttp drains the unread rest without keeping it, then closes
        raise refused


@web.middleware
async def refuse_large_bodies(request: web.Request, handler: Any) -> web.StreamResponse:
    """:func:`refuse_large_body` for every route of an app."""
    refuse_large_body(request)
    return await handler(request)


def make_boot_app(readiness: Readiness, default_lang: str = "tr") -> web.Application:
    """The outer app: liveness, readiness, the starting page, and dispatch to later apps.

    No middlewares here: aiohttp's middleware chain caches ``request.match_info``, which
    would keep the outer match in the apps dispatched to. :func:`dispatch` checks the body
    size itself (the other routes take no body).
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[READINESS_KEY] = readiness
    app[LATE_APPS_KEY] = []
    app[LANG_KEY] = default_lang
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def attach(boot_app: web.Application, inner: web.Application) -> None:
    """Serve ``inner``'s routes from now on (after `/healthz` and `/readyz`)."""
    inner.freeze()
    boot_app[LATE_APPS_KEY].append(inner)


def attached(boot_app: web.Application) -> list[Any]:
    return list(boot_app[LATE_APPS_KEY])


async def start_web(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app``; returns the runner and the bound port (port 0 picks a free one).
    On cleanup, open requests get 1 s to finish (long polls are cut)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound
