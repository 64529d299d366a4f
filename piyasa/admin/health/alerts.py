"""Health alerts, until the notification system exists.

Rules: a component that turns critical opens an alert (posted once); it stays open while
the component is critical, warning or unknown — so a flapping critical/warning/critical
posts nothing new — and closes once the component has been healthy for
``resolve_after_s`` (two refresh rounds by default), which posts one "resolved" notice.
The hold is a second line of defence for flapping readings (rates are already taken
over a window of rounds, see ``telegram_probe.RateWindow``): without it, every brief recovery
would post a "resolved" notice and a fresh alert. Posting is someone else's job: the chat surfaces register *sinks*
(an admin chat, a Slack channel), and each sink gets every notice in order.

Nothing lost: a notice a sink could not take stays pending for that sink (in order,
retried with growing back-off) and is visible in :meth:`Alerter.pending`, so a dead
Telegram delays an alert, never drops it. One sink's outage never holds up another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from piyasa.admin.health.model import HealthEvent, Reading, State

log = logging.getLogger(__name__)

Kind = Literal["firing", "resolved"]
Sink = Callable[["AlertNotice"], Awaitable[None]]
DELIVERY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class AlertNotice:
    kind: Kind
    component: str
    state: State
    summary: str
    at: datetime
    since: datetime  # when the component turned critical
    reading: Reading | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.at - self.since).total_seconds())


@dataclass
class _Outbox:
    """One sink's queue: delivered strictly in order, the head retried until it goes."""

    name: str
    sink: Sink
    queue: deque[AlertNotice] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    attempts: int = 0
    last_error: str | None = None
    delivered: int = 0
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Pending:
    sink: str
    notice: AlertNotice
    attempts: int
    last_error: str | None


class Alerter:
    """Turns health state changes into alert notices and hands them to the sinks."""

    def __init__(
        self,
        health: Any,
        *,
        retry_s: float = 2.0,
        max_retry_s: float = 120.0,
        resolve_after_s: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.health = health
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._clock = clock
        interval = float(getattr(getattr(health, "thresholds", None), "interval_s", 5.0))
        self.resolve_after_s = 2 * interval if resolve_after_s is None else resolve_after_s
        self.open: dict[str, datetime] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self.notices: deque[AlertNotice] = deque(maxlen=200)  # what was decided, newest last
        self._outboxes: dict[str, _Outbox] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.started = False

    # -- wiring -----------------------------------------------------------------------

    def add_sink(self, name: str, sink: Sink) -> None:
        box = self._outboxes[name] = _Outbox(name, sink)
        if self.started:
            box.task = asyncio.create_task(self._deliver_loop(box), name=f"alerts:{name}")

    @property
    def sinks(self) -> list[str]:
        return list(self._outboxes)

    def adopt(self, open_since: dict[str, datetime]) -> None:
        """Alerts a previous run opened and never resolved (component -> since; the
        notification store keeps them): open here too, so a component still critical
        posts nothing new after a restart, and one that recovered meanwhile posts its
        "resolved" once. Call before :meth:`start`."""
        for name, since in open_since.items():
            self.open.setdefault(name, since)

    async def start(self) -> None:
        """Subscribe, then open alerts for whatever is already critical (posted once),
        and resolve adopted alerts whose component is healthy by now."""
        if self.started:
            return
        self.started = True
        for box in self._outboxes.values():
            box.task = asyncio.create_task(self._deliver_loop(box), name=f"alerts:{box.name}")
        self._unsubscribe = self.health.subscribe(self.on_event)
        snap = self.health.snapshot()
        for name, reading in snap.components.items():
            if reading.state is State.CRITICAL and name not in self.open:
                self._fire(name, reading, reading.checked_at or self._clock())
        for name in list(self.open):
            reading = snap.components.get(name)
            if reading is not None and reading.state is State.HEALTHY:
                at = reading.checked_at or self._clock()
                event = HealthEvent(
                    name, None, State.HEALTHY, at, reading.summary, snap.overall, reading
                )
                self.on_event(event)

    async def stop(self) -> None:
        """Stop delivering; whatever is still pending is logged (it was never posted)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.started = False
        for task in list(self._resolving.values()):
            task.cancel()
        self._resolving.clear()
        for box in self._outboxes.values():
            task, box.task = box.task, None
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=1.0)
        for item in self.pending():
            log.warning(
                "alert not delivered to %s: %s %s (%s)",
                item.sink,
                item.notice.kind,
                item.notice.component,
                item.last_error,
            )

    # -- deciding -----------------------------------------------------------------------

    def on_event(self, event: HealthEvent) -> None:
        """Health calls this (synchronously, in order) on every state change."""
        name = event.component
        if event.current is not State.HEALTHY:
            pending = self._resolving.pop(name, None)
            if pending is not None:  # not recovered after all: the alert stays open
                pending.cancel()
        if event.current is State.CRITICAL:
            if name not in self.open:
                self._fire(name, event.reading, event.at)
        elif event.current is State.HEALTHY and name in self.open and name not in self._resolving:
            if self.resolve_after_s <= 0:
                self._resolve(name, event)
            else:
                self._resolving[name] = asyncio.ensure_future(self._resolve_later(name, event))

    async def _resolve_later(self, name: str, event: HealthEvent) -> None:
        await asyncio.sleep(self.resolve_after_s)
        if self._resolving.get(name) is asyncio.current_task():
            del self._resolving[name]
            self._resolve(name, event)

    def _resolve(self, name: str, event: HealthEvent) -> None:
        since = self.open.pop(name, None)
        if since is None:
            return
        self._enqueue(
            AlertNotice(
                "resolved", name, event.current, event.summary, event.at, since, event.reading
            )
        )

    def _fire(self, name: str, reading: Reading | None, at: datetime) -> None:
        self.open[name] = at
        summary = reading.summary if reading else ""
        self._enqueue(AlertNotice("firing", name, State.CRITICAL, summary, at, at, reading))

    def post(self, notice: AlertNotice) -> None:
        """Deliver a notice that is no component transition (e.g. a rate-limit warning from
        ``piyasa.fleetadmin.autoadjust``) to every sink, with the same guarantees."""
        self._enqueue(notice)

    def _enqueue(self, notice: AlertNotice) -> None:
        log.warning(
            "health alert: %s %s (%s)", notice.component, notice.kind, notice.summary or "-"
        )
        self.notices.append(notice)
        for box in self._outboxes.values():
            box.queue.append(notice)
            box.wake.set()

    # -- delivering ---------------------------------------------------------------------

    async def _deliver_loop(self, box: _Outbox) -> None:
        while True:
            if not box.queue:
                box.wake.clear()
                await box.wake.wait()
                continue
            notice = box.queue[0]
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # lands as the sink finishes, and stop() would wait forever
                async with asyncio.timeout(DELIVERY_TIMEOUT_S):
                    await box.sink(notice)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                box.attempts += 1
                box.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = min(self.max_retry_s, self.retry_s * 2 ** min(box.attempts - 1, 10))
                log.warning(
                    "alert to %s failed (attempt %d, retry in %.0f s): %s",
                    box.name,
                    box.attempts,
                    delay,
                    type(exc).__name__,
                )
                box.wake.clear()
                with contextlib.suppress(TimeoutError):
                    # a new notice does not jump the queue, but "retry now" may wake us
                    async with asyncio.timeout(delay):
                        await box.wake.wait()
                continue
            box.queue.popleft()
            box.attempts, box.last_error = 0, None
            box.delivered += 1

    def retry_now(self) -> None:
        """Try pending deliveries at once (e.g. after a fix)."""
        for box in self._outboxes.values():
            if box.queue:
                box.wake.set()

    def pending(self) -> list[Pending]:
        """Notices not yet taken by their sink, oldest first per sink."""
        return [
            Pending(box.name, n, box.attempts if i == 0 else 0, box.last_error if i == 0 else None)
            for box in self._outboxes.values()
            for i, n in enumerate(box.queue)
        ]

    def delivered(self, sink: str) -> int:
        box = self._outboxes.get(sink)
        return box.delivered if box else 0
