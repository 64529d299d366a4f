"""The boot web app: liveness at once, readiness from the parts, later apps dispatched to."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chatops.web.boot import attach, make_boot_app
from piyasa.readiness import Readiness

NAME = web.AppKey("name", str)


async def _hello(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"], "app": request.app[NAME]})


def _later_app() -> web.Application:
    app = web.Application()
    app[NAME] = "later"
    app.router.add_get("/things/{id}", _hello)
    return app


async def test_before_ready_liveness_answers_and_the_rest_says_starting() -> None:
    readiness = Readiness()
    readiness.expect("database", "fleet")
    boot = make_boot_app(readiness, "en")
    async with TestClient(TestServer(boot)) as client:
        assert (await client.get("/healthz")).status == 200
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "starting" and body["starting"] == ["database", "fleet"]
        with readiness.part("database"):
            pass
        body = await (await client.get("/readyz")).json()
        assert body["starting"] == ["fleet"]
        page = await client.get("/", headers={"Accept-Language": "tr"})
        assert page.status == 200 and "Piyasa başlatılıyor" in await page.text()
        other = await client.post("/slack/events", data=b"{}")
        assert other.status == 503 and (await other.json())["status"] == "starting"


async def test_a_failed_part_is_named_with_its_reason() -> None:
    readiness = Readiness()
    readiness.expect("database")
    try:
        with readiness.part("database"):
            raise RuntimeError("cannot reach the database at postgresql://x (refused)\nmore")
    except RuntimeError:
        pass
    async with TestClient(TestServer(make_boot_app(readiness))) as client:
        body = await (await client.get("/readyz")).json()
    assert body["status"] == "failed"
    assert body["failed"] == [
        {"name": "database", "reason": "cannot reach the database at postgresql://x (refused)"}
    ]


async def test_attached_apps_serve_their_routes_after_start() -> None:
    readiness = Readiness()
    readiness.expect("web")
    boot = make_boot_app(readiness)
    async with TestClient(TestServer(boot)) as client:
        attach(boot, _later_app())  # after the server already serves
        resp = await client.get("/things/42")
        assert await resp.json() == {"id": "42", "app": "later"}
        with readiness.part("web"):
            pass
        readiness.finish()
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/nowhere")).status == 404
        assert (await client.post("/things/42")).status == 405


async def test_ready_but_the_live_check_fails_is_503() -> None:
    readiness = Readiness()
    readiness.finish()

    async def database_gone() -> dict[str, Any]:
        raise ConnectionRefusedError

    readiness.live_check = database_gone
    async with TestClient(TestServer(make_boot_app(readiness))) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["error"] == "ConnectionRefusedError"
