"""Headless Chromium on `/sandbox`: type /health, press a button, see the answer.

`piyasa up --sandbox` runs in this process (sandbox Telegram, fleet, health, web, admin
bot); Chromium is driven over the Chrome DevTools Protocol with aiohttp's websocket
client (no browser download, no extra package). Screenshots are kept in
test-artifacts/sandbox-page-*.png.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatops.web.server import make_web_app
from piyasa.config import Settings, load_settings
from tests.e2e.chromium import ARTIFACTS, FLAGS, profile_dir, require_chromium
from tests.waiting import finishes, until

pytestmark = pytest.mark.e2e


class Page:
    """Just enough CDP: navigate, evaluate, type, wait for a condition, screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            fut = self.pending.pop(data.get("id", -1), None)
            if fut is not None:
                if "error" in data:
                    fut.set_exception(RuntimeError(str(data["error"])))
                else:
                    fut.set_result(data.get("result", {}))
            elif "method" in data:
                self.events.put_nowait(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self.ids)
        fut = self.pending[mid] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(json.dumps({"id": mid, "method": method, "params": params}))
        return await finishes(fut, f"Chromium's answer to {method}")

    async def until_event(self, method: str) -> dict[str, Any]:
        while True:
            event = await finishes(self.events.get(), f"the {method} event")
            if event["method"] == method:
                return event

    async def load(self, action: Any) -> None:
        """Run ``action`` (a navigation or a click that submits) and wait for the load."""
        while not self.events.empty():
            self.events.get_nowait()
        await action
        await self.until_event("Page.loadEventFired")

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """Poll a DOM condition (the page updates itself through its long poll)."""
        last_text = ""

        async def seen() -> Any:
            nonlocal last_text
            value = await self.js(expression)
            if not value:
                last_text = await self.js("document.body.innerText")
            return value

        return await until(seen, what, interval=0.1, output=lambda: f"page:\n{last_text[-1500:]}")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@pytest.fixture
async def chromium() -> AsyncIterator[Page]:
    require_chromium()
    with profile_dir() as profile:
        proc = await asyncio.create_subprocess_exec(
            "chromium",
            *FLAGS,
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        port_file = Path(profile) / "DevToolsActivePort"
        try:
            await until(  # Chromium writes the port once it listens
                lambda: port_file.exists() and port_file.read_text().count("\n") >= 1,
                "Chromium's DevToolsActivePort file",
                interval=0.05,
            )
            port = int(port_file.read_text().split()[0])
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.send("Page.enable")
                    try:
                        yield page
                    finally:
                        page.reader.cancel()
        finally:
            proc.kill()
            await proc.wait()


@pytest.fixture
async def piyasa_up(tmp_path: Path) -> AsyncIterator[str]:
    from piyasa import app

    settings = load_settings(
        {
            "PIYASA_DATA_DIR": str(tmp_path / "data"),
            "PIYASA_HTTP_PORT": "0",
            "PIYASA_SANDBOX_PORT": "0",
            "PIYASA_LANG": "en",
        }
    )
    running = await app.start(settings, sandbox=True, printer=lambda _line: None)
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:  # every part started: the admin bot, the sandbox
                try:
                    async with http.get(running.web_url + "/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await until(ready, "/readyz to answer 200", interval=0.1)
        yield running.web_url + running.sandbox.guard.entry_path()
    finally:
        await running.stop()


LAST_BOT = "[...document.querySelectorAll('#messages li.bot')].pop()"


async def test_chromium_types_health_and_presses_a_button(chromium: Page, piyasa_up: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=390,
        height=844,
        deviceScaleFactor=1,
        mobile=True,
    )
    web_url = piyasa_up.split("/sandbox?key=")[0]
    async with aiohttp.ClientSession() as http, http.get(f"{web_url}/sandbox") as anonymous:
        assert anonymous.status == 401  # no key: a stranger cannot drive the demo admin
    await page.load(page.send("Page.navigate", url=piyasa_up))  # the printed link: sets the key
    await page.load(page.send("Page.navigate", url=f"{web_url}/sandbox?lang=en"))
    assert await page.js("document.querySelector('h1').innerText") == "Piyasa sandbox chat"
    tabs = await page.js("[...document.querySelectorAll('.tab')].map(t => t.innerText)")
    assert tabs[:2] == ["Piyasa Yönetim", "Private chat with @piyasa_admin_bot"]
    assert {"BIST Sohbet", "Döviz & Kripto"} <= set(tabs)

    # Type /health like a person would and send it.
    await page.js("document.getElementById('text').focus()")
    await page.send("Input.insertText", text="/health")
    await page.load(page.js("document.getElementById('send').click()"))
    await page.wait_for(
        "[...document.querySelectorAll('#messages li.mine')].some(m => m.innerText.includes('/health'))",
        "the typed /health",
    )
    # The sandbox admin's Telegram language is Turkish: the bot answers in Turkish.
    reply = await page.wait_for(
        f"(() => {{ const m = {LAST_BOT}; return m && m.innerText.includes('Sağlık') && m.innerText }})()",
        "the /health answer",
    )
    assert "Veritabanı" in reply and "Bot filosu" in reply
    await page.screenshot(ARTIFACTS / "sandbox-page-health-phone.png")

    # Press [🔎 Veritabanı] (database details): the same message is edited in place.
    await page.load(
        page.js(
            f"[...{LAST_BOT}.querySelectorAll('button.kb')]"
            ".find(b => b.innerText.includes('Veritabanı')).click()"
        )
    )
    details = await page.wait_for(
        f"(() => {{ const m = {LAST_BOT}; return m && m.innerText.includes('Durum') && m.innerText }})()",
        "the database details",
    )
    assert "sqlite" in details and "« Sağlık" in details
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    await page.screenshot(ARTIFACTS / "sandbox-page-details-desktop.png")
    for name in ("sandbox-page-health-phone.png", "sandbox-page-details-desktop.png"):
        data = (ARTIFACTS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000

    # Issue 12: the page's language switch changes the bot's answers too. Press EN (the page
    # was English already, the bot Turkish), ask again: the bot answers in English; TR back.
    for code, health, database in (("en", "Health", "Database"), ("tr", "Sağlık", "Veritabanı")):
        before = await page.js("document.querySelectorAll('#messages li.bot').length")
        await page.load(
            page.js(f"document.querySelector('nav.langs button[value={code}]').click()")
        )
        assert await page.js("document.documentElement.lang") == code
        await page.js("document.getElementById('text').focus()")
        await page.send("Input.insertText", text="/health")
        await page.load(page.js("document.getElementById('send').click()"))
        answer = await page.wait_for(
            f"(() => {{ const all = document.querySelectorAll('#messages li.bot');"
            f" const m = all[all.length - 1]; return all.length > {before}"
            f" && m.innerText.includes('{health}') && m.innerText }})()",
            f"the /health answer after switching to {code}",
        )
        assert database in answer
        if code == "en":
            assert "Sağlık" not in answer and "Veritabanı" not in answer
    # A language that does not exist is refused with a clear word and changes nothing.
    refused = await page.js(
        "fetch('/sandbox/lang?lang=tr', {method: 'POST', body: new URLSearchParams({lang: 'xx'})})"
        ".then(async r => r.status + ' ' + await r.text())"
    )
    assert refused.startswith("400 Bilinmeyen dil: tr, en") and "değiştirilmedi" in refused
    assert await page.js("document.documentElement.lang") == "tr"


async def test_sandbox_page_is_404_outside_sandbox_mode(settings: Settings) -> None:
    from piyasa.services import Services

    services = Services.build(settings)
    try:
        async with TestClient(TestServer(make_web_app(services))) as client:
            assert (await client.get("/sandbox")).status == 404
            assert (await client.get("/sandbox/api/state")).status == 404
    finally:
        await services.close()
