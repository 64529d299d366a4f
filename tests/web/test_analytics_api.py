"""``GET /api/analytics`` on a real aiohttp server over a seeded database (both backends):
with a valid key the figures are the query API's, without one (or with a wrong one) 401 and
no figures, bad input 400 with a JSON error."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.admin.users import CLI, add_user, new_api_key, regenerate_api_key
from piyasa.analytics import csvout
from piyasa.analytics.queries import Analytics, Period
from piyasa.analytics.report import all_bots, plain
from piyasa.services import Services
from tests.analytics.dataset import NOW, exact, seed

LABEL = "2026-11-01..2026-11-30"


async def _world(services: Services) -> tuple[Analytics, str]:
    await seed(services.sessions, n=300)
    q = Analytics(services.sessions)
    await q.refresh()
    await add_user(services, "reader", "viewer")
    return q, (await regenerate_api_key(services, CLI, "reader"))[1]


async def test_figures_for_key_holders_only(services: Services) -> None:
    q, key = await _world(services)
    period = Period.parse(LABEL, NOW)
    async with TestClient(TestServer(make_web_app(services))) as client:
        for headers in ({}, {"X-API-Key": new_api_key()}, {"Authorization": "Bearer nope"}):
            resp = await client.get("/api/analytics", params={"period": LABEL}, headers=headers)
            assert resp.status == 401, headers
            text = await resp.text()
            assert "figures" not in text and "cost_usd" not in text
        resp = await client.get("/api/analytics", params={"period": LABEL, "format": "csv"})
        assert resp.status == 401

        bearer = {"Authorization": f"Bearer {key}"}

        async def get(**params: str) -> dict:  # type: ignore[type-arg]
            resp = await client.get("/api/analytics", params=params, headers=bearer)
            assert resp.status == 200, await resp.text()
            assert resp.headers["Cache-Control"] == "no-store"
            return await resp.json()

        ov = await get(period=LABEL)
        assert ov == plain(await q.overview(period))
        ex = await exact(services.sessions, period.start, period.end)
        f = ov["figures"]
        assert (f["messages"], f["sent"], f["failed"]) == (ex.messages, ex.sent, ex.failed)
        assert Decimal(f["cost_usd"]) == ex.cost

        bots = await get(period=LABEL, view="bots", sort="cost", limit="2")
        rows, total = await q.bots(period, sort="cost", page=0, page_size=2)
        assert bots["bots"] == plain(rows) and bots["total"] == total == 4

        detail = plain(await q.bot_detail(2, period))
        for ref in ("2", "@bot2", "Bot 2"):
            assert (await get(period=LABEL, view="bot", bot=ref))["bot"] == detail

        resp = await client.get(
            "/api/analytics",
            params={"period": LABEL, "view": "bots", "format": "csv"},
            headers={"X-API-Key": key},
        )
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        assert resp.content_type == "text/csv"
        body = await resp.read()
        assert body == csvout.bots_csv(await all_bots(q, period))
        assert len(list(csv.reader(io.StringIO(body.decode())))) == 1 + 4


async def test_bad_input_is_a_400_with_a_reason(services: Services) -> None:
    _q, key = await _world(services)
    bearer = {"Authorization": f"Bearer {key}"}
    cases = {
        (("period", "fortnight"),): "unknown period",
        (("period", "2026-11-30..2026-11-01"),): "starts after it ends",
        (("period", "2020-01-01..2020-01-02"),): "keep 400 days",
        (("view", "bot"), ("bot", "nobody")): "no bot",
        (("view", "bot"), ("bot", "999")): "no bot",
        (("view", "bot"),): "needs a bot",
        (("view", "everything"),): "view must be one of",
        (("view", "bots"), ("sort", "mood")): "sort must be one of",
        (("view", "bots"), ("limit", "zero")): "limit takes a number",
        (("view", "bots"), ("limit", "0")): "at least 1",
        (("format", "xml"),): "format must be",
    }
    async with TestClient(TestServer(make_web_app(services))) as client:
        for params, reason in cases.items():
            resp = await client.get("/api/analytics", params=dict(params), headers=bearer)
            assert resp.status == 400, (params, await resp.text())
            assert resp.headers["Cache-Control"] == "no-store"
            assert reason in (await resp.json())["error"], params
