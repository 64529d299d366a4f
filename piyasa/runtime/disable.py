"""When Telegram says a fleet bot cannot write somewhere any more, stop paying for it.

Refusals that retrying does not fix (Bot API error descriptions as Telegram words them;
matched on the error code first and the wording second, since descriptions are not a
stable contract):

- 403 "Forbidden: bot was kicked from the supergroup chat" (or "... group chat", "...
  channel chat"), "Forbidden: bot is not a member of the supergroup chat", "Forbidden:
  the group chat was deleted", "Forbidden: bot was blocked by the user": this bot, this
  chat.
- 400 "Bad Request: chat not found" (the chat is gone, or the bot was never in it),
  "Bad Request: group chat was deactivated", "Bad Request: not enough rights to send text
  messages to the chat": this bot, this chat.
- 401 "Unauthorized": the token was revoked (BotFather /revoke) or is wrong: the whole bot.

A bot whose schedule does not validate (``piyasa.runtime.schedule``) is disabled the same
way, alone: the rest of the fleet keeps chatting.

Disabling takes effect in memory at once (the planner stops choosing the pair, so no LLM
call is paid for it), is written to ``bot_chats``/``bots`` with the reason (retried with
back-off while the database is away), logged at WARNING, recorded as a ``worker_events``
row, and listed in the fleet's snapshot, which the health service's runtime component
shows ("bot @x disabled: kicked from chat Y"). The gate fails the pair's undelivered
messages with the reason instead of sending them: visible, never silently dropped. It
holds until an operator re-enables it (:meth:`Disabler.enable`, ``FleetControl.enable``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramUnauthorizedError,
)
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.models import Bot
from piyasa.db.runtime_models import BotChat
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster

log = logging.getLogger(__name__)

PERSIST_RETRY_S = (0.5, 30.0)  # first and longest wait between writes of a disable


@dataclass(frozen=True)
class Refusal:
    """What a Telegram error means for the fleet: the whole bot, or the bot in one chat."""

    whole_bot: bool
    reason: str


def classify_refusal(exc: BaseException, chat: str) -> Refusal | None:
    """A permanent refusal (see the module docstring), or None for anything retrying or a
    different message could fix (429, 5xx, network, "message is too long", migrations)."""
    text = str(getattr(exc, "message", "") or exc)
    low = text.lower()
    if isinstance(exc, TelegramUnauthorizedError):
        return Refusal(True, f"Telegram refused its token, revoked or wrong (401 {text})")
    if isinstance(exc, TelegramForbiddenError):
        if "kicked" in low:
            what = f"kicked from chat {chat}"
        elif "deleted" in low or "deactivated" in low:
            what = f"chat {chat} was deleted"
        elif "not a member" in low:
            what = f"not a member of chat {chat}"
        elif "blocked" in low:
            what = f"blocked by the user of chat {chat}"
        else:
            what = f"not allowed to write in chat {chat}"
        return Refusal(False, f"{what} (403 {text})")
    if isinstance(exc, TelegramBadRequest) and not isinstance(exc, TelegramMigrateToChat):
        if "chat not found" in low:
            what = f"chat {chat} not found: deleted, or the bot is not in it"
        elif "deactivated" in low:
            what = f"chat {chat} was deactivated"
        elif "not enough rights" in low or "have no rights" in low:
            what = f"no right to send messages in chat {chat}"
        else:
            return None
        return Refusal(False, f"{what} (400 {text})")
    return None


def bot_label(bot: BotInfo | None, bot_id: int) -> str:
    if bot is not None and bot.username:
        return f"@{bot.username}"
    return bot.name if bot is not None else f"bot {bot_id}"


def chat_label(chat: ChatInfo | None, fallback: int | None = None) -> str:
    if chat is not None:
        return chat.title or str(chat.telegram_id)
    return str(fallback) if fallback is not None else "?"


Key = tuple[int, int | None]  # (bot id, chat id), chat None = the whole bot


def disabled_worker(bot_id: int, chat_id: int | None) -> str:
    """The ``worker`` a disable (and its re-enable) is told under: ``bot-7`` for the whole
    bot, ``bot-7/chat-3`` for one pair (database ids), so each is its own incident."""
    return f"bot-{bot_id}" if chat_id is None else f"bot-{bot_id}/chat-{chat_id}"


class Disabler:
    """Disables and re-enables bots and pairs; the fleet's single place for it."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        roster: Callable[[], Roster],
        on_event: Callable[[str, str, str], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        wall: Callable[[], datetime],
        on_bot_disabled: Callable[[int], None] = lambda _b: None,
    ) -> None:
        self.sessions = sessions
        self.roster = roster
        self.on_event = on_event
        self.spawn = spawn
        self.wall = wall
        self.on_bot_disabled = on_bot_disabled
        self.unsaved: dict[Key, tuple[str, datetime]] = {}  # decided, not yet written

    # ---- reading

    def why(self, bot_id: int, chat_id: int) -> str | None:
        """Why nothing of this bot may be generated or sent in this chat, or None."""
        roster = self.roster()
        bot = roster.bots.get(bot_id)
        if bot is not None and not bot.enabled and bot.disabled_reason:
            return f"not sent: bot disabled: {bot.disabled_reason}"
        if bot is not None and not bot.enabled:  # an operator's "stop": nothing more goes out
            return "not sent: bot disabled by an operator"
        pair = roster.disabled_pairs.get((bot_id, chat_id))
        return f"not sent: bot disabled in this chat: {pair.reason}" if pair else None

    def describe(self) -> list[dict[str, Any]]:
        """Every bot and pair the fleet disabled, for the snapshot (oldest first)."""
        roster = self.roster()
        out: list[dict[str, Any]] = []
        for bot in roster.bots.values():
            if not bot.enabled and bot.disabled_reason:
                out.append(self._entry(roster, bot.id, None, bot.disabled_reason, bot.disabled_at))
        for (bot_id, chat_id), pair in roster.disabled_pairs.items():
            out.append(self._entry(roster, bot_id, chat_id, pair.reason, pair.at))
        return sorted(out, key=lambda e: e["at"] or "")

    def _entry(
        self, roster: Roster, bot_id: int, chat_id: int | None, reason: str, at: datetime | None
    ) -> dict[str, Any]:
        chat = roster.chats.get(chat_id) if chat_id is not None else None
        bot = bot_label(roster.bots.get(bot_id), bot_id)
        return {
            "bot_id": bot_id,
            "bot": bot,
            "chat_id": chat_id,
            "chat": chat_label(chat, chat_id) if chat_id is not None else None,
            "reason": reason,
            # the fleet's words; Telegram's quoted description stays in "reason"
            "summary": f"bot {bot} disabled: {reason.split(' (', 1)[0]}",
            "at": at.isoformat() if at else None,
        }

    # ---- disabling

    def refused(self, bot_id: int, chat_id: int | None, exc: BaseException) -> bool:
        """Telegram refused a call of this bot (in this chat); disable what it means."""
        roster = self.roster()
        chat = roster.chats.get(chat_id) if chat_id is not None else None
        refusal = classify_refusal(exc, chat_label(chat, chat_id))
        if refusal is None:
            return False
        if refusal.whole_bot or chat_id is None:
            return self.disable_bot(bot_id, refusal.reason)
        return self.disable_pair(bot_id, chat_id, refusal.reason)

    def disable_pair(self, bot_id: int, chat_id: int, reason: str) -> bool:
        """Stop this bot in this chat; False when it already was."""
        roster = self.roster()
        if not roster.pair_ok(bot_id, chat_id):
            return False
        at = self.wall()
        roster.disable_pair(bot_id, chat_id, reason, at)
        self._decided((bot_id, chat_id), reason, at)
        return True

    def disable_bot(self, bot_id: int, reason: str) -> bool:
        """Stop this bot everywhere; False when the fleet already had."""
        roster = self.roster()
        bot = roster.bots.get(bot_id)
        fresh = roster.invalid.pop(bot_id, None) is not None and (bot_id, None) not in self.unsaved
        if bot is None or (not bot.enabled and bot.disabled_reason and not fresh):
            return False
        at = self.wall()
        roster.disable_bot(bot_id, reason, at)
        self._decided((bot_id, None), reason, at)
        self.on_bot_disabled(bot_id)
        return True

    def _decided(self, key: Key, reason: str, at: datetime) -> None:
        roster = self.roster()
        bot_id, chat_id = key
        who = bot_label(roster.bots.get(bot_id), bot_id)
        where = "" if chat_id is None else f" in chat {chat_label(roster.chats.get(chat_id))}"
        text = f"bot {who} disabled{where}: {reason}. Re-enable it once fixed."
        log.warning("fleet: %s", text)
        self.on_event(disabled_worker(bot_id, chat_id), "disabled", text)
        self.unsaved[key] = (reason, at)
        self.spawn(self._persist(key, reason, at))

    def apply(self, roster: Roster) -> None:
        """Re-apply disables not yet written to a roster just loaded from the database."""
        for (bot_id, chat_id), (reason, at) in self.unsaved.items():
            if chat_id is None:
                roster.disable_bot(bot_id, reason, at)
            else:
                roster.disable_pair(bot_id, chat_id, reason, at)

    async def _persist(self, key: Key, reason: str, at: datetime) -> None:
        delay = PERSIST_RETRY_S[0]
        while self.unsaved.get(key) == (reason, at):
            try:
                await self._write(key, reason, at)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "fleet: cannot record that bot %s is disabled yet (%s); retrying in %.1fs",
                    key[0],
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(PERSIST_RETRY_S[1], delay * 2)
                continue
            if self.unsaved.get(key) == (reason, at):
                del self.unsaved[key]
            return

    async def _write(self, key: Key, reason: str, at: datetime) -> None:
        bot_id, chat_id = key
        async with self.sessions() as session, session.begin():
            if chat_id is None:
                await session.execute(
                    update(Bot)
                    .where(Bot.id == bot_id)
                    .values(enabled=False, disabled_reason=reason, disabled_at=at)
                )
                return
            row = await session.scalar(
                select(BotChat).where(BotChat.bot_id == bot_id, BotChat.chat_id == chat_id)
            )
            if row is None:  # a chat with every bot: record the disable, not a member list
                session.add(
                    BotChat(
                        bot_id=bot_id,
                        chat_id=chat_id,
                        enabled=True,
                        listed=False,
                        disabled_reason=reason,
                        disabled_at=at,
                    )
                )
            else:
                row.disabled_reason, row.disabled_at = reason, at

    # ---- re-enabling

    async def enable(
        self, bot_id: int, chat_id: int | None = None, actor: str = "operator"
    ) -> bool:
        """An operator's "fixed, try again": clear the disable (the roster reloads after).

        ``chat_id`` None re-enables the bot itself (and so a bot disabled by an operator
        too); pairs the fleet disabled stay so until re-enabled one by one.
        """
        key: Key = (bot_id, chat_id)
        self.unsaved.pop(key, None)
        async with self.sessions() as session, session.begin():
            if chat_id is None:
                found = await session.execute(
                    update(Bot)
                    .where(Bot.id == bot_id)
                    .values(enabled=True, disabled_reason=None, disabled_at=None)
                )
                changed = bool(found.rowcount)
            else:
                row = await session.scalar(
                    select(BotChat).where(BotChat.bot_id == bot_id, BotChat.chat_id == chat_id)
                )
                changed = row is not None and row.disabled_reason is not None
                if row is not None and not row.listed:
                    await session.execute(delete(BotChat).where(BotChat.id == row.id))
                elif row is not None:
                    row.disabled_reason, row.disabled_at = None, None
        if changed:
            where = "" if chat_id is None else f" in chat {chat_id}"
            self.on_event(
                disabled_worker(bot_id, chat_id),
                "enabled",
                f"bot {bot_id} re-enabled{where} by {actor}",
            )
        return changed
