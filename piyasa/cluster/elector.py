"""Singleton roles by election: each role runs on the one instance holding its lease.

    elector = Elector(backend, instance_id)             # piyasa.cluster.lease backend
    elector.watch("admin", on_gain=start_it, on_loss=stop_it)
    await elector.start()      # first attempt awaited: a lone instance starts its roles now
    elector.is_leader("admin")
    await elector.stop()       # on_loss for held roles, then release: another takes over at once

Timing (defaults): the lease lives ``TTL_S`` = 10 s and is renewed every ``RENEW_S`` = 3 s,
so a dead holder is replaced within TTL + RENEW ≈ 13 s (< 15 s). A holder that cannot renew
(database or Redis away, partitioned, its loop stalled) stops the role's work
``STOP_MARGIN_S`` before the lease could expire elsewhere: its local deadline is measured
on the monotonic clock from *before* the last successful renewal was sent, and the server
sets the expiry after receiving it, so the holder always gives up first. Exception: a
holder that was *alone* at the last heartbeat keeps its roles while the store is away (see
``alone``): with no other instance alive, nobody can take them over meanwhile.

Roles are free-form names; other parts (backups, rollups) call :meth:`Elector.watch` with
their own role name, or ask :meth:`Elector.is_leader` before each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from piyasa.cluster.lease import LeaseBackend
from piyasa.tasks import cancel_and_wait, wait_for

log = logging.getLogger(__name__)
TTL_S = 10.0
RENEW_S = 3.0
STOP_MARGIN_S = 2.0

Hook = Callable[[], Awaitable[None]]


@dataclass
class _Role:
    name: str
    gains: list[Hook] = field(default_factory=list)
    losses: list[Hook] = field(default_factory=list)
    held: bool = False
    valid_until: float = 0.0  # monotonic: stop the work by then unless renewed
    task: asyncio.Task[None] | None = None
    starting: asyncio.Task[None] | None = None  # the on_gain hooks, while they run
    failed: bool = False  # an on_gain hook raised: give the role up at the next round
    changes: int = 0  # gains + losses, for tests and /health


class Elector:
    def __init__(
        self,
        backend: LeaseBackend,
        instance_id: str,
        *,
        ttl_s: float = TTL_S,
        renew_s: float = RENEW_S,
        stop_margin_s: float = STOP_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
        alone: Callable[[], bool] | None = None,
    ) -> None:
        """``alone``: True when no other instance was alive at the last look (the
        heartbeat's count). A holder that cannot reach the lease store keeps its roles
        while alone — nobody could take them over, and the admin bot and the alerts are
        needed most while the database is down — and stops them otherwise."""
        if not 0 < renew_s < ttl_s - stop_margin_s:
            raise ValueError("renew_s must be shorter than ttl_s - stop_margin_s")
        self.backend = backend
        self.instance_id = instance_id
        self.ttl_s, self.renew_s, self.stop_margin_s = ttl_s, renew_s, stop_margin_s
        self.clock = clock
        self.alone = alone
        self.roles: dict[str, _Role] = {}
        self._started = False

    # -- the API other parts use -----------------------------------------------------------
    def watch(self, role: str, on_gain: Hook | None = None, on_loss: Hook | None = None) -> None:
        """Call ``on_gain`` when this instance wins ``role``, ``on_loss`` when it loses it
        (or stops). After :meth:`start`, the role is contested from now on."""
        r = self.roles.setdefault(role, _Role(role))
        if on_gain is not None:
            r.gains.append(on_gain)
        if on_loss is not None:
            r.losses.append(on_loss)
        if self._started and r.task is None:
            r.task = asyncio.create_task(self._run(r, first=True), name=f"lease-{role}")

    def is_leader(self, role: str) -> bool:
        """True while this instance holds ``role`` and its lease is still valid."""
        r = self.roles.get(role)
        return bool(r and r.held and self.clock() < r.valid_until)

    def held(self) -> list[str]:
        return sorted(name for name in self.roles if self.is_leader(name))

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Contest every watched role once (awaited), then keep renewing in the background."""
        self._started = True
        for r in self.roles.values():
            await self._attempt(r)
            if r.starting is not None:  # a lone instance runs its roles when start returns
                await asyncio.wait({r.starting})
        for r in self.roles.values():
            if r.task is None:
                r.task = asyncio.create_task(self._run(r, first=False), name=f"lease-{r.name}")

    async def stop(self) -> None:
        """Stop every role's work, then release its lease so another takes over at once."""
        self._started = False
        for r in self.roles.values():
            await cancel_and_wait(r.task)
            r.task = None
        for r in self.roles.values():
            if r.held:
                await self._lose(r, "stopping")
                with contextlib.suppress(Exception):
                    await wait_for(self.backend.release(r.name, self.instance_id), 2)

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self, r: _Role, *, first: bool) -> None:
        if first:
            await self._attempt(r)
        while True:
            wait = self.renew_s
            if r.held:
                wait = min(wait, max(0.0, r.valid_until - self.clock()))
            await asyncio.sleep(wait)
            if r.held and self.clock() >= r.valid_until:
                await self._lose(r, "lease not renewed in time")
            if r.held and r.failed:
                await self._lose(r, "start failed")
                with contextlib.suppress(Exception):
                    await self.backend.release(r.name, self.instance_id)
                continue
            await self._attempt(r)

    async def _attempt(self, r: _Role) -> None:
        sent = self.clock()
        # never wait past the point where the work must stop
        budget = self.renew_s if not r.held else max(0.05, r.valid_until - sent)
        try:
            ok = await wait_for(self.backend.try_hold(r.name, self.instance_id, self.ttl_s), budget)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "lease %s: %s could not be renewed: %s",
                r.name,
                self.backend.kind,
                type(exc).__name__,
            )
            if r.held and self.alone is not None and self.alone():
                r.valid_until = self.clock() + self.ttl_s - self.stop_margin_s
                return
            if r.held and self.clock() >= r.valid_until:
                await self._lose(r, "lease store unreachable")
            return
        if not ok:
            if r.held:
                await self._lose(r, "another instance holds the lease")
            return
        r.valid_until = sent + self.ttl_s - self.stop_margin_s
        if not r.held:
            await self._gain(r)

    async def _gain(self, r: _Role) -> None:
        """Start the role's work beside the renewals (a slow start must not stop them)."""
        r.held, r.failed = True, False
        r.changes += 1
        log.info("role %s: held by this instance (%s)", r.name, self.instance_id)
        r.starting = asyncio.create_task(self._start_work(r), name=f"role-{r.name}-start")

    async def _start_work(self, r: _Role) -> None:
        try:
            for hook in r.gains:
                await hook()
        except Exception as exc:
            log.warning("role %s: starting failed (%s); giving it up", r.name, type(exc).__name__)
            r.failed = True

    async def _lose(self, r: _Role, why: str) -> None:
        r.held = False
        r.changes += 1
        log.warning("role %s: no longer held by this instance (%s)", r.name, why)
        starting, r.starting = r.starting, None
        if starting is not None:  # never swallows a cancel of the caller (see piyasa.tasks)
            await cancel_and_wait(starting)
        for hook in r.losses:
            try:
                await wait_for(hook(), self.stop_margin_s)
            except Exception as exc:
                log.warning("role %s: stopping failed: %s", r.name, type(exc).__name__)
