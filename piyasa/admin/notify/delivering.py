"""Delivering the outbox: the part of :class:`~piyasa.admin.notify.service.NotifyService`
that sends due delivery rows to chat surfaces and configured channels, records each
outcome (sent, or failed with its reason and the next attempt), and raises a warning for
a destination that keeps failing. A mixin: the service holds the state it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from piyasa.admin.notify import outbox, store
from piyasa.admin.notify.events import Event
from piyasa.admin.notify.outbox import ChannelFactory, ChatSender, RichSender, Translate
from piyasa.admin.notify.routing import Target
from piyasa.admin.notify.store import Item
from piyasa.db.notify_models import NotifyDelivery
from piyasa.services import Services

log = logging.getLogger("piyasa.admin.notify.service")  # the service's log, as before
SEND_TIMEOUT_S = 20.0
RICH_TIMEOUT_S = 60.0  # a rich row computes what it shows (figures, a chart) before posting


def critical_first(rows: list[NotifyDelivery], items: dict[int, Item]) -> list[NotifyDelivery]:
    """One destination's due rows with those telling a critical incident first (a DM
    rate-limited by Telegram then spends its budget on what matters); a row never
    overtakes an earlier one about the same incident."""
    seen: set[int] = set()
    first: list[NotifyDelivery] = []
    rest: list[NotifyDelivery] = []
    for row in rows:
        ids = set(row.notification_ids or [])
        critical = any(
            items[i].severity == "critical" and items[i].state != "resolved"
            for i in ids
            if i in items
        )
        (first if critical and not ids & seen else rest).append(row)
        seen |= ids
    return first + rest


class Deliverer:
    """Sends the outbox (mixed into ``NotifyService``, which sets these attributes)."""

    services: Services
    senders: dict[str, ChatSender]
    rich_senders: dict[str, RichSender]
    channel_factory: ChannelFactory
    translate: Translate
    observers: list[Callable[[NotifyDelivery, list[Item]], None]]
    failing: dict[str, int]
    warned: set[str]
    pending: int
    retry_s: float
    max_retry_s: float
    _wake: asyncio.Event
    _sending: dict[str, asyncio.Task[int]]

    def now(self) -> datetime:
        raise NotImplementedError

    def on_event(self, event: Event) -> None:
        raise NotImplementedError

    async def deliver(self, limit: int = 200, *, wait: bool = True) -> int:
        """Send every delivery due by now; returns how many went (started, without
        ``wait``). The due rows are claimed and their incidents read together; each
        destination gets its deliveries in order, and the destinations are sent to at
        once (one slow far end never holds back the others; one round trip per row
        could not keep up with a storm). Without ``wait`` (the background loop) the
        sends go on in tasks while events are stored, and a destination still sending
        gets its next rows when it is done."""
        now = self.now()
        targets: dict[str, tuple[str, str] | Exception] = {}
        async with self.services.sessions() as session, session.begin():
            due = [
                r
                for r in await outbox.due_rows(session, now, limit)
                if r.destination not in self._sending
            ]
            claimed = await outbox.claim_many(session, [r.id for r in due], now)
            rows = [r for r in due if r.id in claimed]
            items = await outbox.items_by_id(
                session, (i for r in rows for i in (r.notification_ids or []))
            )
            for destination in dict.fromkeys(r.destination for r in rows):
                try:
                    targets[destination] = await outbox.resolve_destination(session, destination)
                except outbox.Undeliverable as exc:
                    targets[destination] = exc
        chains: dict[str, list[NotifyDelivery]] = {}
        for row in rows:
            chains.setdefault(row.destination, []).append(row)
        chains = {d: critical_first(c, items) for d, c in chains.items()}
        if not wait:
            for destination, chain in chains.items():
                task = asyncio.create_task(self._deliver_chain(chain, items, targets[destination]))
                self._sending[destination] = task
                task.add_done_callback(lambda _t, d=destination: self._chain_done(d))
            return len(rows)
        sent = sum(
            await asyncio.gather(
                *(self._deliver_chain(c, items, targets[d]) for d, c in chains.items())
            )
        )
        async with self.services.sessions() as session:
            self.pending = await store.undelivered_count(session)
        return sent

    def _chain_done(self, destination: str) -> None:
        self._sending.pop(destination, None)
        self._wake.set()  # its next rows, and the pending count

    async def _deliver_chain(
        self,
        rows: list[NotifyDelivery],
        items: dict[int, Item],
        target: tuple[str, str] | Exception,
    ) -> int:
        """Send ``rows`` (one destination's, claimed) in order; how many went."""
        sent = 0
        for row in rows:
            its = [items[i] for i in row.notification_ids or [] if i in items]
            try:
                if isinstance(target, Exception):
                    raise target
                if row.kind not in ("notice", "test"):
                    async with asyncio.timeout(RICH_TIMEOUT_S):
                        await self._send_rich(target[0], target[1], row)
                else:
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await self._send(target[0], target[1], its, row.lang, row.kind)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(row, exc)
                continue
            for observe in self.observers:
                observe(row, its)
            await self._sent(row)
            sent += 1
        return sent

    async def _send(self, surface: str, chat: str, items: list[Item], lang: str, kind: str) -> None:
        if surface == "channel":
            async with self.services.sessions() as session:
                cfg = await outbox.channel_row(session, chat)
                config = outbox.open_config(self.services, cfg.config_encrypted)
            channel = self.channel_factory(cfg.kind, cfg.name, config)
            await channel.send(outbox.outgoing(items, lang, kind, self.translate, self.has_key))
            return
        sender = self.senders.get(surface)
        if sender is None:
            raise ConnectionError(f"{surface} is not running")
        await sender(chat, items, lang, kind)

    async def _send_rich(self, surface: str, chat: str, row: NotifyDelivery) -> None:
        """A row rendered from its payload (the analytics digest) by its kind's sender; a
        process without that sender (the CLI) fails it for a later retry elsewhere."""
        if surface == "channel":
            raise outbox.Undeliverable(f"{row.kind} goes to chats only")
        sender = self.rich_senders.get(row.kind)
        if sender is None:
            raise ConnectionError(f"no {row.kind} sender in this process")
        await sender(surface, chat, dict(row.payload or {}), row.lang)

    async def _sent(self, row: NotifyDelivery) -> None:
        async with self.services.sessions() as session, session.begin():
            await session.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id == row.id)
                .values(
                    state="sent",
                    sent_at=self.now(),
                    next_attempt_at=None,
                    attempts=NotifyDelivery.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
        self.failing.pop(row.destination, None)
        if row.destination in self.warned:
            self.warned.discard(row.destination)
            self.on_event(self._failing_event(row.destination, "", resolved=True))

    async def _failed(self, row: NotifyDelivery, exc: BaseException) -> None:
        reason = outbox.error_text(exc)
        log.warning("notify: delivery %d to %s failed: %s", row.id, row.destination, reason)
        now = self.now()
        async with self.services.sessions() as session, session.begin():
            fresh = await session.get(NotifyDelivery, row.id)
            if fresh is None:
                return
            fresh.attempts += 1
            fresh.state, fresh.last_error = "failed", reason
            if outbox.permanent(exc):
                fresh.next_attempt_at = None
            else:
                wait = outbox.backoff_s(fresh.attempts, self.retry_s, self.max_retry_s)
                wait = max(wait, outbox.retry_after(exc) or 0.0)
                fresh.next_attempt_at = now + timedelta(seconds=wait)
        n = self.failing[row.destination] = self.failing.get(row.destination, 0) + 1
        if n >= outbox.FAILING_AFTER and row.destination not in self.warned:
            self.warned.add(row.destination)
            self.on_event(self._failing_event(row.destination, reason))

    def _failing_event(self, destination: str, reason: str, *, resolved: bool = False) -> Event:
        return Event(
            source="notify",
            key=f"delivery:{destination}",
            severity="warning",
            title_key="alerts.notify.failing.title",
            body_key="alerts.notify.failing.body",
            params={"destination": destination, "error": reason},
            labels={"destination": destination},
            resolved=resolved,
        )

    async def retry_now(self) -> int:
        """Make every failed (not permanently) delivery due now; how many."""
        now = self.now()
        async with self.services.sessions() as session, session.begin():
            rows = await session.scalars(
                select(NotifyDelivery).where(
                    NotifyDelivery.state == "failed", NotifyDelivery.next_attempt_at.is_not(None)
                )
            )
            n = 0
            for row in rows:
                row.next_attempt_at, n = now, n + 1
        self._wake.set()
        return n

    async def send_test(self, destination: str, lang: str) -> None:
        """Queue a test notice to ``destination`` (delivered by the next tick)."""
        now = self.now()
        async with self.services.sessions() as session, session.begin():
            key = f"{destination}|test|{now.isoformat()}"
            row = outbox.enqueue(session, Target(destination, lang), "test", [], now)
            row.dedupe_key = outbox.dedupe_key(key, "test", [])
        self._wake.set()
