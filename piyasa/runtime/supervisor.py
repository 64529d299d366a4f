"""Supervision: named worker tasks restarted with exponential back-off when they crash.

Why a worker died is recorded (in memory for the health snapshot, as a metric, and as a
``worker_events`` row through ``on_event``); a worker that ran for ``stable_s`` before
crashing starts again from the shortest back-off.

``on_event(worker, kind, detail)`` kinds: ``crashed`` (each time it stopped),
``recovered`` (once after a crash, when the restarted worker has run ``stable_s`` seconds
without crashing again: the crash incident ends; a crash loop never gets there, so it
stays one open incident) and ``restarted`` (an operator's restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class WorkerState:
    name: str
    factory: Callable[[], Awaitable[None]]
    group: str = "core"
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    started_at: float = 0.0
    running: bool = False
    backoff: float = 0.0
    history: list[str] = field(default_factory=list)
    crashed: bool = False  # crashed since it last ran ``stable_s`` (a recovery is owed)


class Supervisor:
    def __init__(
        self,
        on_event: Callable[[str, str, str], None] | None = None,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_s: float = 60.0,
    ) -> None:
        self.on_event = on_event or (lambda _w, _k, _d: None)
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stable_s = stable_s
        self.workers: dict[str, WorkerState] = {}
        self._stopping = False

    def add(self, name: str, factory: Callable[[], Awaitable[None]], group: str = "core") -> None:
        state = self.workers[name] = WorkerState(name, factory, group)
        if not self._stopping:
            state.task = asyncio.create_task(self._run(state), name=f"fleet:{name}")

    def _stable(self, st: WorkerState, started_at: float) -> None:
        """``st`` has run ``stable_s`` since ``started_at``: its last crash is over."""
        if st.crashed and st.running and st.started_at == started_at and not self._stopping:
            st.crashed = False
            self.on_event(st.name, "recovered", f"running again for {self.stable_s:g} s")

    async def _run(self, st: WorkerState) -> None:
        while not self._stopping:
            st.started_at = time.monotonic()
            st.running = True
            timer = (
                asyncio.get_running_loop().call_later(
                    self.stable_s, self._stable, st, st.started_at
                )
                if st.crashed
                else None
            )
            try:
                await st.factory()
                reason = "returned"
            except asyncio.CancelledError:
                st.running = False
                raise
            except Exception as exc:
                tb = traceback.extract_tb(exc.__traceback__)
                where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
                reason = f"{type(exc).__name__}: {str(exc)[:300]}{where}"
            finally:
                if timer is not None:
                    timer.cancel()
            st.running = False
            if self._stopping:
                return
            ran = time.monotonic() - st.started_at
            st.backoff = (
                self.min_backoff
                if ran >= self.stable_s or not st.backoff
                else min(self.max_backoff, st.backoff * 2)
            )
            st.restarts += 1
            st.last_error = reason
            st.last_error_at = time.time()
            st.history = [*st.history[-9:], reason]
            st.crashed = True
            log.warning("worker %s stopped (%s); restarting in %.1fs", st.name, reason, st.backoff)
            self.on_event(st.name, "crashed", reason)
            await asyncio.sleep(st.backoff)

    def active(self) -> int:
        return sum(1 for w in self.workers.values() if w.running)

    def total(self) -> int:
        return len(self.workers)

    async def restart(self, group: str | None = None) -> int:
        """Cancel and start again the workers of ``group`` (all when None)."""
        targets = [w for w in self.workers.values() if group is None or w.group == group]
        for w in targets:
            if w.task is not None:
                w.task.cancel()
                with contextlib.suppress(BaseException):
                    await w.task
            self.on_event(w.name, "restarted", "operator request")
            w.task = asyncio.create_task(self._run(w), name=f"fleet:{w.name}")
        return len(targets)

    async def remove(self, name: str) -> None:
        w = self.workers.pop(name, None)
        if w and w.task:
            w.task.cancel()
            with contextlib.suppress(BaseException):
                await w.task

    async def stop(self, names: list[str] | None = None, grace_s: float = 2.0) -> None:
        if names is None:
            self._stopping = True
        targets = [w for w in self.workers.values() if names is None or w.name in names]
        tasks = [w.task for w in targets if w.task is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    def describe(self) -> dict[str, Any]:
        return {
            name: {
                "running": w.running,
                "group": w.group,
                "restarts": w.restarts,
                "last_error": w.last_error,
            }
            for name, w in self.workers.items()
        }
