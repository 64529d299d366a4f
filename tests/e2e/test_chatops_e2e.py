"""End to end: the real `piyasa up --sandbox` process with the chat surfaces.

The forged press goes through /sandbox/api/press with ``"forge": true``: a modified
client can put any callback_data in a press, and the bot must refuse it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

import aiohttp
import pytest

from piyasa.sandbox.demo import ADMIN_BOT_TOKEN, ADMIN_GROUP_ID, ADMIN_USER_ID
from tests.chatops.slack_server import SIGNING_SECRET, SlackServer, sign
from tests.e2e.procs import PiyasaProcess, base_env
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADMIN_BOT_ID = int(ADMIN_BOT_TOKEN.split(":")[0])
STRANGER = 900003  # seeded in the sandbox, never linked


class Sandbox:
    def __init__(self, base: str) -> None:
        self.base = base + "/sandbox/api"

    async def callback_answer(self, http: aiohttp.ClientSession, qid: str) -> str:
        """Follow the sandbox's event stream until the bot answers callback ``qid``."""
        after = 0

        async def answered() -> str | None:
            nonlocal after
            async with http.get(self.base + "/events", params={"after": after, "timeout": 5}) as r:
                page = await r.json()
            after = page["last"]
            for event in page["events"]:
                if qid in json.dumps(event) and "answer" in event["type"]:
                    return json.dumps(event, ensure_ascii=False)
            return None

        return await until(answered, f"the bot's answer to callback {qid}")

    async def say(
        self, http: aiohttp.ClientSession, user: int, text: str, chat: int | None = None
    ) -> None:
        body = {"user_id": user, "text": text}
        body.update({"chat_id": chat} if chat else {"bot_id": ADMIN_BOT_ID})
        async with http.post(self.base + "/messages", json=body) as r:
            assert r.status == 200, await r.text()

    async def reply(self, http: aiohttp.ClientSession, chat: int, after: int) -> dict:
        """The admin bot's first message in ``chat`` after message id ``after``."""

        async def mine() -> dict | None:
            async with http.get(
                f"{self.base}/chats/{chat}/messages", params={"after_id": after}
            ) as r:
                msgs = await r.json()
                msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
            found = [m for m in msgs if (m.get("from") or {}).get("id") == ADMIN_BOT_ID]
            return found[0] if found else None

        return await until(mine, f"the admin bot's reply in chat {chat}", interval=0.1)

    async def last_id(self, http: aiohttp.ClientSession, chat: int) -> int:
        async with http.get(f"{self.base}/chats/{chat}/messages") as r:
            msgs = await r.json()
            msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        return max((m["message_id"] for m in msgs), default=0)


async def test_piyasa_up_chatops(tmp_path: Path) -> None:
    slack = SlackServer()
    await slack.start()
    env = base_env(
        tmp_path / "data",
        PIYASA_LANG="en",
        PIYASA_SLACK_BOT_TOKEN=slack.token,
        PIYASA_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PIYASA_SLACK_API_URL=slack.base + "/api/",
    )
    # Output goes to a file: a pipe nobody reads while the test runs could fill and block it.
    proc = PiyasaProcess(["up", "--sandbox"], env, tmp_path / "up.log")
    web = proc.http_url
    sb = Sandbox(f"http://127.0.0.1:{env['PIYASA_SANDBOX_PORT']}")
    try:
        # Ready, not only alive: the admin bot and the Slack app must be running. The
        # blocking waits run in a thread, so the local Slack in this loop keeps answering.
        await asyncio.to_thread(proc.wait_http, "/readyz")
        key = await asyncio.to_thread(proc.sandbox_key)  # the demo's API needs the run's key
        async with aiohttp.ClientSession(headers={"X-Sandbox-Key": key}) as http:
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
        code = await asyncio.to_thread(proc.stop)
        await slack.stop()
    assert code == 0, proc.output()[-2000:]
