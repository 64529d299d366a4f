"""The fleet runtime: planner -> generation workers -> outbox -> delivery gate -> Telegram.

``Fleet(services)`` is what ``piyasa up`` starts. Bots and chats come from the database,
the Bot API base URL from ``services.settings.telegram_api_url``, the LLM from the
settings table or the environment (no key: the offline generator, in-process).

Lifecycle: ``await fleet.start()``; ``await fleet.stop()`` returns within a few seconds;
whatever was decided and not yet sent stays queued in the outbox for the next start.

The class is one object in four modules: this one (wiring, settings, start/stop, snapshot)
and the parts it inherits, ``fleet_events``, ``fleet_receiving`` and ``fleet_pipeline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from piyasa.runtime.breaker import BreakerBoard, CircuitBreaker
from piyasa.runtime.buckets import DeliveryLimits
from piyasa.runtime.control import FleetControl
from piyasa.runtime.disable import Disabler
from piyasa.runtime.error_rate import ErrorRate
from piyasa.runtime.fleet_events import FleetEvents
from piyasa.runtime.fleet_pipeline import FleetPipeline
from piyasa.runtime.fleet_receiving import FleetReceiving
from piyasa.runtime.gate import Gate
from piyasa.runtime.intake import Poller
from piyasa.runtime.llm import Generator, OfflineProvider, OpenAIProvider
from piyasa.runtime.llm_watch import LLMOutcomes, LLMWatch
from piyasa.runtime.metrics import FleetMetrics
from piyasa.runtime.migration import Follower
from piyasa.runtime.outbox import Draft, OutboxStore, make_instance_id
from piyasa.runtime.ownership import Settler, spread_bots
from piyasa.runtime.planner import Decision, Planner
from piyasa.runtime.ratewatch import RateWatch
from piyasa.runtime.receiver import Ingest, WebhookReceiver
from piyasa.runtime.roster import Roster, load_roster
from piyasa.runtime.seeding import seed_planner
from piyasa.runtime.settings_store import SettingsStore
from piyasa.runtime.shared_limits import fleet_ledger, fleet_limiter
from piyasa.runtime.supervisor import Supervisor
from piyasa.runtime.telegram import TelegramClients
from piyasa.services import Services
from piyasa.tasks import wait_for

log = logging.getLogger(__name__)


class Fleet(FleetEvents, FleetReceiving, FleetPipeline):
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
        supervisor_stable_s: float = 60.0,
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
        self.error_rate = ErrorRate(self.clock)  # message failures over 10 min -> an alert
        self.autoadjust_tick_s = autoadjust_tick_s
        self.autoadjust: Any = None  # piyasa.fleetadmin.autoadjust.AutoAdjuster, at start
        self.supervisor = Supervisor(
            on_event=self._event,
            min_backoff=supervisor_backoff[0],
            max_backoff=supervisor_backoff[1],
            stable_s=supervisor_stable_s,
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
        self.ledger: Any = None  # fleet-wide budget/hourly/last speaker (shared_limits.py)
        self.ingest: Ingest | None = None
        self.webhooks: WebhookReceiver | None = None
        self.pollers: dict[int, Poller] = {}
        self.spreader: Any = None  # piyasa.cluster.spread.BotSpreader with several instances
        self.settler: Settler | None = None  # with spreader: settles decisions sent elsewhere
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
        self._enqueuing = 0
        self.planner_passes = 0
        self._planner_wake = asyncio.Event()
        self._sent_times: deque[float] = deque()
        self.target_latency_s = 1.2
        self.min_outstanding = 64

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
        cluster = self.services.extras.get("cluster")
        if cluster is not None and cluster.lease.kind != "local":
            self.instance = cluster.id  # outbox claims are fenced by this instance's bot leases
        sessions = self.services.sessions
        await self.settings_store.refresh()
        self.roster = await load_roster(sessions)
        self._disable_invalid()
        self.clients = TelegramClients(self.services.settings.telegram_api_url)
        self._load_tokens()
        limits = dataclasses.replace(
            self.base_limits, global_max=int(self.settings_store.number("global_max_per_s"))
        )
        limiter = fleet_limiter(  # memory, Redis or PostgreSQL: runtime/shared_limits.py
            self.services,
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
        self.ledger = fleet_ledger(self.services, self._clock_injected)
        self.planner.shared = self.ledger is not None
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
        self.spreader = await spread_bots(self, cluster)
        if self.spreader is not None:  # decisions made here may be sent by another instance
            self.settler = Settler(self)
            with contextlib.suppress(Exception):
                await self.settler.seed()
            sup.add("settle", self.settler.run)
        await self._start_receivers()

    def owns(self, bot_id: int) -> bool:
        """This instance polls and sends for ``bot_id`` (always, with one instance)."""
        return self.spreader is None or self.spreader.owns(bot_id)

    async def stop(self) -> None:
        """Stop within a few seconds; nothing decided is lost (it stays queued)."""
        if not self.started:
            return
        self.started = False
        if self.spreader is not None:  # no bot gained (and polled) while stopping
            await self.spreader.halt()
        await self.supervisor.stop(
            [n for n, w in self.supervisor.workers.items() if w.group in ("workers", "receivers")],
            grace_s=1.0,
        )
        with contextlib.suppress(Exception):
            await wait_for(self._drain_enqueue(), 2.0)
        if self.gate is not None:
            await self.gate.stop(grace_s=2.0)
        await self.supervisor.stop(grace_s=1.0)
        if self.spreader is not None:  # polling and sending stopped: hand every bot over
            await self.spreader.stop()
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
            "bot_leases": self.spreader.describe() if self.spreader is not None else None,
            "chats": len(self.roster.chats),
            "last_message_by_bot": dict(self.last_by_bot),
            "last_message_by_chat": dict(self.last_by_chat),
            "outbox_depth": self.outbox_depth,
            "error_rate": self.error_rate.describe(),
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
