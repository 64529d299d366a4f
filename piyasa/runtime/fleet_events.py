"""The fleet's events, errors and breaker changes: recorded, counted and published."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from piyasa.admin.notify import producers
from piyasa.admin.notify.events import Event, emit
from piyasa.db.base import utcnow
from piyasa.db.runtime_models import WorkerEvent
from piyasa.logs import REDACTOR
from piyasa.runtime.breaker import OPEN, STATE_VALUE, CircuitBreaker
from piyasa.runtime.error_rate import Transition


class FleetEvents:
    """Part of :class:`piyasa.runtime.fleet.Fleet`; uses the attributes its ``__init__`` sets."""

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

    def _outcome(self, ok: bool) -> None:
        """A message attempt ended (``ok``: sent; not: an LLM error or a Telegram refusal)."""
        self._error_rate_changed(self.error_rate.record(ok))

    def _error_rate_changed(self, change: Transition | None) -> None:
        if change is not None:
            self._notify(
                producers.error_rate_event(
                    change.failed, change.attempts, self.error_rate.window_s, firing=change.firing
                )
            )
