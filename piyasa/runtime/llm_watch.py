"""LLM health that tells the truth: real outcomes, and an active probe when they are missing.

The fleet's generations show how the LLM endpoint is doing only while it generates. A
slow chatter budget (12 messages a minute is one call every 5 s), a paused fleet or an
open breaker means few calls or none: read as "breaker closed = healthy", a dead endpoint
took about 22 s to show, and closing the breaker by hand ([Reset breaker]) read as
healthy at once, posting a false "Resolved" and then a second alert. Now:

* ``LLMOutcomes`` records every real call: the last success (a generation, or a probe
  that got an answer), the last failure with its class, and the failures in a row.
  Resetting the breaker is not an outcome: it only lets calls through again.
* ``LLMWatch`` probes the endpoint itself, with a one-token chat completion (the very call
  the fleet depends on), whenever no real success happened within
  ``LLM_SUCCESS_WINDOW_S``: every ``LLM_PROBE_EVERY_S`` while that lasts and the last
  outcome was a failure, every ``LLM_IDLE_PROBE_S`` while the fleet is quiet and the
  endpoint fine. Never during an open breaker's cool-down (no call then, by design); a
  probe that gets an answer once it ends closes the breaker.
* The health probe (``piyasa.admin.health.llm``) reads these facts from the fleet's
  snapshot: healthy only after a real success; critical when the last outcome failed and
  no success came within the window, or the breaker is open. With the defaults a dead
  endpoint reads critical within one window plus one health round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from piyasa.runtime.breaker import CLOSED, OPEN
from piyasa.tasks import wait_for

if TYPE_CHECKING:
    from piyasa.runtime.llm import Generator

log = logging.getLogger(__name__)

LLM_SUCCESS_WINDOW_S = 5.0  # no real success for this long: probe; with a failure: critical
LLM_PROBE_EVERY_S = 2.0  # probing pace while there is no recent success
LLM_IDLE_PROBE_S = 60.0  # probing pace while the fleet is quiet and the last probe answered
LLM_PROBE_TIMEOUT_S = 5.0  # a probe without an answer by then is a failure ("timeout")
LLM_WATCH_TICK_S = 0.5  # how often the watch looks (real seconds)


@dataclass
class LLMOutcomes:
    """What really happened on the endpoint; times come from ``clock`` (seconds)."""

    clock: Callable[[], float] = time.monotonic
    last_success_at: float | None = None
    last_success_by: str | None = None  # "generation" | "probe"
    last_failure_at: float | None = None
    last_failure_by: str | None = None
    last_error_kind: str | None = None
    last_error: str | None = None
    failures_in_row: int = 0
    probes: int = 0
    probe_failures: int = 0
    last_probe_at: float | None = None
    last_probe_ok: bool | None = None
    _probing: bool = field(default=False, repr=False)
    # told (kind, error, ok) on each failure and on the success that ends a failure streak:
    # the fleet publishes auth/quota errors as notifications (piyasa.admin.notify.producers)
    on_change: Callable[[str | None, str | None, bool], None] | None = field(
        default=None, repr=False
    )

    def success(self, by: str) -> None:
        was_failing = self.failures_in_row > 0
        self.last_success_at, self.last_success_by = self.clock(), by
        self.failures_in_row = 0
        if was_failing and self.on_change is not None:
            self.on_change(None, None, True)

    def failure(self, by: str, kind: str, error: str) -> None:
        self.last_failure_at, self.last_failure_by = self.clock(), by
        self.last_error_kind, self.last_error = kind, error[:300]
        self.failures_in_row += 1
        if self.on_change is not None:
            self.on_change(kind, self.last_error, False)

    @property
    def failing(self) -> bool:
        """Was the latest real outcome a failure?"""
        if self.last_failure_at is None:
            return False
        return self.last_success_at is None or self.last_failure_at >= self.last_success_at

    def probe_due(self) -> bool:
        """No success within the window (see the module docstring for the pace)."""
        now = self.clock()
        if self._probing:
            return False
        if self.last_success_at is not None and now - self.last_success_at < LLM_SUCCESS_WINDOW_S:
            return False
        since = None if self.last_probe_at is None else now - self.last_probe_at
        if since is None:
            return True
        if self.failing or not self.last_probe_ok:
            return since >= LLM_PROBE_EVERY_S
        return since >= LLM_IDLE_PROBE_S

    def describe(self) -> dict[str, Any]:
        """Ages in seconds (None: never), for the snapshot and the health probe."""
        now = self.clock()

        def age(at: float | None) -> float | None:
            return None if at is None else round(max(0.0, now - at), 2)

        return {
            "window_s": LLM_SUCCESS_WINDOW_S,
            "last_success_age_s": age(self.last_success_at),
            "last_success_by": self.last_success_by,
            "last_failure_age_s": age(self.last_failure_at),
            "last_failure_by": self.last_failure_by,
            "last_error_kind": self.last_error_kind,
            "last_error": self.last_error,
            "failing": self.failing,
            "failures_in_row": self.failures_in_row,
            "probes": self.probes,
            "probe_failures": self.probe_failures,
            "last_probe_age_s": age(self.last_probe_at),
            "last_probe_ok": self.last_probe_ok,
        }


class LLMWatch:
    """The fleet's supervised worker that probes the LLM when generations say nothing."""

    def __init__(self, generator: Callable[[], Generator | None]) -> None:
        self.generator = generator
        self._poke = asyncio.Event()

    def poke(self) -> None:
        """Look now (e.g. right after an operator reset the breaker)."""
        self._poke.set()

    async def run(self) -> None:
        while True:
            gen = self.generator()
            # In-process providers (the offline generator) have no endpoint to probe, and an
            # open breaker's cool-down means no call at all (it reads critical meanwhile).
            probes = (
                gen is not None
                and hasattr(gen.provider, "probe")
                and not (gen.breaker.state == OPEN and gen.breaker.wait() > 0)
            )
            if probes and (gen.outcomes.probe_due() or self._poke.is_set()):
                self._poke.clear()
                await probe(gen)
            with contextlib.suppress(TimeoutError):
                await wait_for(self._poke.wait(), LLM_WATCH_TICK_S)


async def probe(gen: Generator) -> bool:
    """One probe through ``gen``'s provider (``provider.probe``, outside the breaker); True
    when the endpoint answered."""
    from piyasa.runtime.llm import LLMError, Prompt

    out = gen.outcomes
    out._probing = True
    out.probes += 1
    prompt = Prompt([{"role": "user", "content": "Reply with: OK"}], "probe", "en", {})
    try:
        async with asyncio.timeout(LLM_PROBE_TIMEOUT_S):
            await gen.provider.probe(prompt)
    except Exception as exc:
        if isinstance(exc, LLMError):
            kind, error = exc.kind, str(exc)  # "<SDK error class>: <message>", as generations
        elif isinstance(exc, TimeoutError):
            kind, error = "timeout", f"APITimeoutError: no answer within {LLM_PROBE_TIMEOUT_S:g} s"
        else:  # a provider bug must not stop the watch
            kind, error = "server", f"{type(exc).__name__}: {exc}"
        out.probe_failures += 1
        out.last_probe_ok = False
        out.failure("probe", kind, error)
        log.warning("LLM probe of %s failed: %s", gen.provider.name, out.last_error)
        return False
    finally:
        out._probing = False
        out.last_probe_at = out.clock()
    out.last_probe_ok = True
    out.success("probe")
    if gen.breaker.state != CLOSED:
        gen.breaker.success()  # the endpoint answers: let generations through again
    return True
