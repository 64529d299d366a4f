"""A fleet chat upgraded to a supergroup: follow it, lose nothing, send nothing twice.

Telegram gives the supergroup a new ``-100…`` id. The fleet learns it from the service
messages its pollers receive (``migrate_to_chat_id`` in the old chat,
``migrate_from_chat_id`` in the new one; Bot API, Message) or from the gate's first send
to the old id, answered 400 with ``parameters.migrate_to_chat_id`` (ResponseParameters;
aiogram's ``TelegramMigrateToChat``). Either way, at once in memory (the roster's chat and
the gate's queue take the new id, so the message that met the 400 is sent there next,
under the new chat's limits) and then in one transaction in the database: the ``chats``
row takes the new id, every undelivered ``outbox`` row (queued, claimed, sending) of the
old id moves to the new one, and ``chat_migrations`` records the move. A row is never
failed for the move and never duplicated: the send that met the 400 was refused by
Telegram, so nothing of it was delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db import chat_migrations
from piyasa.db.models import Chat
from piyasa.db.runtime_models import OutboxItem
from piyasa.runtime.roster import Roster

log = logging.getLogger(__name__)

UNDELIVERED = ("queued", "claimed", "sending")
PERSIST_RETRY_S = (0.5, 30.0)  # first and longest wait between writes of a move


@dataclass(frozen=True)
class Moved:
    """What a move changed in the database: the fleet chat row (None: not a fleet chat)
    and how many undelivered outbox rows now name the new id."""

    chat_id: int | None
    outbox_rows: int


async def move_chat(sessions: async_sessionmaker[AsyncSession], old: int, new: int) -> Moved:
    """Move fleet chat ``old`` (Telegram id) to ``new`` in one transaction (idempotent)."""
    async with sessions() as session, session.begin():
        chat = await session.scalar(select(Chat).where(Chat.telegram_id == old))
        taken = await session.scalar(select(Chat.id).where(Chat.telegram_id == new))
        if chat is not None and taken is None:
            chat.telegram_id, chat.kind = new, "supergroup"
        result = await session.execute(
            update(OutboxItem)
            .where(OutboxItem.tg_chat_id == old, OutboxItem.state.in_(UNDELIVERED))
            .values(tg_chat_id=new)
            .execution_options(synchronize_session=False)
        )
        if chat is not None or result.rowcount:
            await chat_migrations.record(session, old, new, "fleet")
    return Moved(chat.id if chat is not None else taken, int(result.rowcount or 0))


def follow_in_roster(roster: Roster, old: int, new: int) -> int | None:
    """Give the roster's chat ``old`` its new id now; its internal id, or None."""
    for chat in roster.chats.values():
        if chat.telegram_id == old:
            chat.telegram_id, chat.kind = new, "supergroup"
            return chat.id
    return None


class Follower:
    """The fleet's single place for chat moves (gate, pollers and webhooks call it)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        roster: Callable[[], Roster],
        rekey: Callable[[int, int], None],
        on_event: Callable[[str, str, str], None],
        spawn: Callable[..., None],
    ) -> None:
        self.sessions = sessions
        self.roster = roster
        self.rekey = rekey  # the gate's queues: items of ``old`` now go to ``new``
        self.on_event = on_event
        self.spawn = spawn
        self.known: dict[int, int] = {}  # old -> new, every move followed in this run
        self.unsaved: dict[int, int] = {}  # old -> new, decided but not yet written

    def migrated(self, old: int, new: int, how: str) -> None:
        """Telegram says chat ``old`` is now ``new`` (``how``: "service message", "400").

        Every bot of the chat hears it, and a draft decided before the move may still meet
        the 400: the event is told once, the database move runs again (it is idempotent
        and picks up rows queued since)."""
        if old == new:
            return
        chat_id = follow_in_roster(self.roster(), old, new)
        self.rekey(old, new)
        if old not in self.known:
            self.known[old] = new
            where = f"chat {chat_id}" if chat_id is not None else "a chat"
            text = f"{where} became supergroup {new} (was {old}; learned from {how}): following it"
            log.warning("fleet: %s", text)
            self.on_event(f"chat-{chat_id if chat_id is not None else old}", "migrated", text)
        if old not in self.unsaved:
            self.unsaved[old] = new
            self.spawn(self._persist(old, new))

    def apply(self, roster: Roster) -> None:
        """Re-apply moves not yet written to a roster just loaded from the database."""
        for old, new in self.unsaved.items():
            follow_in_roster(roster, old, new)

    async def _persist(self, old: int, new: int) -> None:
        delay = PERSIST_RETRY_S[0]
        while True:
            try:
                moved = await move_chat(self.sessions, old, new)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "fleet: cannot store that chat %s moved yet (%s); retrying in %.1fs",
                    old,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(PERSIST_RETRY_S[1], delay * 2)
                continue
            self.unsaved.pop(old, None)
            log.info(
                "fleet: chat %s -> %s stored (%d outbox rows moved)", old, new, moved.outbox_rows
            )
            return
