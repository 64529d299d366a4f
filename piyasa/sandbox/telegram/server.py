"""The Telegram sandbox: an aiohttp app speaking the Bot API, and the facade tests drive.

The facade plays the humans (users typing, pressing buttons, blocking bots) and exposes what
the bots did (sent messages, calls, answers); the app plays Telegram's servers for real
clients such as aiogram's ``Bot``. Both share one :class:`~.state.World`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from aiohttp import web

from piyasa.sandbox.guard import SandboxGuard
from piyasa.tasks import wait_for

from . import api, lifecycle
from .clock import Clock, RealClock
from .errors import ApiError
from .formatting import detect_entities
from .limits import SandboxLimits, allowed_max
from .methods import METHODS, Call
from .params import Params, read_params
from .state import (
    ACTIVE,
    CHANNEL_BOT,
    GROUP_ANONYMOUS_BOT,
    BotAccount,
    CallbackQuery,
    Conversation,
    Group,
    UserAccount,
    World,
)
from .webhook import WebhookDelivery

TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_dumps = partial(json.dumps, ensure_ascii=False)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class TelegramSandbox:
    """A local Telegram: Bot API routes, ``/sandbox/api`` routes and a test-facing facade."""

    def __init__(
        self,
        clock: Clock | None = None,
        enforce_limits: bool = True,
        limits: SandboxLimits | None = None,
        allow_http_webhooks: bool = True,
        webhook_retry_delays: tuple[float, float] = (0.05, 5.0),
        guard: SandboxGuard | None = None,
    ) -> None:
        """``guard``: who may drive ``/sandbox/api`` (a per-run key; `piyasa up` sets one).
        Without it the API is open: in-process test servers only."""
        self.clock: Clock = clock or RealClock()
        self.guard = guard
        self.world = World(
            clock=self.clock, limits=limits or SandboxLimits(), enforce_limits=enforce_limits
        )
        self.webhooks = WebhookDelivery(self.world, allow_http_webhooks, webhook_retry_delays)
        self._runner: web.AppRunner | None = None
        self._query_seq = 0
        self._last_returned: dict[int | None, int] = {}
        self.base_url: str | None = None

    # -- read-only views ------------------------------------------------------------------

    @property
    def limits(self) -> SandboxLimits:
        return self.world.limits

    @property
    def callback_answers(self) -> list[dict[str, Any]]:
        return self.world.callback_answers

    @property
    def deleted(self) -> list[tuple[int, int]]:
        return self.world.deleted

    @property
    def left_chats(self) -> list[tuple[int, int]]:
        return self.world.left_chats

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.world.events

    # -- world setup ----------------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> BotAccount:
        """Register a bot; its id is the number before ":" in the token, as on Telegram."""
        m = TOKEN_RE.match(token)
        if not m:
            raise ValueError("a bot token looks like '<digits>:<letters, digits, _ or ->'")
        bot = BotAccount(
            id=int(m.group(1)), token=token, username=username, first_name=first_name or username
        )
        self.world.bots[bot.id] = bot
        self.world.tokens[token] = bot
        return bot

    def add_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
    ) -> UserAccount:
        user = UserAccount(user_id, first_name, username, last_name, language_code)
        self.world.users[user_id] = user
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        members: Iterable[int] = (),
        supergroup: bool = True,
        username: str | None = None,
        admins: Iterable[int] = (),
        owner_id: int | None = None,
        forum: bool = False,
    ) -> Group:
        """Create a group; bots among ``members`` are "added" and get my_chat_member.
        ``forum``: a supergroup with topics (:meth:`create_topic`)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if forum and not supergroup:
            raise ValueError("only supergroups can be forums")
        group = Group(chat_id, title, "supergroup" if supergroup else "group", username)
        group.is_forum = forum
        self.world.groups[chat_id] = group
        if owner_id is not None:
            group.status[owner_id] = "creator"
        admin_ids = set(admins)
        for member_id in members:
            if member_id != owner_id:
                self._join(
                    group, member_id, "administrator" if member_id in admin_ids else "member"
                )
        for member_id in admin_ids - set(group.status):
            self._join(group, member_id, "administrator")
        return group

    def add_member(
        self,
        chat_id: int,
        member_id: int,
        admin: bool = False,
        by: int | None = None,
        rights: dict[str, bool] | None = None,
    ) -> None:
        """Add a user or bot to a group, with the updates Telegram would send. ``by``: the
        user who added it (``from`` of the bot's my_chat_member); ``rights``: administrator
        rights that differ from the default (e.g. ``{"can_delete_messages": False}``)."""
        group = self.world.groups[chat_id]
        if rights:
            group.rights[member_id] = dict(rights)
        status = "administrator" if admin else "member"
        self._join(group, member_id, status, announce=True, by=by)

    async def start_in_group(
        self,
        chat_id: int,
        bot_id: int,
        user_id: int,
        start: str = "",
        admin: bool = False,
        rights: dict[str, bool] | None = None,
    ) -> dict[str, Any]:
        """``user_id`` opens ``t.me/<bot>?startgroup=<start>`` (with ``&admin=…`` when
        ``admin``) and picks group ``chat_id``: the bot is added by that user (as an
        administrator with the requested rights when asked), then the client sends
        ``/start@<bot> <start>`` from the user into the group (TDLib
        internalLinkTypeBotStartInGroup -> sendBotStartMessage). Returns that message."""
        self.add_member(chat_id, bot_id, admin=admin, by=user_id, rights=rights)
        text = f"/start@{self.world.bots[bot_id].username}" + (f" {start}" if start else "")
        return await self.send_user_message(user_id, chat_id, text)

    def _join(
        self,
        group: Group,
        member_id: int,
        status: str,
        announce: bool = False,
        by: int | None = None,
    ) -> None:
        w = self.world
        if member_id not in w.bots and member_id not in w.users:
            raise KeyError(f"unknown user or bot {member_id}: add_user/add_bot first")
        old = group.status.get(member_id, "left")
        group.status[member_id] = status
        if member_id in w.bots:
            w.chat_member_update(w.bots[member_id], group, old, status, by=by)
        elif announce and old not in ACTIVE:
            conv = w.conversation(group.id)
            user = w.users[member_id].user()
            msg = w.store(conv, {"from": user, "new_chat_members": [user]}, None)
            self._deliver_to_group(group, msg)

    def remove_member(self, chat_id: int, member_id: int, kick: bool = True) -> None:
        """Kick (or, with kick=False, let leave) a member; a bot gets my_chat_member."""
        w = self.world
        group = w.groups[chat_id]
        old = group.status.get(member_id, "left")
        group.status[member_id] = "kicked" if kick else "left"
        if member_id in w.bots:
            w.chat_member_update(w.bots[member_id], group, old, group.status[member_id])

    def migrate_group(self, chat_id: int, user_id: int, new_chat_id: int | None = None) -> int:
        """``user_id`` upgrades basic group ``chat_id`` to a supergroup; returns its new id.
        Member bots get the two service messages (see :mod:`.lifecycle`)."""
        new, gone, came = lifecycle.migrate(self.world, chat_id, user_id, new_chat_id)
        self.world.mark_user_action(chat_id)
        self._deliver_to_group(self.world.groups[chat_id], gone)
        self._deliver_to_group(new, came)
        return new.id

    def create_topic(
        self, chat_id: int, user_id: int, name: str, thread_id: int | None = None
    ) -> int:
        """``user_id`` opens a topic in forum ``chat_id``; returns its message_thread_id."""
        msg = lifecycle.create_topic(self.world, chat_id, user_id, name, thread_id)
        self._deliver_to_group(self.world.groups[chat_id], msg)
        return int(msg["message_thread_id"])

    def delete_group(self, chat_id: int) -> None:
        """The group is gone: every bot call naming it gets 400 "Bad Request: chat not found"
        (what Telegram answers for a deleted chat, or one the bot was never in)."""
        self.world.groups.pop(chat_id, None)

    def revoke_token(self, token: str) -> None:
        """BotFather's /revoke: the token stops working at once; every call made with it
        gets 401 "Unauthorized", as on Telegram."""
        self.world.tokens.pop(token, None)

    def set_admin(
        self,
        chat_id: int,
        member_id: int,
        admin: bool = True,
        by: int | None = None,
        rights: dict[str, bool] | None = None,
    ) -> None:
        """Promote (or demote) a member; ``rights`` as in :meth:`add_member`. A bot whose
        rights changed gets my_chat_member, as on Telegram."""
        group = self.world.groups[chat_id]
        old = group.status.get(member_id, "left")
        new = "administrator" if admin else "member"
        before = group.rights.get(member_id, {})
        if rights is not None:
            group.rights[member_id] = dict(rights)
        group.status[member_id] = new
        changed = old != new or (admin and before != group.rights.get(member_id, {}))
        if member_id in self.world.bots and changed:
            self.world.chat_member_update(self.world.bots[member_id], group, old, new, by=by)

    def block_bot(self, user_id: int, bot_id: int) -> None:
        """The user blocks the bot: sends fail with 403, the bot gets my_chat_member kicked."""
        self.world.blocked.add((user_id, bot_id))
        self._private_member_update(user_id, bot_id, "member", "kicked")

    def unblock_bot(self, user_id: int, bot_id: int) -> None:
        if (user_id, bot_id) in self.world.blocked:
            self.world.blocked.discard((user_id, bot_id))
            self._private_member_update(user_id, bot_id, "kicked", "member")

    def _private_member_update(self, user_id: int, bot_id: int, old: str, new: str) -> None:
        w = self.world
        bot = w.bots[bot_id]
        conv = w.conversation(user_id, bot_id)

        def member(status: str) -> dict[str, Any]:
            d: dict[str, Any] = {"status": status, "user": bot.user()}
            if status == "kicked":
                d["until_date"] = 0
            return d

        w.enqueue(
            bot,
            "my_chat_member",
            {
                "chat": conv.chat,
                "from": w.users[user_id].user(),
                "date": w.date(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    # -- simulated humans -----------------------------------------------------------------

    async def send_user_message(
        self,
        user_id: int,
        chat_id: int,
        text: str,
        reply_to_message_id: int | None = None,
        forward_from_user_id: int | None = None,
        sender_chat_id: int | None = None,
        bot_id: int | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A human writes ``text`` into a chat; member bots get a ``message`` update.

        For private chats ``chat_id == user_id`` and the bot is ``bot_id`` (or the only bot).
        ``message_thread_id``: the forum topic written in (None: General).
        """
        w = self.world
        user = w.users[user_id]
        thread = lifecycle.user_message_thread(w, chat_id, message_thread_id)
        if w.is_group(chat_id):
            group = w.groups.get(chat_id)
            if group is None:
                raise KeyError(f"unknown group {chat_id}")
            if group.migrated_to is not None:
                raise PermissionError(f"{chat_id} became supergroup {group.migrated_to}")
            if group.status.get(user_id) not in ACTIVE:
                raise PermissionError(f"user {user_id} is not a member of {chat_id}")
            conv = w.conversation(chat_id)
        else:
            if chat_id != user_id:
                raise ValueError("a private chat's id is the user's id")
            if bot_id is None:
                if len(w.bots) != 1:
                    raise ValueError("say which bot this private chat is with: bot_id=")
                bot_id = next(iter(w.bots))
            conv = w.conversation(user_id, bot_id)
        body: dict[str, Any] = {"from": user.user(), **thread, "text": text}
        entities = detect_entities(text)
        if entities:
            body["entities"] = entities
        if sender_chat_id is not None:
            if sender_chat_id == chat_id:
                body["sender_chat"] = dict(conv.chat)
                body["from"] = dict(GROUP_ANONYMOUS_BOT)
            else:
                body["sender_chat"] = {"id": sender_chat_id, "type": "channel", "title": "Channel"}
                body["from"] = dict(CHANNEL_BOT)
        if forward_from_user_id is not None:
            origin = w.users[forward_from_user_id].user()
            body["forward_origin"] = {"type": "user", "sender_user": origin, "date": w.date()}
        if reply_to_message_id is not None:
            replied = conv.messages.get(reply_to_message_id)
            if replied is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id}")
            replied = copy.deepcopy(replied)
            replied.pop("reply_to_message", None)
            body["reply_to_message"] = replied
        msg = w.store(conv, body, None)
        w.mark_user_action(chat_id)
        if conv.bot_id is not None:
            key = (user_id, conv.bot_id)
            if key in w.blocked:  # writing to a blocked bot (e.g. /start) unblocks it
                self.unblock_bot(user_id, conv.bot_id)
            w.started.add(key)
            w.enqueue(w.bots[conv.bot_id], "message", msg)
        else:
            self._deliver_to_group(w.groups[chat_id], msg)
        return msg

    def _deliver_to_group(self, group: Group, msg: dict[str, Any]) -> None:
        for member_id, status in group.status.items():
            if member_id in self.world.bots and status in ACTIVE:
                self.world.enqueue(self.world.bots[member_id], "message", msg)

    async def send_private(self, user_id: int, bot_id: int, text: str) -> dict[str, Any]:
        """A human writes to a bot in their private chat (this also "starts" the bot)."""
        return await self.send_user_message(user_id, user_id, text, bot_id=bot_id)

    async def press_button(
        self,
        user_id: int,
        chat_id: int,
        message_id: int,
        callback_data: str,
        forge: bool = False,
        bot_id: int | None = None,
    ) -> str:
        """A human presses an inline button; the sending bot gets a ``callback_query``.

        Raises LookupError when that message has no such button, unless ``forge`` (a client
        may send any callback_data, which is why bots must authorize every press).
        """
        w = self.world
        conv, msg = self._find_bot_message(user_id, chat_id, message_id, bot_id)
        sender = conv.senders[message_id]
        assert sender is not None
        if not forge:
            buttons = [
                b.get("callback_data")
                for row in (msg.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            ]
            if callback_data not in buttons:
                raise LookupError(
                    f"message {message_id} in chat {chat_id} has no button {callback_data!r}"
                )
        self._query_seq += 1
        qid = str(4_000_000_000_000_000_000 + sender * 1_000_000 + self._query_seq)
        w.queries[qid] = CallbackQuery(qid, sender, user_id, w.now())
        query = {
            "id": qid,
            "from": w.users[user_id].user(),
            "message": copy.deepcopy(msg),
            "chat_instance": str(abs(conv.chat["id"]) * 31 + sender),
            "data": callback_data,
        }
        w.emit("callback_query", conv, msg, bot_id=sender, callback_query=query, user_id=user_id)
        w.mark_user_action(conv.chat["id"])
        w.enqueue(w.bots[sender], "callback_query", query)
        return qid

    def _find_bot_message(
        self, user_id: int, chat_id: int, message_id: int, bot_id: int | None
    ) -> tuple[Conversation, dict[str, Any]]:
        w = self.world
        if w.is_group(chat_id):
            candidates = [w.conversation(chat_id)]
        elif bot_id is not None:
            candidates = [w.conversation(chat_id, bot_id)]
        else:
            candidates = [c for (cid, b), c in w.conversations.items() if cid == chat_id and b]
        found = [
            (c, c.messages[message_id])
            for c in candidates
            if message_id in c.messages and c.senders.get(message_id) is not None
        ]
        if not found:
            raise LookupError(f"no bot message {message_id} in chat {chat_id}")
        if len(found) > 1:
            raise LookupError("several private chats have that message id: pass bot_id=")
        return found[0]

    # -- what the bots did ----------------------------------------------------------------

    def client_markup(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The reply keyboard or ForceReply a bot sent message ``message_id`` of group
        ``chat_id`` with (what the users' apps show), or None."""
        for (cid, _bot), conv in self.world.conversations.items():
            if cid == chat_id and message_id in conv.client_markup:
                return copy.deepcopy(conv.client_markup[message_id])
        return None

    def sent(self, chat_id: int | None = None, bot_id: int | None = None) -> list[dict[str, Any]]:
        """Messages bots sent, in order, as they are now (after edits; deleted ones too)."""
        out = []
        for key, message_id in self.world.sent_log:
            conv = self.world.conversations[key]
            if chat_id is not None and conv.chat["id"] != chat_id:
                continue
            if bot_id is not None and conv.senders.get(message_id) != bot_id:
                continue
            msg = conv.messages.get(message_id) or conv.deleted.get(message_id)
            if msg is not None:
                out.append(copy.deepcopy(msg))
        return out

    def calls(self, method: str | None = None, bot_id: int | None = None) -> list[dict[str, Any]]:
        """Every Bot API call: method, bot_id, params, ok, error_code, description, time."""
        m = method.lower() if method else None
        return [
            c
            for c in self.world.calls
            if (m is None or c["method"].lower() == m) and (bot_id is None or c["bot_id"] == bot_id)
        ]

    def messages(self, chat_id: int, bot_id: int | None = None) -> list[dict[str, Any]]:
        """Everything in a chat as its members see it now (humans and bots, deletions gone)."""
        w = self.world
        if w.is_group(chat_id):
            convs = [w.conversations.get((chat_id, 0))]
        elif bot_id is not None:
            convs = [w.conversations.get((chat_id, bot_id))]
        else:
            convs = [c for (cid, b), c in w.conversations.items() if cid == chat_id and b]
            if len(convs) > 1:
                raise LookupError("this user talks to several bots: pass bot_id=")
        out: list[dict[str, Any]] = []
        for conv in convs:
            if conv is not None:
                out.extend(copy.deepcopy(m) for m in conv.messages.values())
        return out

    def mark(self) -> int:
        """The current event position, for ``wait_for_message(after=...)``."""
        return len(self.world.events)

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        chat_id: int | None = None,
        bot_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the public API
        edits: bool = False,
        after: int | None = None,
    ) -> dict[str, Any]:
        """Wait for a bot message (or edit, with ``edits``) matching the filters.

        By default only messages newer than both the last human action in that chat (or
        anywhere, without ``chat_id``) and the message the previous wait with the same
        ``chat_id`` returned are considered, so "user says X, wait for the reply" cannot
        pick up an older message, and successive waits walk forward.
        """
        w = self.world
        if after is None:
            after = max(w.last_user_action.get(chat_id, 0), self._last_returned.get(chat_id, 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        scan = after
        while True:
            waiter = w.notifier.waiter()
            for ev in w.events[scan:]:
                if not ev["from_bot"] or ev["type"] not in (
                    ("message", "edit") if edits else ("message",)
                ):
                    continue
                if chat_id is not None and ev["chat_id"] != chat_id:
                    continue
                if bot_id is not None and ev["bot_id"] != bot_id:
                    continue
                msg = copy.deepcopy(ev["message"])
                if predicate is None or predicate(msg):
                    self._last_returned[chat_id] = ev["seq"]
                    return msg
            scan = len(w.events)
            remaining = deadline - loop.time()
            if remaining <= 0 or not await _wait(waiter, remaining):
                recent = [
                    (e["chat_id"], e["message"].get("text") or e["message"].get("caption"))
                    for e in w.events[-5:]
                    if e.get("message")
                ]
                raise TimeoutError(
                    f"no bot message matched within {timeout}s (recent messages: {recent})"
                )

    async def wait_for_poller(self, bot_id: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``bot_id`` has a long-polling getUpdates parked: the bot is listening."""
        w = self.world
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiter = w.notifier.waiter()
            if w.bots[bot_id].parked_polls > 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0 or not await _wait(waiter, remaining):
                raise TimeoutError(f"bot {bot_id} did not start long polling within {timeout}s")

    # -- failure injection and limits -----------------------------------------------------

    def inject_error(
        self,
        token: str | None = None,
        method: str | None = None,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = 5,
        count: int | None = 1,
    ) -> None:
        """Make the next ``count`` matching calls fail as Telegram would (None: until cleared)."""
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
            )
        self.world.injected.append(
            {
                "token": token,
                "method": method.lower() if method else None,
                "error": ApiError(
                    error_code,
                    description,
                    {"retry_after": retry_after} if error_code == 429 and retry_after else None,
                ),
                "remaining": count,
            }
        )

    def clear_errors(self) -> None:
        self.world.injected.clear()

    def set_limits(self, limits: SandboxLimits) -> None:
        """Enforce ``limits`` from now on (Telegram tightening or loosening what it admits);
        the sends already counted in each window stay counted."""
        self.world.limits = limits
        self.world.limiter.limits = limits

    def _injected_error(self, token: str, method: str) -> ApiError | None:
        for rule in self.world.injected:
            if rule["token"] not in (None, token) or rule["method"] not in (None, method):
                continue
            if rule["remaining"] is not None:
                rule["remaining"] -= 1
                if rule["remaining"] <= 0:
                    self.world.injected.remove(rule)
            e = rule["error"]
            return ApiError(e.code, e.description, e.parameters)
        return None

    def allowed_max(self, chat_ids: Iterable[int], bot_count: int, seconds: float) -> int:
        """Most sends the enforced limits admit for ``bot_count`` bots over ``chat_ids``.

        See :func:`.limits.allowed_max`: half-open span [0, seconds), fresh limits.
        """
        chats = [(cid, self.world.is_group(cid)) for cid in chat_ids]
        return allowed_max(self.world.limits, chats, bot_count, seconds)

    # -- HTTP -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The Bot API under /bot{token}/{method}, files, and /sandbox/api; mountable."""
        app = web.Application(
            client_max_size=self.world.limits.upload_max_bytes + 1024 * 1024,
            middlewares=[_entity_too_large, *([self.guard.middleware] if self.guard else [])],
        )
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        api.add_routes(app, self)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.webhooks.close()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port) and return the base URL for clients."""
        self.world.closing = False
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = self._runner.addresses
        actual_port = sockets[0][1] if sockets else port
        self.base_url = f"http://{host}:{actual_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving: long polls return at once, webhook deliveries stop."""
        self.world.closing = True
        for bot in self.world.bots.values():
            bot.notifier.notify()
        self.world.notifier.notify()
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _bot_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        name = request.match_info["method"]
        bot = self.world.tokens.get(token)
        params = Params()
        try:
            params = await read_params(request)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            handler = METHODS.get(name.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            injected = self._injected_error(token, name.lower())
            if injected is not None:
                raise injected
            result = await handler(Call(self.world, bot, name.lower(), params, self.webhooks))
            body: dict[str, Any] = {"ok": True, "result": result}
            status = 200
        except ApiError as e:
            body, status = e.payload(), e.code
        self.world.calls.append(
            {
                "method": name,
                "bot_id": bot.id if bot else None,
                "params": params.logged(),
                "ok": body["ok"],
                "error_code": body.get("error_code"),
                "description": body.get("description"),
                "time": self.world.now(),
            }
        )
        return web.json_response(body, status=status, dumps=_dumps)

    async def _download(self, request: web.Request) -> web.Response:
        bot = self.world.tokens.get(request.match_info["token"])
        if bot is None:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        f = self.world.file_paths.get(request.match_info["path"])
        if f is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        return web.Response(body=f.data, content_type=f.mime_type or "application/octet-stream")


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    try:
        await wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


@web.middleware
async def _entity_too_large(request: web.Request, handler: Any) -> web.StreamResponse:
    """Telegram answers oversized uploads with a JSON 413, not aiohttp's text page."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(ApiError(413, "Request Entity Too Large").payload(), status=413)
