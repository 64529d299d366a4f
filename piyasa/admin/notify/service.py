"""The notification service: takes events off the bus, keeps incidents, flushes owed
notices into the outbox and delivers it. One per process that delivers (``piyasa up``),
in ``services.extras["notify"]``.

Everything it decides is in the database before anything is sent, so a restart (a new
service on the same database) neither repeats what went out nor forgets what did not:
timers live in ``notifications.due_at``, undelivered notices in ``notify_deliveries``.
Time comes from ``clock`` (aware UTC datetimes); tests move it and call :meth:`tick`
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from piyasa.admin.notify import outbox, pipeline, routing, store
from piyasa.admin.notify.events import Bus, Event, bus_of
from piyasa.admin.notify.outbox import ChannelFactory, ChatSender, Translate
from piyasa.admin.notify.routing import Target
from piyasa.admin.notify.rules import DEFAULT_INHIBITIONS, InhibitRule, Timers
from piyasa.admin.notify.store import Item
from piyasa.db.notify_models import Notification, NotifyDelivery
from piyasa.services import Services

log = logging.getLogger(__name__)
EXTRAS_KEY = "notify"
SEND_TIMEOUT_S = 20.0


def _key_only(_lang: str, key: str, /, **params: Any) -> str:
    return f"{key} {params}" if params else key


def default_channel_factory(kind: str, name: str, config: dict[str, str]) -> Any:
    from piyasa.admin.notify.channels.base import build_channel

    channel = build_channel(kind, name, config)
    if channel is None:  # the channel implementations have not landed in this build
        raise outbox.Undeliverable(f"channels of kind {kind!r} are not available")
    return channel


class NotifyService:
    """Events in, incidents kept, notices out (see the package docstring for the rules)."""

    def __init__(
        self,
        services: Services,
        *,
        timers: Timers | None = None,
        inhibitions: Sequence[InhibitRule] = DEFAULT_INHIBITIONS,
        clock: Callable[[], datetime] | None = None,
        translate: Translate = _key_only,
        channel_factory: ChannelFactory = default_channel_factory,
        retry_s: float = 2.0,
        max_retry_s: float = 600.0,
        tick_s: float = 1.0,
    ) -> None:
        self.services = services
        self.timers = timers or Timers.from_env(services.settings.extra)
        self.inhibitions = tuple(inhibitions)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.translate = translate
        self.channel_factory = channel_factory
        self.retry_s, self.max_retry_s, self.tick_s = retry_s, max_retry_s, tick_s
        self.senders: dict[str, ChatSender] = {}
        # surface -> send(chat, OutgoingMessage, lang): plain messages (the digest)
        self.text_senders: dict[str, Callable[[str, Any, str], Awaitable[None]]] = {}
        self.bus: Bus = bus_of(services.extras)
        self.inbox: deque[Event] = deque()
        self.pending = 0  # undelivered rows, as of the last tick (for synchronous views)
        self.failing: dict[str, int] = {}  # destination -> failures in a row
        self.warned: set[str] = set()
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()

    # -- wiring ---------------------------------------------------------------------------

    def add_sender(
        self,
        surface: str,
        sender: ChatSender,
        text: Callable[[str, Any, str], Awaitable[None]] | None = None,
    ) -> None:
        """``surface`` ("telegram", "slack") delivers through ``sender`` from now on, and
        plain messages (an ``OutgoingMessage``: the digest) through ``text``."""
        self.senders[surface] = sender
        if text is not None:
            self.text_senders[surface] = text
        self._wake.set()

    async def start(self, *, background: bool = True) -> None:
        """Subscribe to the bus; with ``background``, tick every ``tick_s`` and on events."""
        if self._unsubscribe is None:
            self._unsubscribe = self.bus.subscribe(self.on_event)
        self.services.extras[EXTRAS_KEY] = self
        if background and self._task is None:
            self._task = asyncio.create_task(self._run(), name="notify")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.services.extras.get(EXTRAS_KEY) is self:
            del self.services.extras[EXTRAS_KEY]
        if self.inbox:
            log.warning("notify: %d event(s) not stored at stop", len(self.inbox))

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify: tick failed: %s", outbox.error_text(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self._wake.wait()

    def now(self) -> datetime:
        return self.clock()

    # -- events ---------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The bus calls this; the event is stored on the service's own task."""
        self.inbox.append(event)
        self._wake.set()

    async def ingest(self, event: Event) -> Item | None:
        """Store ``event`` now (its incident, its timers); returns the incident."""
        for attempt in range(3):
            try:
                async with self.services.sessions() as session, session.begin():
                    row = await pipeline.ingest(
                        session, event, event.at or self.now(), self.timers, self.inhibitions
                    )
                    return store.item(row) if row is not None else None
            except IntegrityError:  # another instance opened the same incident first
                if attempt == 2:
                    raise
        return None

    async def drain(self) -> int:
        """Store every queued event, in order; one that cannot be stored (database down)
        stays queued, with all after it, for the next tick."""
        n = 0
        while self.inbox:
            await self.ingest(self.inbox[0])
            self.inbox.popleft()
            n += 1
        return n

    # -- flushing: owed notices -> outbox ----------------------------------------------------

    async def flush(self) -> int:
        """Hand every notice owed by now to the outbox; returns the deliveries added."""
        now = self.now()
        added = 0
        async with self.services.sessions() as session, session.begin():
            rows = await pipeline.due(session, now)
            if not rows:
                return 0
            table = await routing.load_table(session, self.services.settings)
            groups: dict[str, list[Notification]] = {}
            for row in rows:
                if await pipeline.still_owed(session, row, now, self.inhibitions):
                    groups.setdefault(row.group_key, []).append(row)
            for members in groups.values():
                per_dest: dict[str, tuple[Target, list[tuple[int, int]]]] = {}
                for row in members:
                    for target in table.targets(row.labels, row.severity, now):
                        entry = per_dest.setdefault(target.destination, (target, []))
                        entry[1].append((row.id, row.notify_seq + 1))
                if not per_dest:  # nowhere to go: kept visible as undelivered
                    ids = [(r.id, r.notify_seq + 1) for r in members]
                    lost = outbox.enqueue(
                        session, Target("nowhere", self.services.settings.lang), "notice", ids, now
                    )
                    lost.state, lost.next_attempt_at = "failed", None
                    lost.last_error = "no destination: no admin chat, Slack channel or route"
                    added += 1
                for target, ids in per_dest.values():
                    outbox.enqueue(session, target, "notice", ids, now)
                    added += 1
                for row in members:
                    pipeline.mark_told(row, now, self.timers)
        return added

    # -- delivering ------------------------------------------------------------------------

    async def deliver(self, limit: int = 200) -> int:
        """Send every delivery due by now (one at a time); returns how many went."""
        now = self.now()
        async with self.services.sessions() as session:
            rows = await outbox.due_rows(session, now, limit)
        sent = 0
        for row in rows:
            async with self.services.sessions() as session, session.begin():
                if not await outbox.claim(session, row.id, now):
                    continue
            try:
                async with self.services.sessions() as session:
                    items = await outbox.items_of(session, list(row.notification_ids or []))
                    surface, chat = await outbox.resolve_destination(session, row.destination)
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self._send(surface, chat, items, row.lang, row.kind)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(row, exc)
                continue
            await self._sent(row)
            sent += 1
        async with self.services.sessions() as session:
            self.pending = await store.undelivered_count(session)
        return sent

    async def _send(self, surface: str, chat: str, items: list[Item], lang: str, kind: str) -> None:
        if surface == "channel":
            async with self.services.sessions() as session:
                cfg = await outbox.channel_row(session, chat)
                config = outbox.open_config(self.services, cfg.config_encrypted)
            channel = self.channel_factory(cfg.kind, cfg.name, config)
            await channel.send(outbox.outgoing(items, lang, kind, self.translate))
            return
        sender = self.senders.get(surface)
        if sender is None:
            raise ConnectionError(f"{surface} is not running")
        await sender(chat, items, lang, kind)

    async def _sent(self, row: NotifyDelivery) -> None:
        async with self.services.sessions() as session, session.begin():
            fresh = await session.get(NotifyDelivery, row.id)
            if fresh is not None:
                fresh.state, fresh.sent_at, fresh.next_attempt_at = "sent", self.now(), None
                fresh.attempts += 1
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

    async def tick(self) -> None:
        """Store queued events, flush owed notices, deliver what is due."""
        async with self._tick_lock:
            await self.drain()
            await self.flush()
            await self.deliver()
