"""Long polling for one fleet bot: store first, then confirm; the two 409s told apart.

Receiving never loses a human message:

* getUpdates confirms updates by offset (every update below it is dropped by Telegram), so
  the offset moves past an update only once ``Ingest`` stored it, or found it is not a
  fleet message. A store that fails is retried in place with back-off
  (``STORE_ATTEMPTS``, ``STORE_RETRY_S``); only this bot's poller waits. If the database
  is still away, the poller asks Telegram again from the same offset a little later, and
  the update comes again (Telegram keeps updates for 24 hours).
* A redelivered update is stored once (unique chat + message id) and answered once.
* An update that fails for a reason retrying cannot fix (a bug, a chat deleted meanwhile)
  is skipped after the same attempts, with an ERROR naming it, so one bad update never
  stops a bot from receiving.

409 Conflict, told apart by Telegram's description (Bot API):

* "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to
  delete the webhook first": a webhook is still set (webhook mode earlier, another
  deployment). In polling mode the poller removes it (deleteWebhook with
  drop_pending_updates=False, so nothing pending is lost) and goes on.
* "Conflict: terminated by other getUpdates request; make sure that only one bot instance
  is running": another process polls this token. Every poller records its instance id and
  a heartbeat in ``fleet_pollers``, so the message names the other instance whenever it
  shares this database, with or without Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramConflictError,
    TelegramUnauthorizedError,
)
from aiogram.types import Update
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.runtime_models import FleetPoller
from piyasa.logs import REDACTOR

if TYPE_CHECKING:
    from piyasa.runtime.receiver import Ingest

log = logging.getLogger(__name__)

STORE_ATTEMPTS = 4  # tries per update before the poller asks Telegram for it again
STORE_RETRY_S = (0.25, 4.0)  # first and longest wait between two tries
REDELIVER_S = (1.0, 30.0)  # first and longest wait before asking for a failed update again
WEBHOOK_ACTIVE = (
    "webhook is active"  # in 409 "...can't use getUpdates method while webhook is active..."
)
ALLOWED_UPDATES = ["message", "edited_message"]


def is_transient(exc: BaseException) -> bool:
    """A database (or network) failure that the same write may survive a little later:
    connection lost or refused, lock timeout, "database is locked", pool exhausted."""
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError):
        return False
    return isinstance(
        exc,
        sa_exc.DBAPIError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError
        | OSError
        | TimeoutError
        | ConnectionError,
    )


async def store_update(
    ingest: Ingest, update: Update, on_error: Callable[[str, str], None], where: str
) -> bool:
    """Store one update, retrying with back-off; False when the database is still away.

    True also when the update was skipped for good (not transient, see the module
    docstring); each failure is reported through ``on_error``.
    """
    delay = STORE_RETRY_S[0]
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            await ingest.handle(update)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            transient = is_transient(exc)
            on_error(
                where,
                REDACTOR(
                    f"storing update {update.update_id} failed (try {attempt}/{STORE_ATTEMPTS}"
                    f"{', will retry' if transient or attempt < STORE_ATTEMPTS else ''}): "
                    f"{type(exc).__name__}: {exc}"
                )[:500],
            )
            if attempt == STORE_ATTEMPTS:
                if transient:
                    return False
                log.error(
                    "%s: update %s skipped after %d failed tries (%s)",
                    where,
                    update.update_id,
                    attempt,
                    type(exc).__name__,
                )
                return True
            await asyncio.sleep(delay)
            delay = min(STORE_RETRY_S[1], delay * 2)
            continue
        if attempt > 1:
            log.info("%s: update %s stored after %d tries", where, update.update_id, attempt)
        return True
    return False  # pragma: no cover  (the loop always returns)


class PollerRegistry:
    """``fleet_pollers``: who polls which bot, so a 409 can name the other instance."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dialect: str,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.dialect = dialect
        self.wall = wall

    async def beat(self, bot_id: int, instance: str) -> None:
        """This instance polls ``bot_id`` now."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        now = self.wall()
        stmt = insert(FleetPoller).values(bot_id=bot_id, instance=instance, heartbeat_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["bot_id"], set_={"instance": instance, "heartbeat_at": now}
        )
        async with self.sessions() as session, session.begin():
            await session.execute(stmt)

    async def holder(self, bot_id: int) -> tuple[str, float] | None:
        """(instance, seconds since its heartbeat) of the last poller of ``bot_id``."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(FleetPoller.instance, FleetPoller.heartbeat_at).where(
                        FleetPoller.bot_id == bot_id
                    )
                )
            ).first()
        if row is None:
            return None
        return row.instance, max(0.0, (self.wall() - row.heartbeat_at).total_seconds())


class Poller:
    """getUpdates long polling for one bot (see the module docstring)."""

    def __init__(
        self,
        bot_id: int,
        username: str | None,
        get_bot: Callable[[], Any],
        ingest: Ingest,
        registry: PollerRegistry,
        instance: str,
        on_error: Callable[[str, str], None],
        on_refused: Callable[[BaseException], None] = lambda _e: None,
        on_event: Callable[[str, str, str], None] = lambda _w, _k, _d: None,
        timeout: int = 20,
    ) -> None:
        """``on_refused(exc)``: Telegram refused the token (401); the fleet disables the bot.
        ``on_event(worker, kind, detail)``: things an operator should see (webhook removed).
        ``timeout``: the long poll's wait in seconds (Telegram allows up to 50)."""
        self.bot_id = bot_id
        self.username = username
        self.get_bot = get_bot
        self.ingest = ingest
        self.registry = registry
        self.instance = instance
        self.on_error = on_error
        self.on_refused = on_refused
        self.on_event = on_event
        self.timeout = timeout
        self.offset: int | None = None
        self.conflicts = 0
        self.last_conflict: str | None = None
        self.webhooks_removed = 0
        self.where = f"poll bot={bot_id}"
        self.finishing = False  # hand the bot over: no new long poll after the current one
        self.finished = asyncio.Event()  # set once no long poll of ours is open

    async def finish(self) -> None:
        """Return once the current long poll has ended and no other will start (the bot
        is being handed to another instance: its poll must not overlap ours)."""
        self.finishing = True
        await self.finished.wait()

    @property
    def who(self) -> str:
        return f"@{self.username}" if self.username else f"bot {self.bot_id}"

    def conflict_message(self, other: tuple[str, float] | None) -> str:
        if other is not None and other[0] != self.instance:
            where = f"instance {other[0]} is polling it too (seen {other[1]:.0f} s ago)"
        else:
            where = "another process (not a Piyasa instance on this database) is polling it too"
        return (
            f"409 Conflict for {self.who}: Telegram ended our getUpdates because {where}. "
            "Stop the other instance (another `piyasa up` with this token, or a script using "
            "it), or switch this fleet to webhook mode."
        )

    async def _beat(self) -> None:
        try:
            await self.registry.beat(self.bot_id, self.instance)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # naming the other instance is a nicety; receiving is not
            self.on_error(self.where, f"poller heartbeat not recorded: {type(exc).__name__}")

    async def _take(self, updates: list[Update]) -> bool:
        """Store updates in order, moving the offset past each one stored; False when one
        could not be stored yet (it and the ones after it come again)."""
        for update in updates:
            if not await store_update(self.ingest, update, self.on_error, self.where):
                return False
            self.offset = update.update_id + 1
        return True

    async def _remove_webhook(self, exc: TelegramConflictError) -> None:
        await self.get_bot().delete_webhook(drop_pending_updates=False)
        self.webhooks_removed += 1
        text = (
            f"{self.who} still had a webhook set, so Telegram refused getUpdates (409 "
            f"{exc.message}); this fleet polls, so it removed the webhook (deleteWebhook, "
            "pending updates kept) and goes on."
        )
        log.warning("%s", text)
        self.on_event(f"poll-{self.bot_id}", "webhook_removed", text)

    async def _conflict(self) -> None:
        other = None
        try:
            other = await self.registry.holder(self.bot_id)
        except Exception as exc:
            self.on_error(self.where, f"cannot read fleet_pollers: {type(exc).__name__}")
        self.conflicts += 1
        self.last_conflict = self.conflict_message(other)
        self.on_error(self.where, self.last_conflict)
        log.error("%s", self.last_conflict)

    async def run(self) -> None:
        backoff, redeliver = 1.0, REDELIVER_S[0]
        while True:
            if self.finishing:  # parked until the fleet removes this worker
                self.finished.set()
                await asyncio.Event().wait()
            try:
                await self._beat()
                if self.finishing:  # told to finish while the heartbeat waited (a busy
                    continue  # database): no new long poll, the next owner's would overlap
                updates = await self.get_bot().get_updates(
                    offset=self.offset,
                    timeout=self.timeout,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=self.timeout + 10,
                )
                backoff = 1.0
                if await self._take(updates):
                    redeliver = REDELIVER_S[0]
                    continue
                await asyncio.sleep(redeliver)  # the database is away; ask again later
                redeliver = min(REDELIVER_S[1], redeliver * 2)
            except TelegramConflictError as exc:
                if WEBHOOK_ACTIVE in (exc.message or "").lower():
                    try:
                        await self._remove_webhook(exc)
                        continue
                    except TelegramAPIError as del_exc:
                        self.on_error(self.where, f"deleteWebhook failed: {del_exc.message}")
                        await asyncio.sleep(backoff)
                        backoff = min(60.0, backoff * 2)
                        continue
                await self._conflict()
                await asyncio.sleep(min(60.0, backoff * 5))
                backoff = min(60.0, backoff * 2)
            except TelegramUnauthorizedError as exc:
                self.on_error(self.where, "401 Unauthorized: the bot token is wrong or revoked")
                self.on_refused(exc)
                await asyncio.sleep(300.0)
            except TelegramAPIError as exc:
                self.on_error(self.where, REDACTOR(f"{type(exc).__name__}: {exc.message}"))
                await asyncio.sleep(backoff)
                backoff = min(60.0, backoff * 2)
