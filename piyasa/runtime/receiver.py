"""Receiving: long polling per fleet bot (default, ``piyasa.runtime.intake``) or webhooks
with a secret token.

Every fleet bot in a group may see the same human message; it is stored once (unique
chat + Telegram message id, plus a small in-memory memo so most duplicates never reach
the database). The memo only learns a message once the database has it, so a store that
failed is not mistaken for a duplicate when the update comes again. A message that
replies to or @mentions a fleet bot becomes a reply request the planner answers before
new chatter, once: if a store raised after its commit went through (the answer was lost
on the way), the next delivery finds the row and hands the unanswered request over then.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import Message as TgMessage
from aiogram.types import Update
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.base import utcnow
from piyasa.db.models import Message
from piyasa.db.runtime_models import ReplyRequest
from piyasa.runtime.intake import Poller, store_update
from piyasa.runtime.planner import PendingReply
from piyasa.runtime.roster import ChatInfo, Roster

__all__ = ["Ingest", "Poller", "WebhookReceiver", "webhook_secret"]

log = logging.getLogger(__name__)
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_secret(secret_key: str, bot_id: int) -> str:
    """Per-bot secret_token (1-256 chars of A-Za-z0-9_-), derived, never stored."""
    return hmac.new(secret_key.encode(), f"webhook:{bot_id}".encode(), hashlib.sha256).hexdigest()


class Ingest:
    """Turns Telegram updates into stored human messages and reply requests."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dialect: str,
        roster: Callable[[], Roster],
        on_human: Callable[[int, str, str], None],
        on_reply: Callable[[PendingReply], None],
        memo_size: int = 20_000,
        on_migrated: Callable[[int, int], None] = lambda _old, _new: None,
    ) -> None:
        """``on_migrated(old, new)``: a fleet chat became a supergroup (its service
        message; ``piyasa.runtime.migration``)."""
        self.sessions = sessions
        self.on_migrated = on_migrated
        self.dialect = dialect
        self.roster = roster
        self.on_human = on_human
        self.on_reply = on_reply
        self._memo: OrderedDict[tuple[int, int], None] = OrderedDict()  # stored for sure
        self._memo_size = memo_size
        # one store at a time per message: the other bots' copies wait, then hit the memo
        self._locks: dict[tuple[int, int], tuple[asyncio.Lock, list[int]]] = {}
        self._unsure: OrderedDict[tuple[int, int], None] = OrderedDict()  # a store raised
        self.stored = 0
        self.duplicates = 0

    def _remember(self, key: tuple[int, int]) -> None:
        self._memo[key] = None
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)

    def _targets(self, msg: TgMessage, roster: Roster) -> list[int]:
        by_tg = {b.telegram_id: b.id for b in roster.bots.values() if b.telegram_id}
        by_name = {(b.username or "").lower(): b.id for b in roster.bots.values() if b.username}
        targets: list[int] = []
        reply = msg.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id in by_tg:
            targets.append(by_tg[reply.from_user.id])
        text = msg.text or msg.caption or ""
        for name in re.findall(r"@([A-Za-z0-9_]{3,64})", text):
            bot_id = by_name.get(name.lower())
            if bot_id is not None and bot_id not in targets:
                targets.append(bot_id)
        return targets

    async def handle(self, update: Update) -> bool:
        """Store a human message once; True when this call stored it.

        Raises when the database did not take it: nothing is remembered then, and the
        caller must not confirm the update to Telegram (it comes again).
        """
        msg = update.message or update.edited_message
        if msg is None or msg.from_user is None:
            return False
        if msg.migrate_to_chat_id or msg.migrate_from_chat_id:  # upgraded to a supergroup
            old = msg.migrate_from_chat_id or msg.chat.id
            new = msg.migrate_to_chat_id or msg.chat.id
            if old in self.roster().by_tg_chat():  # not followed yet (every bot hears it)
                self.on_migrated(old, new)
            return False
        if not (msg.text or msg.caption):
            return False  # a service message (joins, pins...) or media without words
        roster = self.roster()
        if msg.from_user.is_bot and any(
            b.telegram_id == msg.from_user.id for b in roster.bots.values()
        ):
            return False  # our own fleet
        chat = roster.by_tg_chat().get(msg.chat.id)
        if chat is None:
            return False  # not a fleet chat
        key = (chat.id, msg.message_id)
        if key in self._memo:
            self.duplicates += 1
            return False
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                if key in self._memo:
                    self.duplicates += 1
                    return False
                try:
                    return await self._store(key, msg, chat, roster)
                except BaseException:
                    self._unsure[key] = None
                    while len(self._unsure) > self._memo_size:
                        self._unsure.popitem(last=False)
                    raise
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    async def _store(
        self, key: tuple[int, int], msg: TgMessage, chat: ChatInfo, roster: Roster
    ) -> bool:
        assert msg.from_user is not None
        text = msg.text or msg.caption or ""
        name = msg.from_user.full_name or msg.from_user.username or str(msg.from_user.id)
        values = {
            "chat_id": chat.id,
            "author_kind": "human",
            "human_user_id": msg.from_user.id,
            "human_name": name[:128],
            "telegram_message_id": msg.message_id,
            "reply_to_message_id": msg.reply_to_message.message_id
            if msg.reply_to_message
            else None,
            "text": text,
            "created_at": utcnow(),
            "status": "received",
        }
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(Message)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["chat_id", "telegram_message_id"])
            .returning(Message.id)
        )
        targets = self._targets(msg, roster)
        unsure = key in self._unsure
        request: ReplyRequest | None = None
        async with self.sessions() as session, session.begin():
            message_id = (await session.execute(stmt)).scalar_one_or_none()
            if message_id is not None and targets:
                request = ReplyRequest(
                    message_id=message_id, chat_id=chat.id, target_bot_id=targets[0]
                )
                session.add(request)
                await session.flush()
            elif message_id is None and unsure and targets:
                # An earlier try here raised after its commit: its request was never handed.
                request = await session.scalar(
                    select(ReplyRequest)
                    .join(Message, Message.id == ReplyRequest.message_id)
                    .where(
                        Message.chat_id == chat.id,
                        Message.telegram_message_id == msg.message_id,
                        ReplyRequest.answered_at.is_(None),
                    )
                )
        self._remember(key)
        self._unsure.pop(key, None)
        if message_id is None and not unsure:
            self.duplicates += 1
            return False
        self.stored += 1
        self.on_human(chat.id, name, text)
        if request is not None:
            self.on_reply(
                PendingReply(
                    request_id=request.id,
                    chat_id=chat.id,
                    target_bot_id=request.target_bot_id,
                    tg_message_id=msg.message_id,
                    human_name=name,
                    text=text,
                )
            )
        return True

    async def pending_replies(self, max_age_s: float) -> list[PendingReply]:
        """Unanswered reply requests (e.g. after a restart)."""
        from datetime import timedelta

        since = utcnow() - timedelta(seconds=max_age_s)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(ReplyRequest, Message)
                    .join(Message, Message.id == ReplyRequest.message_id)
                    .where(ReplyRequest.answered_at.is_(None), ReplyRequest.created_at >= since)
                    .order_by(ReplyRequest.id)
                )
            ).all()
        return [
            PendingReply(
                request_id=rr.id,
                chat_id=rr.chat_id,
                target_bot_id=rr.target_bot_id,
                tg_message_id=int(m.telegram_message_id or 0),
                human_name=m.human_name or "",
                text=m.text,
            )
            for rr, m in rows
        ]


class WebhookReceiver:
    """Webhook mode: ``setWebhook`` with a per-bot secret_token, and the aiohttp handler.

    Mount ``handler`` at ``/telegram/webhook/{bot_id}``; requests without the right
    ``X-Telegram-Bot-Api-Secret-Token`` get 401 and are not processed.
    """

    def __init__(
        self,
        secret_key: str,
        ingest: Ingest,
        get_bot: Callable[[int], Any],
        on_error: Callable[[str, str], None] = lambda _w, _e: None,
    ) -> None:
        self.secret_key = secret_key
        self.ingest = ingest
        self.get_bot = get_bot
        self.on_error = on_error

    async def register(self, bot_id: int, base_url: str) -> None:
        await self.get_bot(bot_id).set_webhook(
            url=f"{base_url.rstrip('/')}/telegram/webhook/{bot_id}",
            secret_token=webhook_secret(self.secret_key, bot_id),
            allowed_updates=["message", "edited_message"],
        )

    async def handler(self, request: web.Request) -> web.Response:
        try:
            bot_id = int(request.match_info.get("bot_id", ""))
        except ValueError:
            return web.Response(status=404)
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
        if not hmac.compare_digest(given, webhook_secret(self.secret_key, bot_id)):
            return web.Response(status=401, text="bad secret token")
        try:
            data = await request.json()
            update = Update.model_validate(data, context={"bot": self.get_bot(bot_id)})
        except Exception:
            return web.Response(status=400, text="not a Telegram update")
        if not await store_update(self.ingest, update, self.on_error, f"webhook bot={bot_id}"):
            # not stored: an error status makes Telegram deliver it again later
            return web.Response(status=503, text="not stored yet; deliver again")
        return web.Response(status=200)


Handler = Callable[[web.Request], Awaitable[web.Response]]
