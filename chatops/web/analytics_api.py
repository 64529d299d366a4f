"""``GET /api/analytics``: the bot analytics figures for API-key holders, read from the
rollups only (never raw message rows), in the shapes of :mod:`piyasa.analytics.report` —
the same figures ``piyasa analytics … --json`` prints.

Query parameters:

- ``period``: ``24h`` (default), ``7d``, ``30d`` or ``YYYY-MM-DD..YYYY-MM-DD`` (UTC, both
  days included; the chat's parser and limits: not in the future, within the retention).
- ``view``: ``overview`` (default), ``bots`` or ``bot``; with ``format=csv`` also ``chats``
  and ``models``.
- ``bot``: id, Telegram id, @username or display name (``view=bot``).
- ``sort`` (``messages`` | ``success`` | ``p95`` | ``cost``) and ``limit`` (≥ 1) for ``bots``.
- ``format``: ``json`` (default) or ``csv`` (the chat's CSV, formula-injection safe).

JSON (see ``piyasa.analytics.report`` for every field): latencies in milliseconds (floats
or null), ``cost_usd`` as exact decimal strings in USD (``"2.470000"``), rates 0..1, times
UTC ISO 8601. Every answer carries ``Cache-Control: no-store``.

Errors are JSON ``{"error": text}`` (plus ``"code"``, the catalog key, for analytics
errors): 401 without a key or with an unknown, revoked or locked-out one; 400 for a bad
period, an unknown bot, view, sort, limit or format; 503 when the database is down and the
key was not confirmed lately.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from chatops.web.apiauth import install, key_owner, presented_key, unauthorized
from piyasa.analytics.queries import AnalyticsError, Period
from piyasa.analytics.report import figures, table_csv
from piyasa.services import Services

ANALYTICS_SERVICES = web.AppKey("analytics_services", Services)
NO_STORE = {"Cache-Control": "no-store"}


def setup_analytics_api(app: web.Application, services: Services) -> None:
    """Add ``GET /api/analytics`` (behind the app's API-key check)."""
    install(app)
    app[ANALYTICS_SERVICES] = services
    app.router.add_get("/api/analytics", api_analytics)


def _bad(message: str, code: str | None = None) -> web.Response:
    body = {"error": message} if code is None else {"error": message, "code": code}
    return web.json_response(body, status=400, headers=NO_STORE)


def _limit(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"limit takes a number of bots, not {text!r}") from None


async def api_analytics(request: web.Request) -> web.Response:
    services = request.app[ANALYTICS_SERVICES]
    key = presented_key(request)
    if not key:
        return unauthorized("an API key is required: Authorization: Bearer <key> or X-API-Key")
    owner = await key_owner(request, services, key, outage_hint="try again shortly")
    if isinstance(owner, web.Response):
        return owner
    q = request.query
    view, fmt = q.get("view") or "overview", q.get("format") or "json"
    try:
        period = Period.parse(q.get("period"), datetime.now(UTC))
        if fmt == "csv":
            data = await table_csv(
                services.sessions, view, period, bot=q.get("bot"), sort=q.get("sort")
            )
            name = f"piyasa-analytics-{view}-{period.label.replace('..', '_')}.csv"
            return web.Response(
                body=data,
                content_type="text/csv",
                charset="utf-8",
                headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
            )
        if fmt != "json":
            return _bad(f"format must be json or csv, not {fmt!r}")
        body = await figures(
            services.sessions,
            view,
            period,
            bot=q.get("bot"),
            sort=q.get("sort"),
            limit=_limit(q.get("limit")),
        )
    except AnalyticsError as exc:
        return _bad(str(exc), exc.key)
    except ValueError as exc:
        return _bad(str(exc))
    return web.json_response(body, headers=NO_STORE)
