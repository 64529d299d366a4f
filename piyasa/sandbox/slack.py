"""A local Slack Web API for what the product posts: the far end of the Slack surface in
benchmarks and demos, without a Slack workspace.

Methods: ``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.open``,
``conversations.info``. Shapes and errors follow Slack's documentation: every answer is
HTTP 200 with ``{"ok": false, "error": "invalid_auth"}`` style errors; more than 50
blocks, section text over 3000 characters or a button value over 2000 is
``invalid_blocks`` (api.slack.com/reference/block-kit/blocks). A DM posted to a user id
``U...`` lands in that user's DM ``D...``, the id ``conversations.open`` answers.
(The test suite's fuller fake, with slash commands, modals and rate limits, is
``tests/chatops/slack_server.py``: a subclass of :class:`SlackSandbox`.)
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_TOKEN = "xoxb-sandbox-0000000000-piyasa"
TEAM_ID = "T0PIYASA"


def block_errors(blocks: list[dict[str, Any]] | None, max_blocks: int = 50) -> list[str]:
    """What Slack refuses in ``blocks`` (empty: Slack accepts them)."""
    errors = []
    blocks = blocks or []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed")
    for i, b in enumerate(blocks):
        text = (b.get("text") or {}).get("text", "")
        if b.get("type") == "section" and len(text) > 3000:
            errors.append(f"[{i}] section text must be less than 3001 characters")
        if b.get("type") == "header" and len(text) > 150:
            errors.append(f"[{i}] header text must be less than 151 characters")
        for f in b.get("fields") or []:
            if len(f.get("text", "")) > 2000:
                errors.append(f"[{i}] field text must be less than 2001 characters")
        if len(b.get("fields") or []) > 10:
            errors.append(f"[{i}] no more than 10 fields")
        for el in b.get("elements") or []:
            if len(str(el.get("value", ""))) > 2000:
                errors.append(f"[{i}] button value must be less than 2001 characters")
            if len(el.get("action_id", "")) > 255:
                errors.append(f"[{i}] action_id must be less than 256 characters")
        if b.get("type") == "actions" and len(b.get("elements") or []) > 25:
            errors.append(f"[{i}] no more than 25 elements")
    return errors


def dm_of(user_id: str) -> str:
    """The id of a user's DM with the app, as ``conversations.open`` answers it."""
    return "D" + user_id[1:]


@dataclass
class SlackSandbox:
    """The Web API on ``127.0.0.1`` (``start()`` returns the base URL ending in ``/api/``).

    ``posted``: every accepted ``chat.postMessage`` as ``{"ts", "channel", "text",
    "blocks", "at"}`` (``at``: ``time.perf_counter()`` on arrival), updated in place by
    ``chat.update``."""

    token: str = BOT_TOKEN
    posted: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _ts: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://{host}:{bound}/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def refused(self, channel: str) -> str | None:
        """The error a post to (or ``conversations.open`` of) ``channel`` gets, if any:
        none here; a subclass may refuse, as Slack does for a user who blocked the app."""
        return None

    def in_channel(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.posted if m["channel"] == channel]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(urllib.parse.parse_qsl(await request.text()))
        args = {**request.query, **args}
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or args.get("token", "")
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args))

    @staticmethod
    def _blocks(args: dict[str, Any]) -> list[dict[str, Any]] | None:
        blocks = args.get("blocks")
        return json.loads(blocks) if isinstance(blocks, str) else blocks

    def m_auth_test(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://piyasa.slack.com/",
            "team": "Piyasa",
            "user": "piyasa",
            "team_id": TEAM_ID,
            "user_id": "U0BOTUSER",
            "bot_id": "B0PIYASA",
        }

    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        blocks = self._blocks(args)
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        if block_errors(blocks):
            return {"ok": False, "error": "invalid_blocks", "errors": block_errors(blocks)}
        if error := self.refused(channel):
            return {"ok": False, "error": error}
        channel = dm_of(channel) if channel.startswith("U") else channel
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        msg = {"ts": ts, "channel": channel, "text": args.get("text"), "blocks": blocks}
        held = {**msg, "at": time.perf_counter()}
        self.messages[(channel, ts)] = held  # the same object: ``posted`` shows a message
        self.posted.append(held)  # as chat.update left it
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        blocks = self._blocks(args)
        if block_errors(blocks):
            return {"ok": False, "error": "invalid_blocks"}
        self.messages[key].update(text=args.get("text"), blocks=blocks)
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text")}

    def m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        if not users.startswith(("U", "W")) or "," in users:
            return {"ok": False, "error": "user_not_found"}
        if error := self.refused(users):
            return {"ok": False, "error": error}
        return {"ok": True, "channel": {"id": dm_of(users)}}

    def m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": args.get("channel"), "name": "ops"}}
