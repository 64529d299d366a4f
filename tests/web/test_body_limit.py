"""Issue 11, item 7: the web server `piyasa up` runs (the boot app, dispatching to the apps
attached later) refuses a body over 1 MiB with 413 — a declared one before reading it, a
chunked one once it grows past the limit — and the attached apps still see their own
routes, middlewares included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from chatops.web.boot import MAX_BODY_BYTES, attach, make_boot_app, refuse_large_bodies, start_web
from piyasa.readiness import Readiness
from tests.web.rawhttp import status_before_body

BIG = 1_900_000


async def _echo_size(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"bytes": len(body), "id": request.match_info["id"]})


def _later_app() -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[refuse_large_bodies])
    app.router.add_post("/things/{id}", _echo_size)
    return app


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 65536 + 1):
        yield b"x" * 65536


async def test_the_served_app_refuses_big_bodies_declared_or_chunked() -> None:
    readiness = Readiness()
    boot = make_boot_app(readiness)
    runner, port = await start_web(boot, "127.0.0.1", 0)
    try:
        attach(boot, _later_app())
        url = f"http://127.0.0.1:{port}/things/7"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=b"y" * 1000) as resp:
                assert resp.status == 200 and await resp.json() == {"bytes": 1000, "id": "7"}
            async with http.post(url, data=b"y" * BIG) as resp:
                assert resp.status == 413
            async with http.post(url, data=_chunks(2 * MAX_BODY_BYTES)) as resp:
                assert resp.status == 413
            async with http.post(url, data=_chunks(MAX_BODY_BYTES // 2)) as resp:
                assert resp.status == 200 and (await resp.json())["id"] == "7"
        # declared too big: answered while almost all of the body was never sent
        assert await status_before_body(url, BIG, b"y" * 1024) == 413
        assert await status_before_body(url, MAX_BODY_BYTES + 1, b"y") == 413
    finally:
        await runner.cleanup()
