"""`piyasa up` outlives a Slack that refuses its bot token: the status page, /api/health and
/metrics keep serving, /readyz and the health component name the reason (token masked),
slash commands are told what to do, and the retry recovers once Slack accepts the token.

A fresh process: what is tested is how a process starts against a refusing Slack.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chatops.slack_server import BOT_TOKEN, SIGNING_SECRET, SlackServer, sign, slack_text
from tests.e2e.procs import PiyasaProcess, base_env
from tests.waiting import HANG_S

pytestmark = pytest.mark.e2e


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=HANG_S) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=HANG_S) as resp:
        return resp.status


async def _poll(proc: PiyasaProcess, path: str, found: Any, what: str) -> dict:
    """GET ``path`` (off the loop: the test's Slack serves on it) until ``found(code, body)``."""

    def poll() -> dict:
        for _ in range(int(HANG_S / 0.2)):
            if proc.proc.poll() is not None:
                raise AssertionError(f"piyasa exited {proc.proc.returncode}:\n{proc.output()}")
            try:
                code, body = _get_json(proc.http_url + path)
            except (OSError, ValueError):
                code, body = 0, {}
            if found(code, body):
                return body
            time.sleep(0.2)
        raise AssertionError(f"{what} never happened:\n{proc.output()[-3000:]}")

    return await asyncio.to_thread(poll)


def _slack_state(body: dict) -> str | None:
    return next((c["state"] for c in body.get("components", []) if c["name"] == "slack"), None)


async def test_refused_slack_token_keeps_piyasa_up_and_recovers(tmp_path: Path) -> None:
    slack = SlackServer(token="xoxb-1111-a-token-of-another-app")  # ours: invalid_auth
    await slack.start()
    env = base_env(
        tmp_path / "data",
        PIYASA_LANG="en",
        PIYASA_SLACK_BOT_TOKEN=BOT_TOKEN,
        PIYASA_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PIYASA_SLACK_API_URL=slack.base + "/api/",
    )
    proc = PiyasaProcess(["up", "--sandbox"], env, tmp_path / "up.log")
    events = proc.http_url + "/slack/events"
    try:
        ready = await _poll(
            proc,
            "/readyz",
            lambda code, body: (
                code == 503 and any(f["name"] == "slack" for f in body.get("failed", []))
            ),
            "/readyz naming slack as failed",
        )
        reason = next(f["reason"] for f in ready["failed"] if f["name"] == "slack")
        assert "refused the bot token (invalid_auth)" in reason
        assert BOT_TOKEN not in json.dumps(ready)
        await _poll(
            proc,
            "/api/health",
            lambda code, body: code == 200 and _slack_state(body) == "critical",
            "/api/health showing slack critical",
        )
        assert await asyncio.to_thread(_status, proc.http_url + "/metrics") == 200
        assert await asyncio.to_thread(_status, proc.http_url + "/") == 200

        async with aiohttp.ClientSession() as http:
            # whoever types a command learns what is wrong and who fixes it
            body = urllib.parse.urlencode(
                {"team_id": "T0PIYASA", "channel_id": "C0OPS", "user_id": "U0NOBODY",
                 "command": "/piyasa", "text": "help", "trigger_id": "1.t",
                 "response_url": slack.new_response_url()}
            )  # fmt: skip
            async with http.post(events, data=body, headers=sign(SIGNING_SECRET, body)) as r:
                assert r.status == 200
                assert "PIYASA_SLACK_BOT_TOKEN" in slack_text(await r.json())
            # the body limit holds on the Slack route of the real process (boot dispatch)
            big = b"command=%2Fpiyasa&text=" + b"x" * (1024 * 1024)
            async with http.post(events, data=big, headers=sign(SIGNING_SECRET, "x")) as r:
                assert r.status == 413

        slack.token = BOT_TOKEN  # the token is accepted now: the retry brings Slack up
        await asyncio.to_thread(proc.wait_http, "/readyz", 200)
        assert "Slack app @piyasa" in proc.output()
        await _poll(
            proc,
            "/api/health",
            lambda code, body: _slack_state(body) == "healthy",
            "/api/health showing slack healthy",
        )
    finally:
        code = await asyncio.to_thread(proc.stop)
        await slack.stop()
    output = proc.output()
    assert code == 0 and "Traceback" not in output, output
    assert BOT_TOKEN not in output
