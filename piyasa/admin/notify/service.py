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
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from piyasa.admin.notify import outbox, pipeline, routing, store
from piyasa.admin.notify.delivering import SEND_TIMEOUT_S, Deliverer
from piyasa.admin.notify.events import Bus, Event, bus_of
from piyasa.admin.notify.outbox import ChannelFactory, ChatSender, RichSender, Translate
from piyasa.admin.notify.routing import Target
from piyasa.admin.notify.rules import DEFAULT_INHIBITIONS, InhibitRule, Timers
from piyasa.admin.notify.store import Item
from piyasa.db.notify_models import Notification, NotifyDelivery
from piyasa.services import Services
from piyasa.tasks import cancel_and_wait

log = logging.getLogger(__name__)
EXTRAS_KEY = "notify"
INGEST_BATCH = 50  # events stored per transaction, and per tick in a storm: what is due
# goes out between batches


def _key_only(_lang: str, key: str, /, **params: Any) -> str:
    return f"{key} {params}" if params else key


def default_channel_factory(kind: str, name: str, config: dict[str, str]) -> Any:
    from piyasa.admin.notify.channels.base import build_channel

    channel = build_channel(kind, name, config)
    if channel is None:  # the channel implementations have not landed in this build
        raise outbox.Undeliverable(f"channels of kind {kind!r} are not available")
    return channel


class NotifyService(Deliverer):
    """Events in, incidents kept, notices out (see the package docstring for the rules)."""

    def __init__(
        self,
        services: Services,
        *,
        timers: Timers | None = None,
        inhibitions: Sequence[InhibitRule] = DEFAULT_INHIBITIONS,
        clock: Callable[[], datetime] | None = None,
        translate: Translate = _key_only,
        has_key: Callable[[str], bool] | None = None,
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
        self.has_key = has_key  # whether the catalogue holds a key (recovery titles)
        self.channel_factory = channel_factory
        self.retry_s, self.max_retry_s, self.tick_s = retry_s, max_retry_s, tick_s
        self.senders: dict[str, ChatSender] = {}
        # surface -> send(chat, OutgoingMessage, lang): plain messages (the digest)
        self.text_senders: dict[str, Callable[[str, Any, str], Awaitable[None]]] = {}
        # row kind -> send(surface, chat, payload, lang): rows rendered from their payload
        # at send time (the analytics digest, registered by the chat layer)
        self.rich_senders: dict[str, RichSender] = {}
        self.bus: Bus = bus_of(services.extras)
        self.inbox: deque[Event] = deque()
        self.pending = 0  # undelivered rows, as of the last tick (for synchronous views)
        self.failing: dict[str, int] = {}  # destination -> failures in a row
        # called with (delivery row, its items) once the far end accepted it (benchmarks)
        self.observers: list[Callable[[NotifyDelivery, list[Item]], None]] = []
        self.warned: set[str] = set()
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self._sending: dict[str, asyncio.Task[int]] = {}  # destination -> its sends

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

    def wake(self) -> None:
        """Deliver what is due now rather than at the next tick (rows were queued)."""
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
            await cancel_and_wait(task)
        if self._sending:  # sends under way finish (or time out) and are recorded
            await asyncio.wait(list(self._sending.values()), timeout=SEND_TIMEOUT_S + 5)
        if self.services.extras.get(EXTRAS_KEY) is self:
            del self.services.extras[EXTRAS_KEY]
        if self.inbox:
            log.warning("notify: %d event(s) not stored at stop", len(self.inbox))

    async def _run(self) -> None:
        while True:
            ok = False
            try:
                await self.tick(wait=False)
                ok = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notify: tick failed: %s", outbox.error_text(exc))
            self._wake.clear()
            if ok and self.inbox:  # a storm: store the rest once what was due went out
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self._wake.wait()

    def now(self) -> datetime:
        return self.clock()

    def seen_at(self, event: Event) -> datetime:
        """When ``event`` happened by this service's clock: its own stamp, but never later
        than now. A producer stamps with its own clock (another instance's, a skewed one,
        the health service's wall clock); an event "from the future" would otherwise sit
        unseen until this clock caught up with it (group_wait counted from a time not yet
        reached), a silent delay as long as the skew."""
        now = self.now()
        return now if event.at is None or event.at > now else event.at

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
                        session, event, self.seen_at(event), self.timers, self.inhibitions
                    )
                    return store.item(row) if row is not None else None
            except IntegrityError:  # another instance opened the same incident first
                if attempt == 2:
                    raise
        return None

    def _urgent_first(self) -> list[Event]:
        """Take out of the queue the critical firing events no earlier queued event
        shares a fingerprint with (so their incidents see their events in order): they
        are stored ahead of a storm's backlog, as critical bypasses group_wait."""
        if not any(e.severity == "critical" and not e.resolved for e in self.inbox):
            return []
        seen: set[str] = set()
        urgent: list[Event] = []
        rest: deque[Event] = deque()
        for event in self.inbox:
            fp = event.fingerprint
            if event.severity == "critical" and not event.resolved and fp not in seen:
                urgent.append(event)
            else:
                rest.append(event)
            seen.add(fp)
        self.inbox = rest
        return urgent

    async def _store(self, batch: list[Event]) -> None:
        """Store ``batch`` in one transaction (IntegrityError: another instance opened
        one of its incidents first)."""
        async with self.services.sessions() as session, session.begin():
            shared = pipeline.Batch()
            earliest = min(self.seen_at(e) for e in batch)
            since = earliest - timedelta(seconds=self.timers.group_interval_s)
            await pipeline.prefetch(session, shared, {e.fingerprint for e in batch}, since)
            for event in batch:
                now = self.seen_at(event)
                await pipeline.ingest(session, event, now, self.timers, self.inhibitions, shared)

    async def drain(self, limit: int | None = None) -> int:
        """Store queued events, critical ones first (see :meth:`_urgent_first`), in
        transactions of ``INGEST_BATCH`` (one commit per event could not keep up with a
        storm), at most about ``limit`` of them (None: all). An event that cannot be
        stored (database down) stays queued, with all after it, for the next tick."""
        urgent = self._urgent_first()
        if urgent:  # alone in their transaction, and what they owe goes out right after
            try:
                await self._store(urgent)
            except Exception:
                self.inbox.extendleft(reversed(urgent))  # stored first next time
                raise
            if limit is not None:
                return len(urgent)
        n = len(urgent)
        while self.inbox and (limit is None or n < limit):
            batch = list(itertools.islice(self.inbox, INGEST_BATCH))
            try:
                await self._store(batch)
            except IntegrityError:  # one by one: the incident another instance opened
                for event in batch:
                    await self.ingest(event)
                    self.inbox.popleft()
                    n += 1
                continue
            for _ in batch:
                self.inbox.popleft()
            n += len(batch)
        return n

    # -- flushing: owed notices -> outbox ----------------------------------------------------

    async def flush(self) -> int:
        """Hand every notice owed by now to the outbox; returns the deliveries added."""
        now = self.now()
        added = 0
        async with self.services.sessions() as session, session.begin():
            await pipeline.release_inhibited(session, now, self.timers, self.inhibitions)
            rows = await pipeline.due(session, now)
            if not rows:
                return 0
            table = await routing.load_table(session, self.services.settings)
            groups: dict[str, list[Notification]] = {}
            for row in rows:
                if await pipeline.still_owed(session, row, now, self.inhibitions):
                    groups.setdefault(row.group_key, []).append(row)
            for members in groups.values():
                # keyed by hold too: quiet hours hold a warning, never the critical
                # flushed with it to the same destination
                per_dest: dict[tuple[str, Any], tuple[Target, list[tuple[int, int]]]] = {}
                for row in members:
                    for target in table.targets(row.labels, row.severity, now):
                        key = (target.destination, target.hold_until)
                        entry = per_dest.setdefault(key, (target, []))
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

    async def tick(self, *, wait: bool = True) -> None:
        """Store queued events, flush owed notices, deliver what is due (``wait``: and
        wait for those sends)."""
        async with self._tick_lock:
            await self.drain(None if wait else INGEST_BATCH)
            await self.flush()
            await self.deliver(wait=wait)
            if not wait and not self._sending:
                async with self.services.sessions() as session:
                    self.pending = await store.undelivered_count(session)
