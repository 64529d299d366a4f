"""Fleet bots spread across instances: each bot's polling and sending is owned by the one
instance holding its lease (``bot:<id>``, in the same store as the singleton roles).

    spreader = BotSpreader(backend, instance_id, bots=..., live=..., on_gain=..., on_loss=...)
    await spreader.start()       # first round awaited: a lone instance owns every bot now
    spreader.owns(bot_id)        # poll / send only while True
    await spreader.stop()        # stop the work (the fleet did), then release every lease

**Fair share.** Each round (every ``renew_s``) an instance counts the live instances
(``live()``: rows of ``instances`` with a fresh heartbeat), aims at
``ceil(bots / live)`` bots, renews the leases it holds and takes free or expired ones up
to that share — in **one** statement (PostgreSQL) or script (Redis) for all its bots.
Holding more than its share (an instance joined), it gives the excess back gracefully:
the bot's work stops first (``on_loss(bot, graceful=True)`` lets the long poll end), and
only then is the lease released, so a bot is never polled by two instances. An instance
that died simply stops renewing: its leases expire after ``ttl_s`` and the others take
them at their next round (≤ ttl + renew ≈ 13 s).

Bots left free for ``ORPHAN_ROUNDS`` rounds in a row (their owner is cut off from the
lease store but still heartbeats, so it still counts live) are taken beyond the share;
the next rounds even the share out again.

**Stop margin** (as :mod:`piyasa.cluster.elector`): an owner that cannot renew stops
every bot's work ``stop_margin_s`` before its leases can expire elsewhere (hard:
``on_loss(bot, graceful=False)``), measured on the monotonic clock from before the last
successful renewal was sent — unless it was alone at the last heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable

from piyasa.cluster.elector import RENEW_S, STOP_MARGIN_S, TTL_S
from piyasa.cluster.lease import FREE_LEFT, LeaseBackend
from piyasa.tasks import cancel_and_wait, wait_for

log = logging.getLogger(__name__)
PREFIX = "bot:"
ORPHAN_ROUNDS = 3  # free bots seen this many rounds in a row are taken beyond the share

GainHook = Callable[[int], Awaitable[None]]
LossHook = Callable[[int, bool], Awaitable[None]]


def lease_name(bot_id: int) -> str:
    return f"{PREFIX}{bot_id}"


def fair_share(bots: int, live: int) -> int:
    """Bots one instance aims at: ``ceil(bots / live)`` (``live`` counts this one)."""
    return math.ceil(bots / max(1, live)) if bots else 0


class BotSpreader:
    def __init__(
        self,
        backend: LeaseBackend,
        instance_id: str,
        *,
        bots: Callable[[], list[int]],
        live: Callable[[], Awaitable[int]],
        on_gain: GainHook,
        on_loss: LossHook,
        ttl_s: float = TTL_S,
        renew_s: float = RENEW_S,
        stop_margin_s: float = STOP_MARGIN_S,
        graceful_s: float = 35.0,
        clock: Callable[[], float] = time.monotonic,
        alone: Callable[[], bool] | None = None,
    ) -> None:
        """``bots``: the fleet bots to spread (enabled, with a token); ``live``: live
        instances counting this one; ``on_gain(bot)`` starts a bot's work here;
        ``on_loss(bot, graceful)`` stops it (graceful: may wait for the long poll to end,
        at most ``graceful_s`` seconds; else within ``stop_margin_s``)."""
        if not 0 < renew_s < ttl_s - stop_margin_s:
            raise ValueError("renew_s must be shorter than ttl_s - stop_margin_s")
        self.backend, self.instance_id = backend, instance_id
        self.bots, self.live = bots, live
        self.on_gain, self.on_loss = on_gain, on_loss
        self.ttl_s, self.renew_s, self.stop_margin_s = ttl_s, renew_s, stop_margin_s
        self.graceful_s = graceful_s
        self.clock, self.alone = clock, alone
        self.owned: dict[int, int] = {}  # bot id -> lease epoch
        self.leaving: set[int] = set()  # being handed back (work stopping, lease still ours)
        self.valid_until = 0.0  # monotonic: every owned bot's work stops by then
        self.target = 0
        self.instances = 1
        self.rounds = 0
        self.orphaned = 0  # rounds in a row that left free bots untaken
        self.gains = self.losses = 0
        self._task: asyncio.Task[None] | None = None
        self._handovers: set[asyncio.Task[None]] = set()

    # -- what the fleet asks ---------------------------------------------------------------
    def owns(self, bot_id: int) -> bool:
        """True while this instance may poll and send for ``bot_id``."""
        return (
            bot_id in self.owned and bot_id not in self.leaving and self.clock() < self.valid_until
        )

    def owned_ids(self) -> set[int]:
        """Bots this instance may poll and send for now."""
        if self.clock() >= self.valid_until:
            return set()
        return set(self.owned) - self.leaving

    def describe(self) -> dict[str, object]:
        return {
            "owned": sorted(self.owned_ids()),
            "leaving": sorted(self.leaving),
            "target": self.target,
            "instances": self.instances,
        }

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """First round awaited, with its bots' work started: a lone instance owns every
        bot when this returns."""
        await self.round()
        starting = [t for t in self._handovers if t.get_name() == "bot-leases-gain"]
        if starting:
            await asyncio.wait(starting)
        self._task = asyncio.create_task(self._run(), name="bot-leases")

    async def halt(self) -> None:
        """No more rounds (nothing gained or renewed from now on); leases stay ours."""
        for task in [self._task, *self._handovers]:
            if task is not None:
                await cancel_and_wait(task)
        self._task = None

    async def stop(self) -> None:
        """Stop every bot's work (if the fleet has not already), then release all."""
        await self.halt()
        for bot in list(self.owned):
            with contextlib.suppress(Exception):
                await wait_for(self.on_loss(bot, False), self.stop_margin_s)
        names = [lease_name(b) for b in self.owned]
        self.owned.clear()
        self.leaving.clear()
        with contextlib.suppress(Exception):
            await wait_for(self.backend.release_many(self.instance_id, names), 2)

    async def _run(self) -> None:
        while True:
            wait = self.renew_s
            if self.owned:
                wait = min(wait, max(0.0, self.valid_until - self.clock()))
            await asyncio.sleep(wait)
            if self.owned and self.clock() >= self.valid_until:
                await self._lose_all("leases not renewed in time")
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a hook failed: the next round tries again
                log.warning("bot leases: round failed: %s", type(exc).__name__)

    # -- one round -------------------------------------------------------------------------
    async def round(self) -> None:
        """Count instances, hand back the excess, renew ours and take our share."""
        self.rounds += 1
        wanted = set(self.bots())
        for bot in [b for b in self.owned if b not in wanted and b not in self.leaving]:
            await self._drop(bot, graceful=False, why="no longer in the fleet")
        with contextlib.suppress(Exception):
            self.instances = max(1, await wait_for(self.live(), self.renew_s))
        self.target = fair_share(len(wanted), self.instances)
        active = sorted(set(self.owned) - self.leaving)
        for bot in active[self.target :]:  # the excess, newest ids first out
            self._handover(bot)
        active = active[: self.target]
        free = [b for b in wanted if b not in self.owned]
        random.shuffle(free)  # two instances taking at once rarely race for the same ones
        sent = self.clock()
        budget = self.renew_s if not self.owned else max(0.05, self.valid_until - sent)
        keep = [lease_name(b) for b in sorted(self.owned)]
        try:
            held = await wait_for(
                self.backend.hold_many(
                    self.instance_id,
                    keep,
                    [lease_name(b) for b in free],
                    # bots nobody took for a few rounds (their owner is cut off from the
                    # lease store but still counted live): take them beyond the share
                    len(free) if self.orphaned >= ORPHAN_ROUNDS else self.target - len(active),
                    self.ttl_s,
                ),
                budget,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("bot leases: %s unreachable: %s", self.backend.kind, type(exc).__name__)
            if self.owned and self.alone is not None and self.alone():
                self.valid_until = self.clock() + self.ttl_s - self.stop_margin_s
            elif self.owned and self.clock() >= self.valid_until:
                await self._lose_all("lease store unreachable")
            return
        self.valid_until = sent + self.ttl_s - self.stop_margin_s
        left = held.pop(FREE_LEFT, 0)
        self.orphaned = self.orphaned + 1 if left else 0
        got = {int(n[len(PREFIX) :]): e for n, e in held.items() if n.startswith(PREFIX)}
        for bot in [b for b in self.owned if b not in got]:
            self.leaving.discard(bot)
            await self._drop(bot, graceful=False, why="another instance holds its lease")
        fresh = [b for b in got if b not in self.owned]
        for bot in fresh:
            self.owned[bot] = got[bot]
            self.gains += 1
        if fresh:  # started beside the renewals: a slow start must not stop them
            task = asyncio.create_task(self._start_work(fresh), name="bot-leases-gain")
            self._handovers.add(task)
            task.add_done_callback(self._handovers.discard)

    async def _start_work(self, bots: list[int]) -> None:
        for bot in bots:
            if not self.owns(bot):
                continue
            try:
                await self.on_gain(bot)
            except Exception as exc:
                log.warning("bot %s: start failed (%s)", bot, type(exc).__name__)

    def _handover(self, bot: int) -> None:
        """Give ``bot`` back: stop its work (gracefully), then release its lease."""
        self.leaving.add(bot)
        task = asyncio.create_task(self._hand_back(bot), name=f"bot-handover-{bot}")
        self._handovers.add(task)
        task.add_done_callback(self._handovers.discard)

    async def _hand_back(self, bot: int) -> None:
        try:
            await wait_for(self.on_loss(bot, True), self.graceful_s)
        except Exception as exc:
            log.warning("bot %s: graceful stop failed (%s)", bot, type(exc).__name__)
            await self.on_loss(bot, False)
        if bot in self.owned and self.clock() < self.valid_until:
            await self.backend.release_many(self.instance_id, [lease_name(bot)])
        self.owned.pop(bot, None)
        self.leaving.discard(bot)
        self.losses += 1
        log.info("bot %s: handed back to the fleet (share %s)", bot, self.target)

    async def _drop(self, bot: int, *, graceful: bool, why: str) -> None:
        self.owned.pop(bot, None)
        self.losses += 1
        log.warning("bot %s: no longer owned here (%s)", bot, why)
        try:
            await wait_for(self.on_loss(bot, graceful), self.stop_margin_s)
        except Exception as exc:
            log.warning("bot %s: stopping failed: %s", bot, type(exc).__name__)

    async def _lose_all(self, why: str) -> None:
        for task in list(self._handovers):
            task.cancel()
        for bot in list(self.owned):
            self.leaving.discard(bot)
            await self._drop(bot, graceful=False, why=why)
