"""Start-up readiness of `piyasa up`: which parts are starting, ready or failed, and why.

`/readyz` serves :meth:`Readiness.to_json`; the start-up banner prints :meth:`Readiness.finish`.
Light on purpose (standard library only): the web server imports it before anything heavy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

PENDING, STARTING, READY, FAILED, STOPPED = "pending", "starting", "ready", "failed", "stopped"


def process_started_at() -> float:
    """Wall-clock time (s since the epoch) this process was launched; ``time.time()`` when
    the OS does not say. Linux reports it in clock ticks (10 ms)."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:
        return time.time()


def _redact(text: str) -> str:
    """`/readyz` is public: no secret in a failure's reason."""
    from piyasa.logs import REDACTOR

    return REDACTOR(text)


@dataclass
class Part:
    """One part of start-up: ``state`` is pending/starting/ready/failed/stopped."""

    name: str
    state: str = PENDING
    detail: str = ""
    seconds: float | None = None  # how long it took to start (s), once ready or failed
    _began: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "state": self.state}
        if self.detail:
            out["detail"] = self.detail
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 2)
        return out


class Readiness:
    """The parts start-up expects, in start order, and their states.

    Ready once every expected part is ready and :meth:`finish` was called. ``live_check``
    (set once the database is up) is awaited by `/readyz` after start-up; it returns extra
    fields, or raises when a dependency the process needs is gone.
    """

    def __init__(self, launched_at: float | None = None) -> None:
        self.launched_at = launched_at if launched_at is not None else process_started_at()
        self.parts: dict[str, Part] = {}
        self.ready_after_s: float | None = None
        self.live_check: Callable[[], Awaitable[dict[str, Any]]] | None = None

    def expect(self, *names: str) -> None:
        for name in names:
            self.parts.setdefault(name, Part(name))

    def since_launch(self) -> float:
        """Seconds since the process was launched."""
        return max(0.0, time.time() - self.launched_at)

    @contextlib.contextmanager
    def part(self, name: str, detail: str = "") -> Iterator[Part]:
        """Mark ``name`` starting for the block; ready when it ends, failed (with the
        error's first line) when it raises, stopped when start-up is cancelled."""
        import asyncio

        part = self.parts.setdefault(name, Part(name))
        part.state, part.detail, part._began = STARTING, detail, time.monotonic()
        try:
            yield part
        except asyncio.CancelledError:
            part.state, part.detail = STOPPED, "start-up was stopped"
            raise
        except BaseException as exc:
            part.state = FAILED
            part.detail = _redact((str(exc).splitlines() or [type(exc).__name__])[0][:300])
            part.seconds = time.monotonic() - part._began
            raise
        part.state, part.seconds, part.detail = READY, time.monotonic() - part._began, ""

    def mark(self, name: str, problem: str | None) -> None:
        """Set a part that starts outside a :meth:`part` block: ready, or failed and why."""
        part = self.parts.setdefault(name, Part(name))
        part.state, part.detail = (READY, "") if problem is None else (FAILED, _redact(problem))

    def finish(self) -> float:
        """Start-up is complete: returns seconds from launch to ready."""
        self.ready_after_s = self.since_launch()
        return self.ready_after_s

    @property
    def ready(self) -> bool:
        return self.ready_after_s is not None and all(p.state == READY for p in self.parts.values())

    @property
    def failed(self) -> list[Part]:
        return [p for p in self.parts.values() if p.state == FAILED]

    def to_json(self) -> dict[str, Any]:
        """``{"status": "starting"|"ready"|"failed"|"stopping", "starting": [names],
        "failed": [{"name", "reason"}], "parts": [...], "since_launch_s": float}``."""
        if self.failed:
            status = "failed"
        elif any(p.state == STOPPED for p in self.parts.values()):
            status = "stopping"
        else:
            status = "ready" if self.ready else "starting"
        out: dict[str, Any] = {
            "status": status,
            "starting": [p.name for p in self.parts.values() if p.state in (PENDING, STARTING)],
            "failed": [{"name": p.name, "reason": p.detail} for p in self.failed],
            "parts": [p.to_json() for p in self.parts.values()],
            "since_launch_s": round(self.since_launch(), 2),
        }
        if self.ready_after_s is not None:
            out["ready_after_s"] = round(self.ready_after_s, 2)
        return out
