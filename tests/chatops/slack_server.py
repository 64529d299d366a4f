"""A small local Slack: the Web API methods Piyasa uses, response_url receivers, and a
client that signs requests the way Slack does (v0 HMAC-SHA256 over timestamp and body).

Shapes and errors follow Slack's documentation: every Web API answer is HTTP 200 with
``{"ok": false, "error": "invalid_auth"}`` style errors; blocks beyond 50, section text
beyond 3000 and button values beyond 2000 are ``invalid_blocks``. A rate-limited call is
HTTP 429 with a ``Retry-After`` header (seconds) and ``{"ok": false, "error": "ratelimited"}``
(api.slack.com/apis/rate-limits); ``missing_scope`` names the scope in ``needed`` and the
token's scopes in ``provided``.

Modals (docs.slack.dev: views.open, views.update, modal views, view_submission): a
``trigger_id`` comes with each slash command and button press, is good for one
``views.open`` within 3 seconds (``exchanged_trigger_id``, ``expired_trigger_id``,
``invalid_trigger_id``); a modal's title, submit and close are plain_text of at most 24
characters, submit is required with an input block, at most 100 blocks, private_metadata
at most 3000 characters. ``SlackClient.submit`` plays the user pressing Submit: it posts a
signed ``view_submission`` with the input values in ``view.state.values`` and applies the
acknowledgement like Slack: empty closes the modal, ``errors`` keeps it open with messages
under the named input blocks, ``update`` replaces it, ``clear`` closes it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from piyasa.sandbox.slack import TEAM_ID, SlackSandbox, block_errors
from piyasa.sandbox.slack import dm_of as dm_of  # re-exported: tests import it from here
from tests.waiting import until

BOT_TOKEN = "xoxb-test-0000000000-piyasa"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class SlackServer(SlackSandbox):
    """The product's Slack sandbox (its Web API methods, answers and block checks) plus
    what tests drive: response URLs, file uploads, modals, rate limits, failures."""

    token: str = BOT_TOKEN
    signing_secret: str = SIGNING_SECRET
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""
    # user id -> the error conversations.open and a DM post answer for that user
    dm_refused: dict[str, str] = field(default_factory=dict)
    # method -> error for its next call only (a failure after an earlier check passed):
    # the code, or the whole error body (``{"error": "missing_scope", "needed": ...}``)
    fail_next: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    # method -> Retry-After seconds: its next call is answered 429 ratelimited
    rate_limit_next: dict[str, int] = field(default_factory=dict)
    # method -> [calls left, Retry-After seconds]: a storm, each of its next calls 429
    rate_limit_storm: dict[str, list[int]] = field(default_factory=dict)
    # (method, time.monotonic(), HTTP status) of every authenticated Web API call
    timeline: list[tuple[str, float, int]] = field(default_factory=list)
    # trigger_id -> (monotonic time issued, user id); Slack accepts each once within 3 s
    triggers: dict[str, tuple[float, str]] = field(default_factory=dict)
    trigger_ttl_s: float = 3.0
    # view id -> {"view": the view as Slack holds it, "user": id, "open": bool}
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    _urls: Any = field(default_factory=lambda: itertools.count(1))

    # -- server -------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_post("/upload/{fid}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://{host}:{port}"
        return self.base + "/api/"

    def new_response_url(self) -> str:
        rid = str(next(self._urls))
        self.responses[rid] = []
        return f"{self.base}/response/{rid}"

    async def wait_response(self, url: str, count: int = 1) -> list[dict]:
        """The posts to response URL ``url``, once there are ``count`` of them."""
        rid = url.rsplit("/", 1)[1]
        await until(
            lambda: len(self.responses[rid]) >= count,
            f"{count} post(s) to response_url {rid}",
            interval=0.005,
            output=lambda: f"got {len(self.responses[rid])}",
        )
        return self.responses[rid]

    async def _response(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        if rid not in self.responses:
            return web.Response(status=404, text="no_active_hooks")
        body = await request.json()
        if block_errors(body.get("blocks")):
            return web.Response(status=400, text="invalid_blocks")
        if len(self.responses[rid]) >= 5:
            return web.Response(status=404, text="used_url")  # five uses per response_url
        self.responses[rid].append(body)
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        data = await request.read()
        for up in self.uploads:
            if up["id"] == fid:
                up["size"] = len(data)
        return web.Response(text="OK - " + str(len(data)))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        if request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(urllib.parse.parse_qsl(await request.text()))
        args = {**request.query, **args}  # slack_sdk sends `params=` calls as a query string
        token = auth.removeprefix("Bearer ").strip() or args.get("token", "")
        self.calls.append((method, args))
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        if token != self.token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        retry_after = self.rate_limit_next.pop(method, None)
        storm = self.rate_limit_storm.get(method)
        if retry_after is None and storm:
            storm[0] -= 1
            retry_after = storm[1]
            if storm[0] <= 0:
                del self.rate_limit_storm[method]
        if retry_after is not None:
            self.timeline.append((method, time.monotonic(), 429))
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        self.timeline.append((method, time.monotonic(), 200))
        if method in self.fail_next:
            error = self.fail_next.pop(method)
            body = {"error": error} if isinstance(error, str) else dict(error)
            return web.json_response({"ok": False, **body})
        result = handler(args)
        return web.json_response(result)

    # -- Web API methods (auth.test, chat.*, conversations.*: SlackSandbox's) ---------
    def refused(self, channel: str) -> str | None:
        return self.dm_refused.get(channel)

    def issue_trigger(self, user_id: str) -> str:
        trigger = f"{len(self.triggers) + 1}.{TEAM_ID}.{secrets.token_hex(8)}"
        self.triggers[trigger] = (time.monotonic(), user_id)
        return trigger

    def _view_arg(self, args: dict) -> dict | None:
        view = args.get("view")
        try:
            view = json.loads(view) if isinstance(view, str) else view
        except ValueError:
            return None
        return view if isinstance(view, dict) else None

    def m_views_open(self, args: dict) -> dict:
        trigger = args.get("trigger_id")
        if not trigger and not args.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_arguments"}
        if trigger not in self.triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        issued, user = self.triggers[trigger]
        if not user:
            return {"ok": False, "error": "exchanged_trigger_id"}
        if time.monotonic() - issued > self.trigger_ttl_s:
            return {"ok": False, "error": "expired_trigger_id"}
        view = self._view_arg(args)
        problems = modal_errors(view)
        if problems:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": problems},
            }
        self.triggers[trigger] = (issued, "")  # exchanged: a trigger opens one view
        vid = f"V{len(self.views) + 1:08d}"
        self.views[vid] = {"view": self._held(vid, view), "user": user, "open": True}  # type: ignore[arg-type]
        return {"ok": True, "view": self.views[vid]["view"]}

    def m_views_update(self, args: dict) -> dict:
        vid = args.get("view_id")
        if not vid and args.get("external_id"):
            vid = next(
                (
                    k
                    for k, v in self.views.items()
                    if v["view"].get("external_id") == args["external_id"]
                ),
                None,
            )
        if not vid:
            return {"ok": False, "error": "invalid_arguments"}
        if vid not in self.views:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != self.views[vid]["view"]["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        view = self._view_arg(args)
        problems = modal_errors(view)
        if problems:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": problems},
            }
        self.views[vid]["view"] = self._held(vid, view)  # type: ignore[arg-type]
        return {"ok": True, "view": self.views[vid]["view"]}

    def _held(self, vid: str, view: dict) -> dict:
        """The view as Slack stores and returns it: with id, hash and an empty state."""
        return {
            **view,
            "id": vid,
            "team_id": TEAM_ID,
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "state": {"values": {}},
            "app_id": "A0PIYASA",
            "bot_id": "B0PIYASA",
        }

    def open_views(self, user_id: str) -> list[dict[str, Any]]:
        """The modals open on ``user_id``'s screen, oldest first."""
        return [v["view"] for v in self.views.values() if v["open"] and v["user"] == user_id]

    async def wait_view(self, user_id: str, count: int = 1) -> dict[str, Any]:
        """The newest modal open for ``user_id``, once ``count`` modals were ever opened for them."""
        await until(
            lambda: (
                len([v for v in self.views.values() if v["user"] == user_id]) >= count
                and self.open_views(user_id)
            ),
            f"a modal open for {user_id}",
            interval=0.005,
        )
        return self.open_views(user_id)[-1]

    def m_files_getUploadURLExternal(self, args: dict) -> dict:
        fid = f"F{len(self.uploads) + 1:08d}"
        self.uploads.append({"id": fid, "filename": args.get("filename"), "size": 0})
        return {"ok": True, "upload_url": f"{self.base}/upload/{fid}", "file_id": fid}

    def m_files_completeUploadExternal(self, args: dict) -> dict:
        files = args.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        for f in files or []:
            for up in self.uploads:
                if up["id"] == f["id"]:
                    up["channel"] = args.get("channel_id")
                    up["title"] = f.get("title")
        return {"ok": True, "files": [{"id": f["id"]} for f in files or []]}


def modal_errors(view: dict | None) -> list[str]:
    """What Slack refuses in a modal view object (docs.slack.dev, "Modal views")."""
    if not view or view.get("type") != "modal":
        return ["[ERROR] must provide a view of type modal"]
    errors = block_errors(view.get("blocks"), max_blocks=100)
    for key in ("title", "submit", "close"):
        part = view.get(key)
        if part is None:
            continue
        if part.get("type") != "plain_text" or not 1 <= len(part.get("text", "")) <= 24:
            errors.append(f"[ERROR] {key} must be plain_text of 1-24 characters")
    if not view.get("title"):
        errors.append("[ERROR] missing required field: title")
    blocks = view.get("blocks") or []
    inputs = [b for b in blocks if b.get("type") == "input"]
    if inputs and not view.get("submit"):
        errors.append("[ERROR] submit is required when an input block is present")
    for b in inputs:
        label = (b.get("label") or {}).get("text", "")
        if not 1 <= len(label) <= 2000:
            errors.append("[ERROR] input label must be 1-2000 characters")
        element = b.get("element") or {}
        if int(element.get("max_length", 3000)) > 3000:
            errors.append("[ERROR] max_length must be at most 3000")
        if "initial_value" in element and not isinstance(element["initial_value"], str):
            errors.append("[ERROR] initial_value must be a string")
    if len(view.get("private_metadata", "")) > 3000:
        errors.append("[ERROR] private_metadata must be at most 3000 characters")
    if len(view.get("callback_id", "")) > 255:
        errors.append("[ERROR] callback_id must be at most 255 characters")
    return errors


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


class SlackClient:
    """Plays Slack towards our /slack/events endpoint."""

    def __init__(self, server: SlackServer, events_url: str, secret: str = SIGNING_SECRET) -> None:
        self.server = server
        self.url = events_url
        self.secret = secret

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=body.encode(), headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def slash(
        self,
        user_id: str,
        text: str,
        *,
        channel: str = "C0OPS",
        secret: str | None = None,
        timestamp: int | None = None,
        final: bool = True,
    ) -> tuple[int, Any, str]:
        """Send ``/piyasa text``; returns (status, ack body as JSON or text, response_url).

        With ``final`` (the default) a "Working on it…" ack is replaced by the answer that
        follows it through response_url: what the user reads, however slow the machine."""
        response_url = self.server.new_response_url()
        body = urllib.parse.urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": TEAM_ID,
                "team_domain": "piyasa",
                "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "ops",
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": "/piyasa",
                "text": text,
                "api_app_id": "A0PIYASA",
                "response_url": response_url,
                "trigger_id": self.server.issue_trigger(user_id),
            }
        )
        status, raw = await self.post(body, sign(secret or self.secret, body, timestamp))
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        if final and _is_placeholder(parsed):
            # the command outlasted the ack budget (a loaded machine): its answer follows
            # through response_url, which is what the user reads in place of the placeholder
            parsed = (await self.server.wait_response(response_url))[0]
        return status, parsed, response_url

    async def press(
        self, user_id: str, value: str, *, channel: str = "C0OPS", action_id: str = "piyasa:1"
    ) -> tuple[int, str]:
        response_url = self.server.new_response_url()
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "piyasa"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0PIYASA",
            "container": {"type": "message", "channel_id": channel, "is_ephemeral": True},
            "channel": {"id": channel, "name": "ops"},
            "trigger_id": self.server.issue_trigger(user_id),
            "response_url": response_url,
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        status, _ = await self.post(body, sign(self.secret, body))
        return status, response_url

    async def submit(self, user_id: str, view: dict[str, Any], value: str) -> dict[str, Any]:
        """``user_id`` types ``value`` into the input of open modal ``view`` and presses
        Submit; Slack's handling of the acknowledgement is applied to the held view.
        Returns {"status", "ack" (parsed body or None), "errors" (block_id -> message)}."""
        held = self.server.views[view["id"]]
        assert held["open"] and held["user"] == user_id, "that modal is not open for this user"
        shown = held["view"]
        values = {
            b["block_id"]: {
                b["element"]["action_id"]: {"type": b["element"]["type"], "value": value}
            }
            for b in shown.get("blocks") or []
            if b.get("type") == "input"
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "piyasa"},
            "user": {
                "id": user_id,
                "username": user_id.lower(),
                "name": user_id.lower(),
                "team_id": TEAM_ID,
            },
            "api_app_id": "A0PIYASA",
            "token": "deprecated-verification-token",
            "trigger_id": self.server.issue_trigger(user_id),
            "view": {**shown, "state": {"values": values}},
            "response_urls": [],
            "is_enterprise_install": False,
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        status, raw = await self.post(body, sign(self.secret, body))
        ack = json.loads(raw) if raw.strip() else None
        errors: dict[str, str] = {}
        action = (ack or {}).get("response_action")
        if status != 200:
            pass  # Slack shows "We had some trouble connecting"; the modal stays
        elif action == "errors":
            errors = dict(ack["errors"])
            inputs = {b["block_id"] for b in shown.get("blocks") or [] if b.get("type") == "input"}
            assert set(errors) <= inputs, f"errors name blocks that are not inputs: {errors}"
        elif action == "update":
            assert not modal_errors(ack["view"]), modal_errors(ack["view"])
            held["view"] = self.server._held(shown["id"], ack["view"])
        elif action in (None, "clear"):
            held["open"] = False
        else:
            raise AssertionError(f"unexpected response_action {action}")
        return {"status": status, "ack": ack, "errors": errors}


def slack_buttons(message: dict) -> list[tuple[str, str]]:
    return [
        (el["text"]["text"], el.get("value", ""))
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for el in b["elements"]
    ]


def slack_text(message: Any) -> str:
    if not isinstance(message, dict):
        return str(message)
    parts = [message.get("text") or ""]
    for b in message.get("blocks") or []:
        if b.get("text"):
            parts.append(b["text"].get("text", ""))
        for f in b.get("fields") or []:
            parts.append(f.get("text", ""))
    return "\n".join(parts)


def _is_placeholder(ack: Any) -> bool:
    """Is ``ack`` the "Working on it…" answer Slack shows while the command runs on?"""
    from chatops import i18n

    text = ack.get("text") if isinstance(ack, dict) else None
    return bool(text) and text in {i18n.t(lang, "slack.working") for lang in i18n.LANGS}
