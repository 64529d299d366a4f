"""The delivery gate: the single path of every outgoing fleet message to Telegram.

It claims due outbox rows, keeps them in per-chat FIFO queues (delivery order in a chat
is decision order, so "no bot twice in a row" and reply threads survive delivery), and
sends a chat's head only when the limiter admits it (per-chat bucket, per-group window,
per-bot and global caps, active ``retry_after`` blocks) and the bot's circuit breaker is
not open. At most one send per chat is in flight. Outcomes are committed in batches by one
writer; see ``piyasa.runtime.outbox`` for the states and the one ambiguous window.

``retry_after`` is honoured exactly: the pair is blocked in the limiter for that long and
the row waits at the head of its chat; it is never dropped. An open breaker hands the
bot's rows back to the outbox until the breaker's next probe time. A row the fleet may not
send (``blocked``: its bot was kicked from the chat, the chat is gone, the token revoked)
fails with that reason without a call; ``on_refused`` sees every Telegram error first.

A chat upgraded to a supergroup (400 with ``migrate_to_chat_id``) is followed, not failed:
the chat's queue and every row of it take the new id (:meth:`Gate.follow`), ``on_migrated``
moves the rest (database, roster; ``piyasa.runtime.migration``), and the row that met the
400 is tried again at once on the new id, under the new chat's limits.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import ReplyParameters

from piyasa.logs import REDACTOR
from piyasa.runtime.breaker import OPEN, BreakerBoard
from piyasa.runtime.buckets import Limiter, SendKey
from piyasa.runtime.metrics import FleetMetrics
from piyasa.runtime.outbox import Item, OutboxStore
from piyasa.runtime.telegram import TelegramClients
from piyasa.tasks import wait_for

log = logging.getLogger(__name__)


def _is_unambiguous_network_error(exc: BaseException) -> bool:
    """True when the request certainly never reached Telegram (connection refused)."""
    import aiohttp

    return isinstance(exc.__cause__, aiohttp.ClientConnectorError)


def _no_outcomes() -> dict[str, list[Any]]:
    return {k: [] for k in ("sent", "retry", "failed", "release", "defer")}


class Gate:
    def __init__(
        self,
        store: OutboxStore,
        limiter: Limiter,
        clients: TelegramClients,
        breakers: BreakerBoard,
        metrics: FleetMetrics,
        instance: str,
        *,
        policy: Callable[[], str] = lambda: "resend",
        on_error: Callable[[str, str], None] | None = None,
        on_sent: Callable[[Item, int], None] | None = None,
        on_failed: Callable[[Item, str], None] | None = None,
        on_refused: Callable[[Item, TelegramAPIError], None] | None = None,
        on_migrated: Callable[[int, int], None] | None = None,
        on_429: Callable[[Item, float], None] | None = None,
        blocked: Callable[[Item], str | None] = lambda _i: None,
        poll_s: float = 0.5,
        max_held: int = 5000,
        send_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.clients = clients
        self.breakers = breakers
        self.metrics = metrics
        self.instance = instance
        self.policy = policy
        self.on_error = on_error or (lambda _w, _e: None)
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.on_refused = on_refused  # every Telegram error of a send, to judge (disable)
        self.on_migrated = on_migrated  # (old chat id, new chat id): a group became a supergroup
        self.on_429 = on_429  # (item, retry_after seconds): Telegram said slow down
        self.moves: dict[int, int] = {}  # old Telegram chat id -> new, followed in this run
        self.blocked = blocked  # a reason not to send an item at all (its pair is disabled)
        self.poll_s = poll_s
        self.max_held = max_held
        self.send_timeout = send_timeout
        self.clock = clock
        self.wall = wall
        self.passes = 0  # dispatch passes so far: tests wait on it instead of sleeping
        self.queues: dict[int, deque[Item]] = {}
        self.held: dict[int, Item] = {}
        self.inflight: dict[int, asyncio.Task[None]] = {}
        self.wake = asyncio.Event()
        self.paused = False
        self._outcomes = _no_outcomes()
        self._outcome_ready = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        # stop() takes it so no dispatch is half done (slots taken, sends not yet started)
        # when it collects the in-flight sends
        self._dispatch_lock = asyncio.Lock()
        self.count_429 = 0
        self.sent_count = 0

    def _utc_in(self, seconds: float) -> datetime:
        return self.wall() + timedelta(seconds=seconds)

    # ---- interface for the fleet

    def notify(self) -> None:
        """New rows were queued: claim them now rather than at the next poll."""
        self.wake.set()

    def pause(self) -> None:
        self.paused = True

    async def quiesce(self, grace_s: float = 10.0) -> None:
        """After pause(): wait out a dispatch already under way and the sends it started.

        pause() only stops new dispatches; one that had passed its pause check (awaiting
        the database or the limiter) still starts its sends, so "paused" is only true
        once this returns.
        """
        async with self._dispatch_lock:
            tasks = list(self.inflight.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    def resume(self) -> None:
        self.paused = False
        self.wake.set()

    def describe(self) -> dict[str, Any]:
        return {
            "held": len(self.held),
            "in_flight": len(self.inflight),
            "chats_waiting": sum(1 for q in self.queues.values() if q),
            "count_429": self.count_429,
            "sent": self.sent_count,
            "limiter": self.limiter.kind,
        }

    # ---- in-memory queues

    def follow(self, old: int, new: int) -> None:
        """Chat ``old`` is now ``new``: its queue (in decision order) and every item held or
        claimed later for ``old`` go to ``new``."""
        self.moves[old] = new
        moved = self.queues.pop(old, None)
        for it in self.held.values():
            if it.tg_chat_id == old:
                it.tg_chat_id = new
        if moved:
            merged = sorted([*self.queues.get(new, ()), *moved], key=lambda i: i.id)
            self.queues[new] = deque(merged)
        self.wake.set()

    def _hold(self, items: list[Item]) -> None:
        for it in items:
            if it.id in self.held:
                continue
            it.tg_chat_id = self.moves.get(it.tg_chat_id, it.tg_chat_id)
            self.held[it.id] = it
            q = self.queues.setdefault(it.tg_chat_id, deque())
            if not q or q[-1].id < it.id:
                q.append(it)
            else:
                ids = [x.id for x in q]
                q.insert(bisect.bisect(ids, it.id), it)

    def _drop(self, item: Item) -> None:
        self.held.pop(item.id, None)
        q = self.queues.get(item.tg_chat_id)
        if q:
            with contextlib.suppress(ValueError):
                q.remove(item)

    # ---- main loop

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer(), name="gate-writer")
        last_claim = last_renew = last_recover = -1e9
        try:
            while True:
                now = self.clock()
                if self.paused:
                    self.passes += 1
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await wait_for(self.wake.wait(), self.poll_s)
                    continue
                if now - last_recover > 5.0:
                    last_recover = now
                    await self.store.recover(self.policy())
                if self.wake.is_set() or now - last_claim > self.poll_s:
                    self.wake.clear()
                    last_claim = now
                    room = self.max_held - len(self.held)
                    if room > 0:
                        self._hold(
                            await self.store.claim(
                                self.instance, min(room, 1000), exclude=list(self.held)
                            )
                        )
                if now - last_renew > 10.0:
                    last_renew = now
                    await self.store.renew(self.instance)
                async with self._dispatch_lock:
                    next_due = await self._dispatch() if not self.paused else now + self.poll_s
                self.passes += 1
                timeout = max(0.001, min(self.poll_s, next_due - self.clock()))
                with contextlib.suppress(TimeoutError):
                    await wait_for(self.wake.wait(), timeout)
        finally:
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer

    async def _dispatch(self) -> float:
        """Send every chat head the limits allow now; return when to look again."""
        now = self.clock()
        next_due = now + self.poll_s
        candidates: list[Item] = []
        for chat_id, q in self.queues.items():
            while q and not q[0].busy and (why := self.blocked(q[0])):
                self._fail_unsent(q.popleft(), why)
            if not q or chat_id in self.inflight:
                continue
            head = q[0]
            if head.busy:
                continue
            if head.not_before > now:
                next_due = min(next_due, head.not_before)
                continue
            br = self.breakers.get(head.bot_id)
            if br.state == OPEN and br.wait() > 0:
                await self._release_bot(head.bot_id, br.wait())
                continue
            candidates.append(head)
        if not candidates:
            return next_due
        # Peek first, commit 'sending', then take the slots: the slot is taken right before
        # the HTTP call, so a slow commit cannot squeeze two sends closer than Telegram's
        # limits allow (the jitter margin only has to cover the network).
        key = lambda i: SendKey(i.bot_id, i.tg_chat_id, i.is_group)  # noqa: E731
        waits = await self.limiter.peek_many([key(i) for i in candidates])
        admitted: list[Item] = []
        now = self.clock()
        for item, wait in zip(candidates, waits, strict=True):
            if wait > 0:
                item.not_before = now + wait
                next_due = min(next_due, item.not_before)
            elif not self.breakers.get(item.bot_id).allow():
                item.not_before = now + 0.25  # another chat holds this bot's half-open probe
                next_due = min(next_due, item.not_before)
            else:
                admitted.append(item)
        if not admitted:
            return next_due
        owned = await self.store.mark_sending(self.instance, [i.id for i in admitted])
        mine: list[Item] = []
        for item in admitted:
            if item.id not in owned:  # our lease lapsed and someone else has it now
                self.breakers.get(item.bot_id).release_probe()
                self._drop(item)
            else:
                mine.append(item)
        waits = await self.limiter.acquire_many([key(i) for i in mine])
        now = self.clock()
        for item, wait in zip(mine, waits, strict=True):
            item.busy = True  # stays at the head of its chat until the outcome is committed
            if wait > 0:  # the slot went meanwhile (another process, the per-bot cap)
                self.breakers.get(item.bot_id).release_probe()
                item.not_before = now + wait
                next_due = min(next_due, item.not_before)
                self._outcomes["defer"].append((item, self._utc_in(wait), None))
                self._outcome_ready.set()
                continue
            self.inflight[item.tg_chat_id] = asyncio.create_task(self._send(item))
        return next_due

    def _fail_unsent(self, item: Item, why: str) -> None:
        item.busy = True  # held until the outcome is committed, so no claim takes it again
        self._outcomes["failed"].append((item, why))
        self._outcome_ready.set()

    async def _release_bot(self, bot_id: int, wait_s: float) -> None:
        items = [it for it in self.held.values() if it.bot_id == bot_id and not it.busy]
        for it in items:
            self._drop(it)
        when = self._utc_in(wait_s)
        self._outcomes["release"] += [(it, when, "bot circuit breaker open") for it in items]
        self._outcome_ready.set()

    # ---- one send

    async def _send(self, item: Item) -> None:
        chat_key = item.tg_chat_id  # its in-flight slot, even if the chat moves meanwhile
        breaker = self.breakers.get(item.bot_id)
        outcome: tuple[str, Any]
        try:
            reply = (
                ReplyParameters(
                    message_id=item.reply_to_tg_message_id, allow_sending_without_reply=True
                )
                if item.reply_to_tg_message_id
                else None
            )
            msg = await self.clients.sender(item.bot_id).send_message(
                chat_id=item.tg_chat_id,
                text=item.text,
                reply_parameters=reply,
                request_timeout=int(self.send_timeout),
            )
            breaker.success()
            outcome = ("sent", (item, msg.message_id, self.wall()))
        except TelegramRetryAfter as exc:
            self.count_429 += 1
            self.metrics.telegram_errors.labels("429").inc()
            if self.on_429 is not None:
                self.on_429(item, float(exc.retry_after))
            await self.limiter.block(item.bot_id, item.tg_chat_id, float(exc.retry_after))
            item.not_before = self.clock() + float(exc.retry_after)
            breaker.success()  # the token works; Telegram only asked us to slow down
            outcome = (
                "retry",
                (item, self._utc_in(exc.retry_after), f"429 retry after {exc.retry_after}"),
            )
        except TelegramUnauthorizedError as exc:
            self.metrics.telegram_errors.labels("401").inc()
            breaker.trip(300.0, "401 Unauthorized: the bot token was revoked or is wrong")
            self._report(item, exc)
            outcome = ("release", (item, self._utc_in(300.0), "401 Unauthorized"))
        except TelegramMigrateToChat as exc:
            # Refused, so not delivered: the row goes to the supergroup next, not to "failed".
            self.metrics.telegram_errors.labels("400").inc()
            breaker.success()  # the token works
            old, new = item.tg_chat_id, int(exc.migrate_to_chat_id)
            self.follow(old, new)
            if self.on_migrated is not None:
                self.on_migrated(old, new)
            item.not_before = 0.0
            outcome = ("retry", (item, self.wall(), f"chat {old} became supergroup {new}"))
        except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound) as exc:
            code = "403" if isinstance(exc, TelegramForbiddenError) else "400"
            self.metrics.telegram_errors.labels(code).inc()
            self._report(item, exc)
            item.refused = True
            outcome = ("failed", (item, f"{code} {exc.message}"))
        except (TelegramServerError, TelegramNetworkError) as exc:
            is_net = isinstance(exc, TelegramNetworkError)
            self.metrics.telegram_errors.labels("network" if is_net else "5xx").inc()
            breaker.failure(f"{type(exc).__name__}: {exc.message}")
            self._report(item, exc)
            if is_net and not _is_unambiguous_network_error(exc) and self.policy() == "fail":
                item.refused = True
                outcome = ("failed", (item, f"ambiguous network error: {exc.message}"))
            else:
                backoff = min(60.0, 0.5 * 2 ** min(item.attempts, 7))
                item.not_before = self.clock() + backoff
                outcome = ("retry", (item, self._utc_in(backoff), f"{type(exc).__name__}"))
        except TelegramAPIError as exc:
            self.metrics.telegram_errors.labels("other").inc()
            breaker.failure(exc.message)
            self._report(item, exc)
            item.not_before = self.clock() + 5.0
            outcome = ("retry", (item, self._utc_in(5.0), type(exc).__name__))
        except asyncio.CancelledError:
            # Stopping: the row stays 'sending' only if the request may be out; recover decides.
            raise
        except Exception as exc:  # a bug must not kill the chat's queue
            log.exception("gate: unexpected error sending outbox row %s", item.id)
            item.not_before = self.clock() + 5.0
            outcome = ("retry", (item, self._utc_in(5.0), f"{type(exc).__name__}"))
        finally:
            self.inflight.pop(chat_key, None)
            self.wake.set()
        kind, payload = outcome
        if kind == "sent":
            self.sent_count += 1
            # Telegram has it: the chat's next message may go now, before the outcome is
            # committed (it stays held, so no claim takes it again, until the flush).
            q = self.queues.get(item.tg_chat_id)
            if q and q[0] is item:
                q.popleft()
        self._outcomes[kind].append(payload)
        self._outcome_ready.set()

    def _report(self, item: Item, exc: TelegramAPIError) -> None:
        self.on_error(
            f"gate bot={item.bot_id} chat={item.tg_chat_id}",
            REDACTOR(f"{type(exc).__name__}: {exc.message}"),
        )
        if self.on_refused is not None:
            self.on_refused(item, exc)

    # ---- outcome writer

    async def _writer(self) -> None:
        while True:
            await self._outcome_ready.wait()
            await self.flush()

    async def flush(self) -> None:
        """Commit buffered outcomes (one transaction), then requeue rows that wait."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        self._outcome_ready.clear()
        batch, self._outcomes = self._outcomes, _no_outcomes()
        if not any(batch.values()):
            return
        try:
            # Shielded: a cancelled writer must not roll back outcomes Telegram already saw.
            await asyncio.shield(
                self.store.complete(
                    sent=batch["sent"],
                    retry=batch["retry"] + batch["defer"],
                    failed=batch["failed"],
                    release=batch["release"],
                )
            )
        except BaseException:
            # Put them back; the next flush tries again (the rows are still ours).
            for k, v in batch.items():
                self._outcomes[k] = v + self._outcomes[k]
            self._outcome_ready.set()
            raise
        now = self.wall()
        for item, tg_id, _at in batch["sent"]:
            self._drop(item)
            self.metrics.messages.labels("sent").inc()
            self.metrics.decision_to_send.observe(max(0.0, (now - item.decided_at).total_seconds()))
            if self.on_sent:
                self.on_sent(item, tg_id)
        for item, err in batch["failed"]:
            self._drop(item)
            self.metrics.messages.labels("failed").inc()
            if self.on_failed:
                self.on_failed(item, err)
        for item, _when, _err in batch["release"]:
            self._drop(item)
        for item, _w, _e in batch["retry"] + batch["defer"]:
            item.busy = False  # back in line, at the head of its chat, after not_before
        if batch["retry"]:
            self.metrics.messages.labels("retried").inc(len(batch["retry"]))
        self.wake.set()

    async def stop(self, grace_s: float = 3.0) -> None:
        """Let in-flight sends finish (bounded), commit outcomes, hand back held rows."""
        self.paused = True
        async with self._dispatch_lock:
            tasks = list(self.inflight.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
        with contextlib.suppress(Exception):
            await self.flush()
        with contextlib.suppress(Exception):
            await self.store.release_all(self.instance)
        self.queues.clear()
        self.held.clear()
