"""The fleet runtime: planner -> generation workers -> outbox -> delivery gate -> Telegram.

``Fleet(services)`` is what ``piyasa up`` starts. Bots and chats come from the database,
the Bot API base URL from ``services.settings.telegram_api_url``, the LLM from the
settings table or the environment (no key: the offline generator, in-process).

Lifecycle: ``await fleet.start()``; ``await fleet.stop()`` returns within a few seconds;
whatever was decided and not yet sent stays queued in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import socket
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from piyasa.admin.notify import producers
from piyasa.admin.notify.events import Event, emit
from piyasa.db.base import utcnow
from piyasa.db.runtime_models import WorkerEvent
from piyasa.logs import REDACTOR
from piyasa.runtime.breaker import OPEN, STATE_VALUE, BreakerBoard, CircuitBreaker
from piyasa.runtime.buckets import DeliveryLimits, make_limiter
from piyasa.runtime.control import FleetControl
from piyasa.runtime.disable import Disabler
from piyasa.runtime.gate import Gate
from piyasa.runtime.intake import Poller, PollerRegistry
from piyasa.runtime.llm import (
    Generator,
    LLMError,
    OfflineProvider,
    OpenAIProvider,
    build_prompt,
    finish_text,
)
from piyasa.runtime.llm_watch import LLMOutcomes, LLMWatch
from piyasa.runtime.metrics import FleetMetrics
from piyasa.runtime.migration import Follower
from piyasa.runtime.outbox import Draft, Item, OutboxStore, make_instance_id
from piyasa.runtime.planner import Decision, Planner
from piyasa.runtime.ratewatch import RateWatch
from piyasa.runtime.receiver import Ingest, WebhookReceiver
from piyasa.runtime.roster import Roster, load_roster
from piyasa.runtime.seeding import seed_planner
from piyasa.runtime.settings_store import SettingsStore
from piyasa.runtime.supervisor import Supervisor
from piyasa.runtime.telegram import TelegramClients
from piyasa.services import Services

log = logging.getLogger(__name__)


class Fleet:
    def __init__(
        self,
        services: Services,
        *,
        receive: str | None = None,
        workers: int | None = None,
        limits: DeliveryLimits | None = None,
        settings_overrides: dict[str, Any] | None = None,
        provider: Any = None,
        planner_tick_s: float = 0.1,
        roster_refresh_s: float = 30.0,
        settings_refresh_s: float = 2.0,
        limiter_namespace: str = "piyasa:gate:",
        clock: Any = None,
        wall: Any = None,
        supervisor_backoff: tuple[float, float] = (0.5, 30.0),
        autoadjust_tick_s: float = 5.0,
    ) -> None:
        """``clock`` (monotonic seconds) and ``wall`` (aware UTC datetime) are injectable so
        tests move time instead of waiting; both default to the real clocks. An injected
        clock also drives Redis buckets (otherwise they use the Redis server's clock)."""
        self.limiter_namespace = limiter_namespace
        self._clock_injected = clock is not None
        self.clock = clock or time.monotonic
        self.wall = wall or (lambda: datetime.now(UTC))
        self.services = services
        self.settings_store = SettingsStore(
            services.sessions, settings_overrides, settings_refresh_s
        )
        self.metrics = FleetMetrics()
        self.rates = RateWatch(self.clock)  # sends and 429s, for /limits and auto-adjust
        self.autoadjust_tick_s = autoadjust_tick_s
        self.autoadjust: Any = None  # piyasa.fleetadmin.autoadjust.AutoAdjuster, at start
        self.supervisor = Supervisor(
            on_event=self._event,
            min_backoff=supervisor_backoff[0],
            max_backoff=supervisor_backoff[1],
        )
        self.bot_breakers = BreakerBoard(
            "bot",
            failure_threshold=5,
            reset_timeout=5.0,
            on_change=self._breaker_changed,
            clock=self.clock,
        )
        self.control = FleetControl(self)
        self.llm_watch = LLMWatch(lambda: self.generator)
        self.disabler = Disabler(
            services.sessions,
            lambda: self.roster,
            self._event,
            self._spawn,
            self.wall,
            self._unpoll,
        )
        self.follower = Follower(
            services.sessions,
            lambda: self.roster,
            lambda old, new: self.gate.follow(old, new) if self.gate is not None else None,
            self._event,
            self._spawn,
        )
        self.instance = make_instance_id()
        self.receive_mode = receive
        self.n_workers = workers
        self.base_limits = limits or DeliveryLimits()
        self._provider = provider
        self.planner_tick_s = planner_tick_s
        self.roster_refresh_s = roster_refresh_s
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=50)
        self.last_by_bot: dict[int, dict[str, Any]] = {}
        self.last_by_chat: dict[int, dict[str, Any]] = {}
        self.history: dict[int, deque[tuple[str, str]]] = {}
        self.roster = Roster()
        self.clients: TelegramClients | None = None
        self.gate: Gate | None = None
        self.generator: Generator | None = None
        self.planner: Planner | None = None
        self.ingest: Ingest | None = None
        self.webhooks: WebhookReceiver | None = None
        self.pollers: dict[int, Poller] = {}
        self.store = OutboxStore(services.sessions, services.engine.dialect.name, self.wall)
        self.outbox_depth = 0
        self.started = False
        self._decisions: asyncio.Queue[Decision] = asyncio.Queue()
        self._to_enqueue: asyncio.Queue[Draft] = asyncio.Queue()
        self._ordered: dict[int, tuple[list[int], dict[int, tuple[Decision, Draft | None]]]] = {}
        self._llm_config: tuple[str, str, str, float] | None = None
        self._bg: set[asyncio.Task[Any]] = set()
        self.generated = 0
        self._lat_mean = 0.25
        self._generating = 0
        self._sent_times: deque[float] = deque()
        self.target_latency_s = 1.2
        self.min_outstanding = 64

    # ---- events, errors, breakers

    def _event(self, worker: str, kind: str, detail: str) -> None:
        detail = REDACTOR(detail)
        self.recent_errors.append(
            {"at": utcnow().isoformat(), "where": worker, "kind": kind, "error": detail}
        )
        if kind == "crashed":
            self.metrics.worker_restarts.labels(worker.split("-")[0]).inc()
        self._spawn(self._record_event(worker, kind, detail))
        self._notify(producers.fleet_event(worker, kind, detail))

    def _notify(self, event: Event | None) -> None:
        """Publish ``event`` on the notification bus (nothing when no service listens)."""
        if event is not None:
            emit(self.services.extras, event)

    def _error(self, where: str, error: str) -> None:
        self.recent_errors.append(
            {"at": utcnow().isoformat(), "where": where, "kind": "error", "error": REDACTOR(error)}
        )

    async def _record_event(self, worker: str, kind: str, detail: str) -> None:
        with contextlib.suppress(Exception):
            async with self.services.sessions() as session, session.begin():
                session.add(
                    WorkerEvent(
                        instance=self.instance, worker=worker, kind=kind, detail=detail[:2000]
                    )
                )

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _breaker_changed(self, breaker: CircuitBreaker) -> None:
        self.metrics.breaker_state.labels(breaker.name).set(STATE_VALUE[breaker.state])
        if breaker.state == OPEN:
            self._error(
                breaker.name, f"circuit breaker open: {breaker.last_error or 'repeated failures'}"
            )
        self._notify(producers.breaker_event(breaker.name, breaker.state, breaker.last_error))

    def _llm_outcome(self, kind: str | None, error: str | None, ok: bool) -> None:
        self._notify(producers.llm_event(kind, REDACTOR(error or ""), ok=ok))

    # ---- settings

    def _llm_wanted(self) -> tuple[str, str, str, float]:
        st, cfg = self.settings_store, self.services.settings
        key = ""
        enc = st.get("llm_api_key_encrypted")
        if enc:
            with contextlib.suppress(Exception):
                key = self.services.box.decrypt(enc)
        key = key or cfg.openai_api_key.reveal()
        return (
            key,
            st.get("llm_base_url") or cfg.openai_base_url,
            st.get("llm_model") or cfg.llm_model,
            st.number("llm_timeout_s"),
        )

    def _build_generator(self) -> None:
        wanted = self._llm_wanted()
        if self.generator is not None and wanted == self._llm_config:
            self.generator.prices = self.settings_store.get("llm_prices") or {}
            return
        old = self.generator
        if self._provider is not None:
            provider = self._provider
        elif wanted[0]:
            provider = OpenAIProvider(wanted[0], wanted[1] or None, wanted[2], wanted[3])
        else:
            provider = OfflineProvider()
        breaker = CircuitBreaker("llm", 5, 5.0, clock=self.clock, on_change=self._breaker_changed)
        prices = self.settings_store.get("llm_prices") or {}
        self.generator = Generator(
            provider, breaker, prices, LLMOutcomes(self.clock, on_change=self._llm_outcome)
        )
        self._llm_config = wanted
        if old is not None and old.provider is not provider:
            self._spawn(old.close())

    def apply_settings(self) -> None:
        st = self.settings_store
        if self.gate is not None:
            if st.get("fleet_paused"):
                self.gate.pause()
            else:
                self.gate.resume()
            limits = dataclasses.replace(
                self.base_limits, global_max=int(st.number("global_max_per_s"))
            )
            self.gate.limiter.limits = limits  # type: ignore[misc]
        if self.started:
            self._build_generator()

    async def _settings_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings_store.refresh_s)
            if await self.settings_store.refresh():
                self.apply_settings()

    # ---- start / stop

    async def start(self) -> None:
        if self.started:
            return
        sessions = self.services.sessions
        await self.settings_store.refresh()
        self.roster = await load_roster(sessions)
        self._disable_invalid()
        self.clients = TelegramClients(self.services.settings.telegram_api_url)
        self._load_tokens()
        limits = dataclasses.replace(
            self.base_limits, global_max=int(self.settings_store.number("global_max_per_s"))
        )
        limiter = make_limiter(
            self.services.settings.redis_url,
            limits,
            self.limiter_namespace,
            self.clock if self._clock_injected else None,
        )
        self._build_generator()
        policy = lambda: str(self.settings_store.get("outbox_ambiguous_policy"))  # noqa: E731
        recovered = await self.store.recover(policy())
        if recovered["claimed"] or recovered["sending"]:
            self._event(
                "outbox", "recovered", f"{recovered} rows from a previous run (policy {policy()})"
            )
        self.planner = Planner(
            self.roster,
            limits,
            clock=self.clock,
            wall=self.wall,
            max_lag_s=0.75,
            lead_s=self._lat_mean,
            on_bad_bot=self.disabler.disable_bot,
        )
        await seed_planner(
            self.services.sessions,
            self.roster,
            self.planner,
            self.history,
            int(self.settings_store.number("history_size")),
        )
        self.gate = Gate(
            self.store,
            limiter,
            self.clients,
            self.bot_breakers,
            self.metrics,
            self.instance,
            policy=policy,
            on_error=self._error,
            on_sent=self._on_sent,
            on_failed=self._on_failed,
            on_refused=lambda it, exc: self.disabler.refused(it.bot_id, it.chat_id, exc),
            on_migrated=lambda old, new: self.follower.migrated(old, new, "a 400 to the old id"),
            on_429=lambda it, s: self.rates.limited(it.bot_id, it.tg_chat_id, s),
            blocked=lambda it: self.disabler.why(it.bot_id, it.chat_id),
            clock=self.clock,
            wall=self.wall,
        )
        self.ingest = Ingest(
            sessions,
            self.services.engine.dialect.name,
            lambda: self.roster,
            self._on_human,
            lambda r: self.planner.add_reply(r) if self.planner else None,
            on_migrated=lambda old, new: self.follower.migrated(old, new, "a service message"),
        )
        for reply in await self.ingest.pending_replies(
            self.settings_store.number("reply_max_age_s")
        ):
            self.planner.add_reply(reply)
        self.started = True
        self.apply_settings()
        sup = self.supervisor
        sup.add("settings", self._settings_loop)
        sup.add("roster", self._roster_loop)
        sup.add("housekeeping", self._housekeeping_loop)
        sup.add("gate", self.gate.run)
        sup.add("enqueue", self._enqueue_loop)
        sup.add("llm-watch", self.llm_watch.run)
        from piyasa.fleetadmin.autoadjust import AutoAdjuster  # the 429 trend -> scale_factor

        self.autoadjust = AutoAdjuster(self, tick_s=self.autoadjust_tick_s)
        sup.add("autoadjust", self.autoadjust.run)
        sup.add("planner", self._planner_loop, group="workers")
        n = int(self.n_workers or self.settings_store.number("fleet_workers"))
        for i in range(max(1, n)):
            sup.add(f"generator-{i}", self._generation_loop, group="workers")
        await self._start_receivers()

    async def _start_receivers(self) -> None:
        mode = self.receive_mode or str(self.settings_store.get("fleet_receive_mode"))
        if mode == "off" or self.clients is None or self.ingest is None:
            return
        if mode == "webhook":
            self.webhooks = WebhookReceiver(
                self.services.settings.secret_key.reveal(),
                self.ingest,
                self.clients.sender,
                self._error,
            )
            base = str(self.settings_store.get("fleet_webhook_url"))
            for bot in self.roster.bots.values():
                if bot.enabled and self.clients.has(bot.id) and base:
                    try:
                        await self.webhooks.register(bot.id, base)
                    except Exception as exc:
                        self._error(
                            f"webhook bot={bot.id}", f"setWebhook failed: {type(exc).__name__}"
                        )
            return
        registry = PollerRegistry(self.services.sessions, self.services.engine.dialect.name)
        for bot in self.roster.bots.values():
            if bot.enabled and self.clients.has(bot.id) and bot.id not in self.pollers:
                poller = Poller(
                    bot.id,
                    bot.username,
                    functools.partial(self.clients.poller, bot.id),
                    self.ingest,
                    registry,
                    self.instance,
                    self._error,
                    functools.partial(self.disabler.refused, bot.id, None),
                    self._event,
                )
                self.pollers[bot.id] = poller
                self.supervisor.add(f"poll-{bot.id}", poller.run, group="receivers")

    @property
    def webhook_handler(self) -> Any:
        """aiohttp handler for ``/telegram/webhook/{bot_id}`` (webhook mode)."""
        return self.webhooks.handler if self.webhooks else None

    def _load_tokens(self) -> None:
        assert self.clients is not None
        for bot in self.roster.bots.values():
            try:
                self.clients.set_token(bot.id, self.services.box.decrypt(bot.token_encrypted))
            except Exception:
                self._error(
                    f"bot={bot.id}", "cannot decrypt the bot token (wrong PIYASA_SECRET_KEY?)"
                )

    async def stop(self) -> None:
        """Stop within a few seconds; nothing decided is lost (it stays queued)."""
        if not self.started:
            return
        self.started = False
        await self.supervisor.stop(
            [n for n, w in self.supervisor.workers.items() if w.group in ("workers", "receivers")],
            grace_s=1.0,
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._drain_enqueue(), 2.0)
        if self.gate is not None:
            await self.gate.stop(grace_s=2.0)
        await self.supervisor.stop(grace_s=1.0)
        for task in list(self._bg):
            task.cancel()
        if self.clients is not None:
            await self.clients.close()
        if self.gate is not None:
            with contextlib.suppress(Exception):
                await self.gate.limiter.close()
        if self.generator is not None:
            with contextlib.suppress(Exception):
                await self.generator.close()

    # ---- loops

    async def _roster_loop(self) -> None:
        while True:
            await asyncio.sleep(self.roster_refresh_s)
            await self.reload_roster()

    async def reload_roster(self) -> None:
        roster = await load_roster(self.services.sessions)
        self.disabler.apply(roster)  # disables decided here but not yet written
        self.follower.apply(roster)  # chat moves likewise
        self.roster = roster
        if self.planner is not None:
            self.planner.roster = roster
        self._disable_invalid()
        stale = [b for b in self.pollers if b not in roster.bots or not roster.bots[b].enabled]
        for bot_id in stale:  # disabled or removed meanwhile, here or by another instance
            self._unpoll(bot_id)
        self._load_tokens()
        await self._start_receivers()

    def _disable_invalid(self) -> None:
        """Bad data in one bot's row disables that bot only (recorded, with an event)."""
        for bot_id, reason in list(self.roster.invalid.items()):
            self.disabler.disable_bot(bot_id, reason)

    def _unpoll(self, bot_id: int) -> None:
        """A disabled bot stops polling (a revoked token would only get 401s)."""
        if self.pollers.pop(bot_id, None) is not None:
            self._spawn(self.supervisor.remove(f"poll-{bot_id}"))

    async def _housekeeping_loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                counts = await self.store.counts()
                self.outbox_depth = sum(counts.get(s, 0) for s in ("queued", "claimed", "sending"))
                self.metrics.outbox_depth.set(self.outbox_depth)
            await asyncio.sleep(2.0)

    async def _planner_loop(self) -> None:
        assert self.planner is not None
        st = self.settings_store
        from piyasa.sandbox.chatter import detect_topic

        while True:
            gen = self.generator
            llm_ok = gen is not None and not (gen.breaker.state == OPEN and gen.breaker.wait() > 0)
            workers = max(1, int(self.n_workers or st.number("fleet_workers")))
            # Just in time: decide no more than idle workers can start generating now; a
            # decision waiting in a queue would only go stale before its send slot.
            room = workers - self._generating - self._decisions.qsize()
            # ...and keep what is decided but not yet sent to about ``target_latency_s``
            # of recent delivery: when the process (or the database) is the bottleneck,
            # more decisions would not be sent sooner, only wait longer.
            now = self.clock()
            while self._sent_times and self._sent_times[0] < now - 2.0:
                self._sent_times.popleft()
            rate = len(self._sent_times) / 2.0
            cap = max(self.min_outstanding, int(rate * self.target_latency_s))
            room = min(room, cap - self.planner.outstanding)
            decisions = self.planner.plan(
                st.number("max_msgs_per_min"),
                st.number("scale_factor"),
                room,
                paused=bool(st.get("fleet_paused")),
                llm_ok=llm_ok,
                reply_max_age_s=st.number("reply_max_age_s"),
                topic_hint=detect_topic,
                reply_first=bool(st.get("reply_first")),
            )
            for d in decisions:
                self._decisions.put_nowait(d)
            if decisions:
                self.metrics.messages.labels("decided").inc(len(decisions))
            await asyncio.sleep(self.planner_tick_s)

    async def _generation_loop(self) -> None:
        while True:
            decision = await self._decisions.get()
            draft: Draft | None = None
            self._generating += 1
            try:  # a pair disabled since the decision costs no LLM call
                if not self.disabler.why(decision.bot.id, decision.chat.id):
                    draft = await self._generate(decision)
            except LLMError as exc:
                self.metrics.llm_errors.labels(exc.kind).inc()
                self.metrics.messages.labels("generation_failed").inc()
                self._error(f"llm bot={decision.bot.id}", f"{exc.kind}: {exc}")
                if decision.reply is not None and self.planner is not None:
                    self.planner.add_reply(decision.reply)
                self._spawn(
                    self.store.record_failed_generation(
                        decision.bot.id,
                        decision.chat.id,
                        decision.topic,
                        self.generator.provider.model if self.generator else None,
                        exc.kind,
                        str(exc),
                    )
                )
            finally:
                self._generating -= 1
                self._commit_in_order(decision, draft)

    async def _generate(self, d: Decision) -> Draft:
        assert self.generator is not None
        persona = d.bot.persona
        st = self.settings_store
        hist = list(self.history.get(d.chat.id, ()))
        reply = (d.reply.human_name, d.reply.text) if d.reply else None
        language = persona.get("language") or st.get("default_language") or None
        prompt = build_prompt(persona, d.topic, hist, language, reply, d.bot.display_name)
        prompt.temperature = st.number("llm_temperature")
        gen = await self.generator.generate(prompt)
        m = self.metrics
        m.llm_latency.labels(gen.model).observe(gen.latency_ms / 1000)
        # The planner decides this far ahead of a send slot (just in time): a running mean
        # of generation latency, plus a little for queueing the draft.
        self._lat_mean = 0.9 * self._lat_mean + 0.1 * gen.latency_ms / 1000
        if self.planner is not None:
            self.planner.lead_s = min(3.0, self._lat_mean + 0.03)
        m.llm_tokens.labels("prompt").inc(gen.tokens_in)
        m.llm_tokens.labels("completion").inc(gen.tokens_out)
        m.llm_tokens.labels("cached").inc(gen.tokens_cached)
        m.llm_cost.inc(float(gen.cost_usd))
        self.generated += 1
        return Draft(
            idempotency_key=d.key,
            bot_id=d.bot.id,
            chat_id=d.chat.id,
            tg_chat_id=d.chat.telegram_id,
            is_group=d.chat.is_group,
            text=finish_text(
                gen.text, persona, bool(st.get("footer_enabled")), str(st.get("fleet_footer"))
            ),
            topic=d.topic,
            model=gen.model,
            latency_ms=gen.latency_ms,
            tokens_in=gen.tokens_in,
            tokens_out=gen.tokens_out,
            tokens_cached=gen.tokens_cached,
            cost_usd=gen.cost_usd,
            reply_to_tg_message_id=d.reply.tg_message_id if d.reply else None,
            reply_request_id=d.reply.request_id if d.reply else None,
            decided_at=d.decided_at,
        )

    def _commit_in_order(self, d: Decision, draft: Draft | None) -> None:
        """Queue drafts of a chat in decision order, whatever order generation ended in."""
        nxt, ready = self._ordered.setdefault(d.chat.id, ([d.seq if d.seq == 0 else 0], {}))
        ready[d.seq] = (d, draft)
        while nxt[0] in ready:
            dec, dr = ready.pop(nxt[0])
            nxt[0] += 1
            if dr is None:
                if self.planner is not None:
                    self.planner.settle(dec.chat.id)
                continue
            self.history.setdefault(
                dec.chat.id, deque(maxlen=int(self.settings_store.number("history_size")))
            ).append((f"{dec.bot.name} (bot)", dr.text))
            self._to_enqueue.put_nowait(dr)

    async def _enqueue_loop(self) -> None:
        while True:
            batch = [await self._to_enqueue.get()]
            while not self._to_enqueue.empty() and len(batch) < 500:
                batch.append(self._to_enqueue.get_nowait())
            await self._enqueue(batch)

    async def _enqueue(self, batch: list[Draft]) -> None:
        delay = 0.2
        while True:
            try:
                await self.store.enqueue(batch)
                break
            except asyncio.CancelledError:
                for dr in batch:  # keep them for the next writer (restart) or the drain
                    self._to_enqueue.put_nowait(dr)
                raise
            except Exception as exc:
                self._error(
                    "outbox", f"cannot queue {len(batch)} messages: {type(exc).__name__}: {exc}"
                )
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
        if self.gate is not None:
            self.gate.notify()

    async def _drain_enqueue(self) -> None:
        batch = []
        while not self._to_enqueue.empty():
            batch.append(self._to_enqueue.get_nowait())
        if batch:
            await self.store.enqueue(batch)

    # ---- callbacks

    def _on_sent(self, item: Item, tg_id: int) -> None:
        self._sent_times.append(self.clock())
        self.rates.sent(item.bot_id, item.tg_chat_id, item.is_group)
        now = self.wall().isoformat()
        if self.planner is not None:
            self.planner.settle(item.chat_id)
        self.last_by_bot[item.bot_id] = {"at": now, "chat_id": item.tg_chat_id, "message_id": tg_id}
        self.last_by_chat[item.tg_chat_id] = {"at": now, "bot_id": item.bot_id, "message_id": tg_id}

    def _on_failed(self, item: Item, err: str) -> None:
        if self.planner is not None:
            self.planner.settle(item.chat_id)
        self._error(
            f"gate bot={item.bot_id} chat={item.tg_chat_id}",
            f"message {item.message_id} failed: {err}",
        )

    def _on_human(self, chat_id: int, name: str, text: str) -> None:
        if self.planner is not None:
            self.planner.note_human(chat_id)
        self.history.setdefault(
            chat_id, deque(maxlen=int(self.settings_store.number("history_size")))
        ).append((name, text))

    # ---- health

    def snapshot(self) -> dict[str, Any]:
        gen = self.generator
        return {
            "instance": self.instance,
            "host": socket.gethostname(),
            "running": self.started,
            "paused": bool(self.settings_store.get("fleet_paused")),
            "workers": {
                "active": self.supervisor.active(),
                "total": self.supervisor.total(),
                "detail": self.supervisor.describe(),
            },
            "bots": len(self.roster.bots),
            "chats": len(self.roster.chats),
            "last_message_by_bot": dict(self.last_by_bot),
            "last_message_by_chat": dict(self.last_by_chat),
            "outbox_depth": self.outbox_depth,
            "gate": self.gate.describe() if self.gate else {},
            "breakers": {
                "bots": {str(k): b.describe() for k, b in self.bot_breakers.items()},
                "llm": gen.breaker.describe() if gen else None,
            },
            "llm": {
                "provider": gen.provider.name if gen else None,
                "model": gen.provider.model if gen else None,
                **(gen.outcomes.describe() if gen else {}),
            },
            "settings": {
                "max_msgs_per_min": self.settings_store.number("max_msgs_per_min"),
                "scale_factor": self.settings_store.number("scale_factor"),
            },
            "pollers": {
                str(b): {"conflicts": p.conflicts, "last_conflict": p.last_conflict}
                for b, p in self.pollers.items()
                if p.conflicts
            },
            "disabled": self.disabler.describe(),
            "recent_errors": list(self.recent_errors)[-20:],
            "generated": self.generated,
            "uptime_s": None,
            "now": time.time(),
        }
