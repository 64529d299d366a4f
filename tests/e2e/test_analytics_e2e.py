"""End to end (issue 15, "Done when"): the demo fleet runs in one real `piyasa up --sandbox`,
then `/analytics` in the sandbox's admin group shows its bots with non-zero messages, a
chart arrives as a photo, and the CSV opens with the same figures as the table it exports.

One process for the whole file: every assertion below shares it. The sandbox's admin
speaks Turkish, so the figures read "1.247" and "$0,05".
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from piyasa.analytics import localfmt
from piyasa.sandbox.demo import ADMIN_BOT_TOKEN, ADMIN_GROUP_ID, ADMIN_USER_ID, FLEET
from tests.e2e.procs import PiyasaProcess, base_env
from tests.e2e.test_chatops_e2e import ADMIN_BOT_ID, Sandbox
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FLEET_NAMES = {display for _token, _user, display, _persona in FLEET}
CHAT = ADMIN_GROUP_ID


def buttons(message: dict) -> dict[str, str]:
    kb = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in kb for b in row}


class Admin:
    """The demo admin in the admin group, through the sandbox's JSON API."""

    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession, bot_api: str) -> None:
        self.sb, self.http, self.bot_api = sb, http, bot_api

    async def messages(self) -> list[dict]:
        async with self.http.get(f"{self.sb.base}/chats/{CHAT}/messages") as r:
            return (await r.json())["messages"]

    async def say(self, text: str) -> dict:
        after = await self.sb.last_id(self.http, CHAT)
        await self.sb.say(self.http, ADMIN_USER_ID, text, chat=CHAT)
        return await self.sb.reply(self.http, CHAT, after)

    async def press(self, message: dict, label: str, new: str | None = None) -> dict:
        """Press the button whose label holds ``label``; the edited message, or (``new``:
        "photo"/"document") the bot's next message carrying one."""
        data = next(d for text, d in buttons(message).items() if label in text)
        after = await self.sb.last_id(self.http, CHAT)
        body = {
            "user_id": ADMIN_USER_ID,
            "chat_id": CHAT,
            "message_id": message["message_id"],
            "callback_data": data,
        }
        async with self.http.post(self.sb.base + "/press", json=body) as r:
            assert r.status == 200, await r.text()

        async def answered() -> dict | None:
            for m in await self.messages():
                if (m.get("from") or {}).get("id") != ADMIN_BOT_ID:
                    continue
                if new and m["message_id"] > after and new in m:
                    return m
                if not new and m["message_id"] == message["message_id"]:
                    if m.get("text") != message.get("text") or buttons(m) != buttons(message):
                        return m
            return None

        return await until(answered, f"the answer to [{label}]", interval=0.2)

    async def download(self, file_id: str) -> bytes:
        """A document's bytes, the way a Telegram client fetches them (getFile)."""
        async with self.http.get(f"{self.bot_api}/getFile", params={"file_id": file_id}) as r:
            path = (await r.json())["result"]["file_path"]
        base = self.bot_api.replace("/bot", "/file/bot", 1)
        async with self.http.get(f"{base}/{path}") as r:
            assert r.status == 200
            return await r.read()


def messages_shown(text: str) -> int:
    found = re.search(r"Mesajlar: ([\d.]+)", text)
    return int(found.group(1).replace(".", "")) if found else 0


def table_line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(name))


async def test_analytics_of_the_running_demo_fleet(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", PIYASA_LANG="en")
    proc = PiyasaProcess(["up", "--sandbox"], env, tmp_path / "up.log")
    port = env["PIYASA_SANDBOX_PORT"]
    sb = Sandbox(f"http://127.0.0.1:{port}")
    try:
        await asyncio.to_thread(proc.wait_http, "/readyz")
        key = await asyncio.to_thread(proc.sandbox_key)
        async with aiohttp.ClientSession(headers={"X-Sandbox-Key": key}) as http:
            admin = Admin(sb, http, f"http://127.0.0.1:{port}/bot{ADMIN_BOT_TOKEN}")

            async def overview_with_messages() -> dict | None:
                shown = await admin.say("/analytics")
                return shown if messages_shown(shown["text"]) > 0 else None

            # the fleet talks in the demo groups; the rollup job folds it in within seconds
            overview = await until(
                overview_with_messages, "/analytics to count messages", interval=2
            )
            assert "📊 Analitik — son 24 saat" in overview["text"]

            photo = await admin.press(overview, "Mesaj grafiği", new="photo")
            assert photo["caption"] == "Mesajlar — son 24 saat" and photo["photo"]

            async def table_and_matching_csv() -> tuple[str, list[dict[str, Any]]] | None:
                """The bots table, its CSV, and the table again: the fleet keeps talking, so
                a CSV is compared only with a table that did not change around it."""
                shown = await admin.say("/analytics")
                table = await admin.press(shown, "Bot tablosu")
                doc = await admin.press(table, "CSV", new="document")
                data = await admin.download(doc["document"]["file_id"])
                again = await admin.press(table, "Mesaj")  # the sort button: re-read
                if again["text"] != table["text"]:
                    return None
                return table["text"], list(csv.DictReader(io.StringIO(data.decode("utf-8"))))

            text, rows = await until(table_and_matching_csv, "a CSV taken while the table held")
            talking = [r for r in rows if int(r["messages"]) > 0]
            assert talking and {r["bot"] for r in talking} <= FLEET_NAMES
            for row in rows:  # the document's figures are the table's, as a reader sees them
                line = table_line(text, row["bot"])
                assert localfmt.count(int(row["messages"]), "tr") in line, (row, line)
                assert localfmt.money(Decimal(row["cost_usd"]), "tr") in line, (row, line)
                rate = float(row["success_rate"]) if row["success_rate"] else None
                assert localfmt.percent(rate, "tr") in line, (row, line)
    finally:
        code = await asyncio.to_thread(proc.stop)
    assert code == 0, proc.output()[-2000:]
    assert "Traceback" not in proc.output()
