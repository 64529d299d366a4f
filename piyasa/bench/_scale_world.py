"""The world a ``piyasa bench scale`` run talks to, in a child process of its own (so the
harness and the measured instances are not slowed by it): the Telegram sandbox enforcing
Telegram's limits, with the admin bot, ``bots`` fleet bots and ``chats`` groups (bot i in
group i mod chats, as ``piyasa bench runtime``), and the local OpenAI-compatible server
(50-500 ms per completion). A fresh world per run, so runs never share counts."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
from typing import Any

from piyasa.bench.runtime import _chat_id, _membership, _token

ADMIN_TOKEN = "7180000000:BENCH-admin-bot-token-for-scale-bench"
LATENCY = (0.05, 0.5)  # the fake LLM's latency range, seconds


def _child(conn: Any, bots: int, chats: int) -> None:
    asyncio.run(_main(conn, bots, chats))


async def _main(conn: Any, bots: int, chats: int) -> None:
    from piyasa.sandbox.llm_server import FakeOpenAIServer
    from piyasa.sandbox.telegram import TelegramSandbox

    sb = TelegramSandbox()
    sb.add_bot(ADMIN_TOKEN, "piyasa_admin_bot", "Piyasa Admin")
    ids = [sb.add_bot(_token(i), f"bench{i}_bot", f"Bench {i}").id for i in range(bots)]
    for j, members in _membership(bots, chats, 1).items():
        sb.add_group(_chat_id(j), f"Bench {j}", members=[ids[i] for i in members])
    llm = FakeOpenAIServer(api_keys=["sk-bench"], latency=LATENCY, record_limit=100)
    conn.send({"telegram": await sb.start("127.0.0.1", 0), "llm": await llm.start("127.0.0.1", 0)})
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, conn.recv)) != "stop":
        sends = [
            (c["bot_id"], c["ok"], c["error_code"], c["time"]) for c in sb.calls("sendMessage")
        ]
        sent = [(m["chat"]["id"], m["from"]["id"], m.get("text", "")) for m in sb.sent()]
        polls = sb.calls("getUpdates")
        conflicts = [c["time"] for c in polls if c["error_code"] == 409]
        conn.send({"sends": sends, "sent": sent, "conflicts": conflicts, "polls": len(polls)})
    await llm.stop()
    await sb.stop()


class World:
    """The child process and its pipe: :meth:`ready` gives the URLs, :meth:`stats` what
    the sandbox saw — ``sends`` (bot, ok, error code, epoch s) per sendMessage call,
    ``sent`` (chat, bot, text) per message delivered, ``conflicts`` (epoch s of each
    getUpdates answered 409) and ``polls`` (getUpdates calls)."""

    def __init__(self, bots: int, chats: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child_conn, bots, chats), daemon=True)
        self.proc.start()

    async def ready(self) -> dict[str, str]:
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    async def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
