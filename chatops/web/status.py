"""Status routes: `/` page, `/api/health` JSON, `/metrics` for Prometheus.

All three read the HealthService's cached snapshot; none of them runs a probe.
Wire with ``setup_status_routes(app, health)`` inside ``make_web_app``.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chatops.web.apiauth import install as install_api_keys
from chatops.web.apiauth import key_owner, presented_key
from chatops.web.status_i18n import negotiate
from chatops.web.status_page import render_status_page
from piyasa.admin.health.metrics import HealthCollector
from piyasa.admin.health.service import HealthService

log = logging.getLogger(__name__)

HEALTH_KEY = web.AppKey("health", HealthService)
_STATE_KEY = web.AppKey("status_state", dict)

METRICS_TOKEN_SETTING = "PIYASA_METRICS_TOKEN"
_PUBLIC_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def setup_status_routes(app: web.Application, health: HealthService | None) -> None:
    """Add `/`, `/api/health` and `/metrics`, reading ``health``'s snapshot.

    ``make_web_app`` passes ``services.extras.get("health")``; without a HealthService
    (tools that only need /healthz) the routes are simply not added.
    """
    if health is None:
        return
    app[HEALTH_KEY] = health
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(health))
    app[_STATE_KEY] = {
        "public": (-1, b""),
        "registry": registry,
        "extra": [],
    }
    install_api_keys(app)
    app.router.add_get("/", status_page)
    app.router.add_get("/api/health", api_health)
    app.router.add_get("/metrics", metrics)


async def api_health(request: web.Request) -> web.Response:
    """Public: overall and per-component states only. With a valid API key: everything."""
    health = request.app[HEALTH_KEY]
    snap = health.snapshot()
    key = presented_key(request)
    if key is None:
        state = request.app[_STATE_KEY]
        seq, body = state["public"]
        if seq != snap.sequence or not body:
            body = json.dumps(snap.public(), separators=(",", ":")).encode()
            state["public"] = (snap.sequence, body)
        return web.Response(body=body, headers=_PUBLIC_HEADERS)
    owner = await key_owner(
        request,
        health.services,
        key,
        outage_hint="/api/health without a key shows every component's state",
    )
    if isinstance(owner, web.Response):
        return owner
    payload = snap.full()
    payload["pending_records"] = health.pending_records
    notify = health.services.extras.get("notify")
    payload["undelivered_notifications"] = int(getattr(notify, "pending", 0) or 0)
    return web.json_response(payload, headers={"Cache-Control": "no-store"})


async def status_page(request: web.Request) -> web.Response:
    health = request.app[HEALTH_KEY]
    settings = health.services.settings
    lang = negotiate(
        request.query.get("lang"), request.headers.get("Accept-Language"), settings.lang
    )
    try:
        overview = await health.history.overview()
    except Exception as exc:  # the page must render even when history cannot be read
        log.warning("status page: history unavailable (%s)", type(exc).__name__)
        from piyasa.admin.health.history import Overview

        overview = Overview()
    notify = health.services.extras.get("notify")  # piyasa.admin.notify.service
    html_text = render_status_page(
        health.snapshot(),
        overview,
        lang,
        health.history.days,
        undelivered=int(getattr(notify, "pending", 0) or 0),
    )
    return web.Response(
        text=html_text,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Content-Language": lang, "Vary": "Accept-Language"},
    )


def add_metrics_registry(app: web.Application, registry: CollectorRegistry) -> None:
    """Expose another registry on /metrics (names must not clash with the others)."""
    app[_STATE_KEY]["extra"].append(registry)


def _registries(app: web.Application) -> list[CollectorRegistry]:
    """Process-wide default, health, the fleet's own registry (when the fleet is wired
    in as an object with ``.metrics.registry``), then any added ones."""
    state = app[_STATE_KEY]
    found = [REGISTRY, state["registry"]]
    fleet_registry = getattr(
        getattr(app[HEALTH_KEY].fleet_object, "metrics", None), "registry", None
    )
    if isinstance(fleet_registry, CollectorRegistry):
        found.append(fleet_registry)
    found.extend(r for r in state["extra"] if r not in found)
    return found


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; behind ``Authorization: Bearer <PIYASA_METRICS_TOKEN>`` when set."""
    health = request.app[HEALTH_KEY]
    token = health.services.settings.extra.get(METRICS_TOKEN_SETTING, "")
    if token:
        given = presented_key(request) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(
                status=401,
                text="metrics need Authorization: Bearer <PIYASA_METRICS_TOKEN>\n",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body = b"".join(generate_latest(r) for r in _registries(request.app))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
