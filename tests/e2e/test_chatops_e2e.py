"""End to end: the real `piyasa up --sandbox` process with the chat surfaces.

The forged press goes through /sandbox/api/press with ``"forge": true``: a modified
client can put any callback_data in a press, and the bot must refuse it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import urllib.parse
from pathlib import Path

import aiohttp
import pytest

from piyasa.sandbox.demo import ADMIN_BOT_TOKEN, ADMIN_GROUP_ID, ADMIN_USER_ID
from tests.chatops.slack_server import SIGNING_SECRET, SlackServer, sign

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADMIN_BOT_ID = int(ADMIN_BOT_TOKEN.split(":")[0])
STRANGER = 900003  # seeded in the sandbox, never linked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_http(url: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(url)
            await asyncio.sleep(0.1)


class Sandbox:
    def __init__(self, base: str) -> None:
        self.base = base + "/sandbox/api"

    async def callback_answer(
        self, http: aiohttp.ClientSession, qid: str, within_s: float = 10.0
    ) -> str:
        """Follow the sandbox's event stream until the bot answers callback ``qid``."""
        after, deadline = 0, asyncio.get_running_loop().time() + within_s
        while asyncio.get_running_loop().time() < deadline:
            async with http.get(self.base + "/events", params={"after": after, "timeout": 5}) as r:
                page = await r.json()
            for event in page["events"]:
                if qid in json.dumps(event) and "answer" in event["type"]:
                    return json.dumps(event, ensure_ascii=False)
            after = page["last"]
        raise AssertionError(f"callback {qid} never answered")

    async def say(
        self, http: aiohttp.ClientSession, user: int, text: str, chat: int | None = None
    ) -> None:
        body = {"user_id": user, "text": text}
        body.update({"chat_id": chat} if chat else {"bot_id": ADMIN_BOT_ID})
        async with http.post(self.base + "/messages", json=body) as r:
            assert r.status == 200, await r.text()

    async def reply(
        self, http: aiohttp.ClientSession, chat: int, after: int, wait_s: float = 15
    ) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            async with http.get(
                f"{self.base}/chats/{chat}/messages", params={"after_id": after}
            ) as r:
                msgs = await r.json()
                msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
            mine = [m for m in msgs if (m.get("from") or {}).get("id") == ADMIN_BOT_ID]
            if mine:
                return mine[0]
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no reply in chat {chat}")

    async def last_id(self, http: aiohttp.ClientSession, chat: int) -> int:
        async with http.get(f"{self.base}/chats/{chat}/messages") as r:
            msgs = await r.json()
            msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        return max((m["message_id"] for m in msgs), default=0)


async def test_piyasa_up_chatops(tmp_path: Path) -> None:
    slack = SlackServer()
    await slack.start()
    http_port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIYASA_")}
    env.update(
        PIYASA_DATA_DIR=str(tmp_path / "data"),
        PIYASA_HTTP_PORT=str(http_port),
        PIYASA_SANDBOX_PORT=str(sandbox_port),
        PIYASA_LANG="en",
        PIYASA_SLACK_BOT_TOKEN=slack.token,
        PIYASA_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PIYASA_SLACK_API_URL=slack.base + "/api/",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "piyasa.cli",
        "up",
        "--sandbox",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    web = f"http://127.0.0.1:{http_port}"
    sb = Sandbox(f"http://127.0.0.1:{sandbox_port}")
    try:
        await wait_http(web + "/healthz")
        async with aiohttp.ClientSession() as http:
            # an admin's /help in the admin group lists the commands
            after = await sb.last_id(http, ADMIN_GROUP_ID)
            await sb.say(http, ADMIN_USER_ID, "/help", chat=ADMIN_GROUP_ID)
            help_msg = await sb.reply(http, ADMIN_GROUP_ID, after)
            assert "/whoami" in help_msg["text"] and "/linkcode" in help_msg["text"]

            # an unknown user gets a refusal telling them how to get linked
            after = await sb.last_id(http, STRANGER)
            await sb.say(http, STRANGER, "/whoami")
            refusal = await sb.reply(http, STRANGER, after)
            assert "link code" in refusal["text"] and "/link" in refusal["text"]

            # a forged button is refused
            after = await sb.last_id(http, ADMIN_GROUP_ID)
            await sb.say(http, ADMIN_USER_ID, "/lang", chat=ADMIN_GROUP_ID)
            lang_msg = await sb.reply(http, ADMIN_GROUP_ID, after)
            async with http.post(
                sb.base + "/press",
                json={
                    "user_id": ADMIN_USER_ID,
                    "chat_id": ADMIN_GROUP_ID,
                    "message_id": lang_msg["message_id"],
                    "callback_data": "b:forgedforgedforg",
                    "forge": True,
                },
            ) as r:
                assert r.status == 200, await r.text()
                qid = (await r.json())["callback_query_id"]
            answer = await sb.callback_answer(http, qid)
            # the sandbox admin speaks Turkish: "button expired or not yours"
            assert "süresi dolmuş ya da size ait değil" in answer

            # a signed Slack slash command gets Block Kit; a bad signature gets 401
            url = slack.new_response_url()
            body = urllib.parse.urlencode(
                {
                    "team_id": "T0PIYASA",
                    "channel_id": "C0OPS",
                    "user_id": "U0NOBODY",
                    "user_name": "nobody",
                    "command": "/piyasa",
                    "text": "help",
                    "response_url": url,
                    "trigger_id": "1.t",
                    "api_app_id": "A0",
                }
            )
            async with http.post(
                web + "/slack/events", data=body, headers=sign(SIGNING_SECRET, body)
            ) as r:
                assert r.status == 200
                ack = await r.json()
            assert ack["blocks"] and ack["response_type"] == "ephemeral"
            async with http.post(
                web + "/slack/events", data=body, headers=sign("wrong", body)
            ) as r:
                assert r.status == 401
    finally:
        proc.terminate()
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        await slack.stop()
    assert proc.returncode == 0, out.decode()[-2000:]
