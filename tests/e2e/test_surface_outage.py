"""`piyasa up` outlives Telegram: an unreachable Bot API or a revoked admin token at start
leaves the status page serving, says why on /readyz, and is retried until it works.

A fresh process each: what is tested is how a process starts against a broken Bot API.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from piyasa.sandbox.telegram import TelegramSandbox
from tests.e2e.procs import PiyasaProcess, base_env, free_port
from tests.waiting import HANG_S

pytestmark = pytest.mark.e2e
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=HANG_S) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=HANG_S) as resp:
        return resp.status


async def _until_telegram_failed(proc: PiyasaProcess) -> dict:
    """Wait (off the loop: the test's sandbox serves on it) for /readyz to name telegram."""

    def poll() -> dict:
        for _ in range(int(HANG_S / 0.2)):
            if proc.proc.poll() is not None:
                raise AssertionError(f"piyasa exited {proc.proc.returncode}:\n{proc.output()}")
            try:
                code, body = _get_json(proc.http_url + "/readyz")
            except OSError:
                code, body = 0, {}
            if code == 503 and any(f["name"] == "telegram" for f in body.get("failed", [])):
                return body
            time.sleep(0.2)
        raise AssertionError(f"/readyz never named telegram as failed:\n{proc.output()}")

    return await asyncio.to_thread(poll)


async def test_unreachable_bot_api_then_it_comes_back(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        tmp_path / "data",
        PIYASA_ADMIN_BOT_TOKEN=TOKEN,
        PIYASA_TELEGRAM_API_URL=f"http://127.0.0.1:{port}",
    )
    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    sb = TelegramSandbox()
    try:
        ready = await _until_telegram_failed(proc)
        reason = next(f["reason"] for f in ready["failed"] if f["name"] == "telegram")
        assert "cannot reach the Telegram Bot API" in reason
        assert TOKEN.split(":")[1] not in json.dumps(ready)
        code, health = _get_json(proc.http_url + "/api/health")
        assert code == 200
        states = {c["name"]: c["state"] for c in health["components"]}
        assert states["telegram"] == "critical"
        assert _status(proc.http_url + "/") == 200
        sb.add_bot(token=TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin")
        await sb.start("127.0.0.1", port)  # the Bot API is back: the retry starts the bot
        await asyncio.to_thread(proc.wait_http, "/readyz", 200)
        assert "Telegram admin bot @piyasa_admin_bot" in proc.output()
    finally:
        code = await asyncio.to_thread(proc.stop)
        await sb.stop()
    assert code == 0 and "Traceback" not in proc.output(), proc.output()


async def test_revoked_admin_token_keeps_the_status_page_up(tmp_path: Path) -> None:
    sb = TelegramSandbox()  # a Bot API that knows no such token: 401, like a revoked one
    url = await sb.start("127.0.0.1", 0)
    env = base_env(tmp_path / "data", PIYASA_ADMIN_BOT_TOKEN=TOKEN, PIYASA_TELEGRAM_API_URL=url)
    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    try:
        ready = await _until_telegram_failed(proc)
        reason = next(f["reason"] for f in ready["failed"] if f["name"] == "telegram")
        assert "401" in reason and "revoked" in reason
        assert _status(proc.http_url + "/api/health") == 200
        assert _status(proc.http_url + "/metrics") == 200
        assert proc.proc.poll() is None
    finally:
        code = await asyncio.to_thread(proc.stop)
        await sb.stop()
    assert code == 0 and "Traceback" not in proc.output(), proc.output()
