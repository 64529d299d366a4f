"""The sandbox's in-memory world: accounts, chats, messages, files and update queues.

Everything a Bot API method or a simulated user touches lives here, so that the HTTP layer
(methods.py) and the test-facing facade (server.py) share one truth. Messages are stored as
Bot API ``Message`` dicts, exactly what clients get back.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .limits import RateLimiter, SandboxLimits

# Update types a bot gets when allowed_updates is empty or never set (Bot API docs).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
UPDATE_RETENTION = 24 * 3600.0
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
ACTIVE = frozenset({"creator", "administrator", "member"})


class Notifier:
    """Wakes every waiter on the next change; a fresh Event per generation, no polling."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def waiter(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = None


@dataclass
class BotAccount:
    id: int
    token: str
    username: str
    first_name: str
    updates: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
    poll_generation: int = 0
    parked_polls: int = 0  # getUpdates calls waiting right now
    webhook: Webhook | None = None
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    notifier: Notifier = field(default_factory=Notifier)

    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def __getitem__(self, key: str) -> Any:  # dict-like access for convenience
        return getattr(self, key)


@dataclass
class UserAccount:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None

    def user(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass
class Group:
    id: int
    title: str
    type: str  # "group" or "supergroup"
    username: str | None = None
    status: dict[int, str] = field(default_factory=dict)  # member id -> chat member status
    is_forum: bool = False  # a supergroup split into topics (see lifecycle.py)
    topics: dict[int, str] = field(default_factory=dict)  # message_thread_id -> name
    migrated_to: int | None = None  # a basic group upgraded to this supergroup
    rights: dict[int, dict[str, bool]] = field(default_factory=dict)  # admin id -> overrides

    def admin_rights_of(self, member_id: int, bot: bool = False) -> dict[str, Any]:
        """What administrator ``member_id`` may do here: the sandbox default, with the
        rights the one who promoted it left off (e.g. ``can_delete_messages: False``)."""
        return {**admin_rights(bot=bot), **self.rights.get(member_id, {})}

    def chat(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            d["username"] = self.username
        if self.is_forum:
            d["is_forum"] = True
        return d


@dataclass
class Conversation:
    """The message history of one chat as one bot sees it (private chats are per bot)."""

    chat: dict[str, Any]
    bot_id: int | None  # set for private chats
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    senders: dict[int, int | None] = field(default_factory=dict)  # message id -> bot id
    deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    # message id -> the reply keyboard / ForceReply / keyboard removal it was sent with:
    # instructions to the users' apps, never part of the Message object (whose
    # reply_markup is only ever an inline keyboard, Bot API "Message")
    client_markup: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None


@dataclass
class CallbackQuery:
    id: str
    bot_id: int
    user_id: int
    created: float
    answered: bool = False


@dataclass
class World:
    clock: Clock
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    enforce_limits: bool = True
    bots: dict[int, BotAccount] = field(default_factory=dict)
    tokens: dict[str, BotAccount] = field(default_factory=dict)
    users: dict[int, UserAccount] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    conversations: dict[tuple[int, int], Conversation] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    file_paths: dict[str, StoredFile] = field(default_factory=dict)
    queries: dict[str, CallbackQuery] = field(default_factory=dict)
    blocked: set[tuple[int, int]] = field(default_factory=set)  # (user, bot)
    started: set[tuple[int, int]] = field(default_factory=set)  # (user, bot)
    events: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    sent_log: list[tuple[tuple[int, int], int]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)
    left_chats: list[tuple[int, int]] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    notifier: Notifier = field(default_factory=Notifier)
    last_user_action: dict[int | None, int] = field(default_factory=dict)
    closing: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.limits)

    # -- time and ids -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def date(self) -> int:
        return int(self.clock.now())

    def next_id(self) -> int:
        return next(self._ids)

    # -- chats ----------------------------------------------------------------------------

    def is_group(self, chat_id: int) -> bool:
        return chat_id < 0

    def conversation(self, chat_id: int, bot_id: int | None = None) -> Conversation:
        """The group's history, or the private chat of user ``chat_id`` with ``bot_id``."""
        if self.is_group(chat_id):
            key = (chat_id, 0)
            if key not in self.conversations:
                self.conversations[key] = Conversation(self.groups[chat_id].chat(), None)
            return self.conversations[key]
        assert bot_id is not None, "a private chat needs the bot it is with"
        key = (chat_id, bot_id)
        if key not in self.conversations:
            u = self.users[chat_id]
            chat: dict[str, Any] = {"id": u.id, "type": "private", "first_name": u.first_name}
            if u.last_name:
                chat["last_name"] = u.last_name
            if u.username:
                chat["username"] = u.username
            self.conversations[key] = Conversation(chat, bot_id)
        return self.conversations[key]

    def actor_of(self, group: Group) -> dict[str, Any]:
        """Who "did" a membership change: the owner, else any human member."""
        ranked = sorted(group.status.items(), key=lambda kv: kv[1] != "creator")
        for member_id, _status in ranked:
            if member_id in self.users:
                return self.users[member_id].user()
        return {"id": 777000, "is_bot": False, "first_name": "Telegram"}

    def member_user(self, member_id: int) -> dict[str, Any]:
        if member_id in self.bots:
            return self.bots[member_id].user()
        return self.users[member_id].user()

    # -- messages -------------------------------------------------------------------------

    def store(
        self, conv: Conversation, message: dict[str, Any], bot_id: int | None
    ) -> dict[str, Any]:
        """Give ``message`` the chat's next id and record it; returns a copy for the caller."""
        message_id = conv.next_id
        conv.next_id += 1
        msg = {"message_id": message_id, "date": self.date(), "chat": dict(conv.chat), **message}
        conv.messages[message_id] = msg
        conv.senders[message_id] = bot_id
        key = (conv.chat["id"], conv.bot_id or 0)
        if bot_id is not None:
            self.sent_log.append((key, message_id))
        self.emit("message", conv, msg, bot_id=bot_id)
        return copy.deepcopy(msg)

    def emit(
        self,
        kind: str,
        conv: Conversation | None,
        message: dict[str, Any] | None = None,
        bot_id: int | None = None,
        **extra: Any,
    ) -> int:
        """Append to the event log every observer reads (wait_for_message, /sandbox/api)."""
        seq = len(self.events) + 1
        event: dict[str, Any] = {
            "seq": seq,
            "type": kind,
            "time": self.now(),
            "chat_id": conv.chat["id"] if conv else extra.pop("chat_id", None),
            "bot_id": bot_id if bot_id is not None else (conv.bot_id if conv else None),
            "from_bot": bot_id is not None,
        }
        if message is not None:
            event["message_id"] = message["message_id"]
            event["message"] = copy.deepcopy(message)
        event.update(extra)
        self.events.append(event)
        self.notifier.notify()
        return seq

    def mark_user_action(self, chat_id: int) -> None:
        seq = len(self.events)
        self.last_user_action[chat_id] = seq
        self.last_user_action[None] = seq

    # -- updates --------------------------------------------------------------------------

    def enqueue(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update for ``bot`` if it asked for that type (allowed_updates)."""
        if kind not in bot.allowed_updates:
            return
        update = {"update_id": bot.next_update_id, kind: copy.deepcopy(payload)}
        bot.next_update_id += 1
        bot.updates.append((self.now(), update))
        bot.notifier.notify()

    def prune_updates(self, bot: BotAccount) -> None:
        horizon = self.now() - UPDATE_RETENTION
        bot.updates = [
            (t, u)
            for t, u in bot.updates
            if t >= horizon and next(k for k in u if k != "update_id") in bot.allowed_updates
        ]

    def chat_member_update(
        self, bot: BotAccount, group: Group, old: str, new: str, by: int | None = None
    ) -> None:
        """``bot``'s status in ``group`` changed, done by user ``by`` (default: the owner or
        any human member, see :meth:`actor_of`)."""

        def member(status: str) -> dict[str, Any]:
            d: dict[str, Any] = {"status": status, "user": bot.user()}
            if status == "kicked":
                d["until_date"] = 0
            if status == "administrator":
                d.update(group.admin_rights_of(bot.id, bot=True))
            return d

        actor = self.users[by].user() if by is not None else self.actor_of(group)
        self.enqueue(
            bot,
            "my_chat_member",
            {
                "chat": group.chat(),
                "from": actor,
                "date": self.date(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )


def admin_rights(bot: bool = False) -> dict[str, Any]:
    """The rights a sandbox administrator has: enough to moderate, nothing exotic."""
    return {
        "can_be_edited": bot,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": False,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": False,
        "can_invite_users": True,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_pin_messages": True,
        "can_send_welcome_messages": False,
    }
