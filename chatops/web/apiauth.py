"""The API-key check of the web API (`/api/health` full view, `/api/analytics`): one place.

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; the database says
whose it is (``piyasa.admin.health.apikeys.check_api_key``, at most ``KEY_CHECK_TIMEOUT_S``),
and during a database outage a key it confirmed lately still opens (``KnownKeys``, shared
by every route of the app).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from piyasa.admin.health.apikeys import KeyOwner, KnownKeys, check_api_key
from piyasa.db.availability import db_down

KNOWN_KEYS = web.AppKey("api_known_keys", KnownKeys)


def install(app: web.Application) -> KnownKeys:
    """The app's last-known-good keys, created on first use (call while setting up routes)."""
    known = app.get(KNOWN_KEYS)
    if known is None:
        known = app[KNOWN_KEYS] = KnownKeys()
    return known


def presented_key(request: web.Request) -> str | None:
    """The key a request presents, or None when it presents none."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = request.headers.get("X-API-Key")
    return key.strip() if key is not None else None


def unauthorized(message: str = "invalid or revoked API key") -> web.Response:
    return web.json_response(
        {"error": message},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="piyasa"', "Cache-Control": "no-store"},
    )


async def key_owner(
    request: web.Request, services: Any, key: str, *, outage_hint: str
) -> KeyOwner | web.Response:
    """Whose ``key`` is, or the answer to send instead: 401 for an unknown, revoked or
    locked-out key; 503 (with ``outage_hint``) when the database is down and the key is
    not among those it confirmed lately. Raises what the database raised otherwise."""
    owner = await check_api_key(services, request.app[KNOWN_KEYS], key)
    if owner is None and db_down(services):  # unknown here, and no database to ask
        return web.json_response(
            {
                "error": f"the database is unavailable, so this API key cannot be checked; "
                f"{outage_hint}"
            },
            status=503,
            headers={"Cache-Control": "no-store", "Retry-After": "5"},
        )
    if owner is None:
        return unauthorized()
    return owner
