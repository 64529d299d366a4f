"""Break-glass linking: a code printed by `piyasa user link-code` works in the running bot.
(The module's one test starts the one `piyasa up` it needs: there is nothing to share.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from piyasa.sandbox.demo import ADMIN_BOT_TOKEN, ADMIN_GROUP_ID, seed_sandbox
from piyasa.sandbox.telegram import TelegramSandbox
from tests.e2e.procs import PiyasaProcess, base_env, run_cli
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN_BOT_ID = int(ADMIN_BOT_TOKEN.split(":")[0])
NEWCOMER = 900002  # seeded in the sandbox, not linked to anyone


async def _private_reply(http: aiohttp.ClientSession, api: str, text: str) -> str:
    """Send ``text`` to the admin bot in private and return the bot's answer."""
    async with http.get(f"{api}/chats/{NEWCOMER}/messages", params={"bot_id": ADMIN_BOT_ID}) as r:
        before = {m["message_id"] for m in (await r.json())["messages"]}
    async with http.post(
        f"{api}/messages", json={"user_id": NEWCOMER, "bot_id": ADMIN_BOT_ID, "text": text}
    ) as r:
        assert r.status == 200, await r.text()
    async with http.get(f"{api}/events", params={"after": 0, "timeout": 0}) as r:
        after = (await r.json())["last"]

    async def answer() -> str | None:
        nonlocal after
        async with http.get(
            f"{api}/chats/{NEWCOMER}/messages", params={"bot_id": ADMIN_BOT_ID}
        ) as r:
            msgs = (await r.json())["messages"]
        answers = [
            m
            for m in msgs
            if m["message_id"] not in before and (m.get("from") or {}).get("id") == ADMIN_BOT_ID
        ]
        if answers:
            return answers[-1]["text"]
        async with http.get(f"{api}/events", params={"after": after, "timeout": 1}) as r:
            after = (await r.json())["last"]  # the long poll: back as soon as anything happens
        return None

    return await until(answer, f"the bot's answer to {text!r}", interval=0)


async def test_cli_link_code_links_a_telegram_account_in_the_running_bot(tmp_path: Path) -> None:
    """Production mode (an admin bot token), against a Bot API server of the test's own:
    the demo sandbox never sees the configured database, so it could not show this."""
    sb = TelegramSandbox()
    seed_sandbox(sb)
    url = await sb.start("127.0.0.1", 0)
    env = base_env(
        tmp_path / "data",
        PIYASA_LANG="en",
        PIYASA_ADMIN_BOT_TOKEN=ADMIN_BOT_TOKEN,
        PIYASA_TELEGRAM_API_URL=url,
        PIYASA_ADMIN_CHAT_IDS=str(ADMIN_GROUP_ID),
    )
    assert run_cli(["migrate"], env).returncode == 0
    added = run_cli(["user", "add", "mehmet", "--role", "operator"], env)
    assert added.returncode == 0, added.stderr
    printed = run_cli(["user", "link-code", "mehmet"], env)
    assert printed.returncode == 0, printed.stderr
    code = printed.stdout.strip()

    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    try:
        # Blocking waits in a thread: the Bot API server answers from this loop.
        await asyncio.to_thread(proc.wait_http, "/readyz")  # the admin bot is polling
        api = f"{url}/sandbox/api"
        async with aiohttp.ClientSession() as http:
            linked = await _private_reply(http, api, f"/link {code}")
            assert "mehmet" in linked
            who = await _private_reply(http, api, "/whoami")
            assert "mehmet" in who and "operatör" in who  # Mehmet writes in Turkish
            reused = await _private_reply(http, api, f"/link {code}")
            assert "mehmet" not in reused, reused  # single use: refused the second time
    finally:
        code = await asyncio.to_thread(proc.stop)
        await sb.stop()
    assert code == 0, proc.output()
