"""``/sandbox/api``: JSON endpoints for the demo page and end-to-end tests.

They act as the humans of the sandbox (write, press) and show what everyone sees, so a
browser or another process can play a user without speaking the Bot API.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from piyasa.tasks import wait_for

if TYPE_CHECKING:
    from .server import TelegramSandbox

PREFIX = "/sandbox/api"
EVENTS_MAX_TIMEOUT = 30.0


def add_routes(app: web.Application, sandbox: TelegramSandbox) -> None:
    routes = _Routes(sandbox)
    app.router.add_get(f"{PREFIX}/state", routes.state)
    app.router.add_get(f"{PREFIX}/chats/{{chat_id}}/messages", routes.messages)
    app.router.add_post(f"{PREFIX}/messages", routes.post_message)
    app.router.add_post(f"{PREFIX}/press", routes.press)
    app.router.add_get(f"{PREFIX}/events", routes.events)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(
            text=f'{{"ok": false, "error": "{name} must be an integer"}}',
            content_type="application/json",
        ) from None


class _Routes:
    def __init__(self, sandbox: TelegramSandbox) -> None:
        self.sb = sandbox

    async def state(self, request: web.Request) -> web.Response:
        w = self.sb.world
        bots = [
            {
                **b.user(),
                "webhook_url": b.webhook.url if b.webhook else None,
                "pending_updates": len(b.updates),
            }
            for b in w.bots.values()
        ]
        users = [u.user() for u in w.users.values()]
        chats: list[dict[str, Any]] = [
            {**g.chat(), "members": [{"id": mid, "status": st} for mid, st in g.status.items()]}
            for g in w.groups.values()
        ]
        chats += [{**c.chat, "bot_id": c.bot_id} for (cid, b), c in w.conversations.items() if b]
        return web.json_response({"ok": True, "bots": bots, "users": users, "chats": chats})

    async def messages(self, request: web.Request) -> web.Response:
        chat_id = _int(request.match_info["chat_id"], "chat_id")
        after = _int(request.query.get("after_id", 0), "after_id")
        bot_id = request.query.get("bot_id")
        try:
            msgs = self.sb.messages(chat_id, _int(bot_id, "bot_id") if bot_id else None)
        except LookupError as e:
            return _error(400, str(e))
        msgs = [m for m in msgs if m["message_id"] > after]
        return web.json_response({"ok": True, "messages": msgs})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(
                text='{"ok": false, "error": "send a JSON object"}', content_type="application/json"
            ) from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text='{"ok": false, "error": "send a JSON object"}', content_type="application/json"
            )
        return body

    async def post_message(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        user_id = _int(body.get("user_id"), "user_id")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "text is required")
        try:
            if body.get("chat_id") is not None and _int(body["chat_id"], "chat_id") < 0:
                msg = await self.sb.send_user_message(
                    user_id,
                    _int(body["chat_id"], "chat_id"),
                    text,
                    reply_to_message_id=body.get("reply_to_message_id"),
                )
            elif body.get("bot_id") is not None:
                msg = await self.sb.send_private(user_id, _int(body["bot_id"], "bot_id"), text)
            else:
                return _error(400, "give chat_id (a group) or bot_id (a private chat)")
        except (KeyError, ValueError, PermissionError, LookupError) as e:
            return _error(400, str(e))
        return web.json_response({"ok": True, "message": msg})

    async def press(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            qid = await self.sb.press_button(
                _int(body.get("user_id"), "user_id"),
                _int(body.get("chat_id"), "chat_id"),
                _int(body.get("message_id"), "message_id"),
                str(body.get("callback_data", "")),
                # a modified client can send any callback_data: tests play that attacker
                forge=bool(body.get("forge", False)),
                bot_id=_int(body["bot_id"], "bot_id") if body.get("bot_id") else None,
            )
        except (KeyError, LookupError) as e:
            return _error(400, str(e))
        return web.json_response({"ok": True, "callback_query_id": qid})

    async def events(self, request: web.Request) -> web.Response:
        """Long poll: events after ``after``, waiting up to ``timeout`` s for the first."""
        after = _int(request.query.get("after", 0), "after")
        timeout = min(float(request.query.get("timeout", 25)), EVENTS_MAX_TIMEOUT)
        w = self.sb.world
        waiter = w.notifier.waiter()
        if len(w.events) <= after and not w.closing:
            with contextlib.suppress(TimeoutError):
                await wait_for(waiter.wait(), timeout)
        events = w.events[after:]
        return web.json_response({"ok": True, "events": events, "last": len(w.events)})
