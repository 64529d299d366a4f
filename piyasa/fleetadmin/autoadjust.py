"""Warn before Telegram's limits, and scale the fleet down on a 429 trend, then back up.

Every ``tick_s`` (on the fleet's clock, which tests and benchmarks move) the adjuster:

1. **Warns.** A (bot, chat) pair, a bot or the whole fleet using more than 80 % of a limit
   (``piyasa.fleetadmin.limits.utilisation``) for ``warn_after_s`` (5 minutes) raises one
   ``limit_warning`` event; it may warn again once the use has dropped below 80 %.
2. **Scales down.** ``autoadjust_trigger_429`` or more 429s within a minute (and at least
   that many since the last step, ``settle_s`` ago or more, so a step shows its effect
   first) halve ``scale_factor``, never below the operator's floor
   ``autoadjust_min_scale``. The operator's value is kept in ``autoadjust_operator_scale``.
3. **Returns slowly.** Once no 429 came for ``quiet_s`` (2 minutes), ``scale_factor``
   rises by a tenth of the operator's value every ``step_s`` (a minute) until it is the
   operator's value again.

An operator who sets ``scale_factor`` meanwhile (or undoes a step) wins: that value is the
operator's from then on. Every change is written as actor ``system`` through
:func:`write_setting` (versioned, audited, visible in the settings history and undoable)
and announced through :func:`emit`, the one place events leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime
from typing import Any

from piyasa.admin import audit
from piyasa.fleetadmin.limits import WARN_SHARE, utilisation
from piyasa.fleetadmin.settings import change_setting

log = logging.getLogger(__name__)

SYSTEM = "system"
SETTLE_S = 15.0
QUIET_S = 120.0
STEP_S = 60.0
WARN_AFTER_S = 300.0
DOWN_FACTOR = 0.5
UP_SHARE = 0.1


async def write_setting(
    services: Any, store: Any, key: str, value: Any, *, actor: str, reason: str
) -> dict[str, Any]:
    """Change one fleet setting as ``actor`` through the settings service (validated
    against its catalogue, versioned, audited, in /settings' history and Undo) and have
    ``store`` read it at once. Returns ``{"key", "old", "new", "version"}``."""
    change = await change_setting(services, key, str(value), actor=actor, reason=reason)
    await store.refresh()
    return {"key": key, "old": change.old, "new": change.new, "version": change.version}


async def undo_last_system_change(services: Any, store: Any, *, actor: str) -> dict | None:
    """Put ``scale_factor`` back to its value before the system's last change (as
    ``actor``, audited). None when the system changed nothing (or it was undone)."""
    rows = await audit.recent(services, limit=20, action="settings.set", target="scale_factor")
    last = next((r for r in rows if r.result == "ok"), None)
    if last is None or last.actor != SYSTEM:
        return None
    old = (last.params or {}).get("old")
    if old is None:
        return None
    change = await write_setting(
        services, store, "scale_factor", float(old), actor=actor, reason="undo of system change"
    )
    # The operator's choice now: nothing to return to.
    await store.set("autoadjust_operator_scale", None, actor)
    return change


_WORDS = {
    "limit_warning": "{who} above {use} % of a Telegram send limit for {minutes} min",
    "scale_down": "{n429} x 429 within a minute: scale_factor {old} -> {new} "
    "(the operator's value {to} returns once 429s stop)",
    "scale_up": "no 429 for a while: scale_factor {old} -> {new} (on the way back to {to})",
    "scale_restored": "scale_factor back to the operator's value {new}",
}


def describe(kind: str, params: dict[str, Any]) -> str:
    """The event in one English line (logs, worker events; chat renders its own words)."""
    who = {
        "pair": f"bot {params.get('bot_id')} in chat {params.get('chat_id')}",
        "bot": f"bot {params.get('bot_id')}",
    }.get(str(params.get("subject")), "the fleet")
    try:
        return _WORDS[kind].format(who=who, **params)
    except (KeyError, IndexError):
        return f"{kind}: {params}"


class AutoAdjuster:
    """The fleet's rate-limit watcher; a supervised worker of the fleet (``run``)."""

    def __init__(
        self,
        fleet: Any,
        *,
        tick_s: float = 5.0,
        settle_s: float = SETTLE_S,
        quiet_s: float = QUIET_S,
        step_s: float = STEP_S,
        warn_after_s: float = WARN_AFTER_S,
    ) -> None:
        self.fleet = fleet
        self.tick_s = tick_s
        self.settle_s = settle_s
        self.quiet_s = quiet_s
        self.step_s = step_s
        self.warn_after_s = warn_after_s
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self.last_written: float | None = None
        self.last_down_at = -1e18
        self.last_change_at = -1e18
        self.above_since: dict[tuple[Any, ...], float] = {}
        self.warned: set[tuple[Any, ...]] = set()
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bad tick must not end the watcher
                log.warning("autoadjust tick failed: %s", type(exc).__name__)

    async def step(self) -> None:
        """One look: warnings, then at most one change of ``scale_factor``."""
        now = self.fleet.clock()
        self._warnings(now)
        st = self.fleet.settings_store
        if st.get("autoadjust_enabled"):
            await self._adjust(now, st)
        self.ticks += 1

    # -- warnings -------------------------------------------------------------------------

    def _warnings(self, now: float) -> None:
        uses = utilisation(self.fleet)
        for subject in list(self.above_since):
            if uses.get(subject, 0.0) < WARN_SHARE:
                del self.above_since[subject]
                self.warned.discard(subject)
        for subject, use in uses.items():
            if use < WARN_SHARE:
                continue
            since = self.above_since.setdefault(subject, now)
            if now - since >= self.warn_after_s and subject not in self.warned:
                self.warned.add(subject)
                params: dict[str, Any] = {"subject": subject[0], "use": round(use * 100)}
                if subject[0] == "pair":
                    params.update(bot_id=subject[1], chat_id=subject[2])
                elif subject[0] == "bot":
                    params.update(bot_id=subject[1])
                params["minutes"] = round((now - since) / 60)
                self.emit("limit_warning", params)

    # -- scale_factor -----------------------------------------------------------------------

    async def _adjust(self, now: float, st: Any) -> None:
        rates = self.fleet.rates
        scale = st.number("scale_factor")
        op_raw = st.get("autoadjust_operator_scale")
        op = None if op_raw is None else float(op_raw)
        if self.last_written is not None and abs(scale - self.last_written) > 1e-9:
            # Someone else set it (an operator, an Undo): that is the operator's value now.
            self.last_written = None
            if op is not None:
                await st.set("autoadjust_operator_scale", None, SYSTEM)
                op = None
        trigger = max(1, int(st.number("autoadjust_trigger_429")))
        last_minute = rates.refusals_since(60.0)
        since_step = [r for r in last_minute if r.at > self.last_down_at]
        floor = max(0.0, st.number("autoadjust_min_scale"))
        if (
            len(last_minute) >= trigger
            and len(since_step) >= trigger
            and now - self.last_down_at >= self.settle_s
            and scale > floor + 1e-9
        ):
            new = max(floor, round(scale * DOWN_FACTOR, 3))
            if op is None:
                await st.set("autoadjust_operator_scale", scale, SYSTEM)
                op = scale
            await self._write(new, f"{len(last_minute)} x 429 in the last minute")
            self.last_down_at = now
            self.emit("scale_down", {"old": scale, "new": new, "n429": len(last_minute), "to": op})
            return
        if op is None or scale >= op - 1e-9:
            if op is not None:  # back where the operator wants it
                await st.set("autoadjust_operator_scale", None, SYSTEM)
            return
        if rates.refusals_since(self.quiet_s) or now - self.last_change_at < self.step_s:
            return
        new = min(op, round(scale + max(0.01, op * UP_SHARE), 3))
        await self._write(new, f"no 429 for {int(self.quiet_s)} s")
        if new >= op - 1e-9:
            await st.set("autoadjust_operator_scale", None, SYSTEM)
            self.emit("scale_restored", {"old": scale, "new": new})
        else:
            self.emit("scale_up", {"old": scale, "new": new, "to": op})

    async def _write(self, value: float, reason: str) -> None:
        fleet = self.fleet
        await write_setting(
            fleet.services, fleet.settings_store, "scale_factor", value, actor=SYSTEM, reason=reason
        )
        self.last_written = value
        self.last_change_at = fleet.clock()

    # -- the one way out ------------------------------------------------------------------

    def emit(self, kind: str, params: dict[str, Any]) -> None:
        """Announce ``kind`` (limit_warning, scale_down, scale_up, scale_restored).

        Kept for `/limits` (``events``), recorded as a fleet worker event (the health
        page's recent errors, the ``worker_events`` table), logged, and posted to the
        admin chats through the health alerter when it runs. The notifications bus being
        built elsewhere can take this one function over.
        """
        at: datetime = self.fleet.wall()
        event = {"at": at.isoformat(), "kind": kind, **params}
        self.events.append(event)
        detail = describe(kind, params)
        log.warning("fleet limits: %s (%s)", kind, detail)
        self.fleet._event("limits", kind, detail)
        alerter = self.fleet.services.extras.get("health.alerts")
        if alerter is not None and hasattr(alerter, "post"):
            from piyasa.admin.health.alerts import AlertNotice
            from piyasa.admin.health.model import State

            with contextlib.suppress(Exception):
                alerter.post(AlertNotice("firing", "limits", State.WARNING, detail, at, at))
