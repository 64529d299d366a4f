"""The Telegram component: the fleet's bots (breakers, 429s, error rate over a window of
rounds) and the admin bot's token, checked with getMe."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from piyasa.admin.health.fleet_probes import (
    NOT_RUNNING,
    _breaker_health,
    _breaker_state,
    _error_class,
)
from piyasa.admin.health.model import Reading, State, worst
from piyasa.admin.health.probes import ProbeContext, _num
from piyasa.admin.health.thresholds import Thresholds
from piyasa.admin.health.words import Phrase, phrase


class RateWindow:
    """An error rate over the last ``error_rate_window_s`` seconds, from growing totals.

    Each round adds what the totals grew by since the previous round; rounds older than
    the window fall out. One round (5 s) is too small a sample to judge alone: during a
    429 storm the sender waits out ``retry_after``, so some rounds see no attempt at all,
    and read one round at a time the component flipped healthy/critical every 5 s.

    Detect fast, recover slowly: a round whose own rate is critical makes the component
    critical at once (small samples are padded, see :meth:`Thresholds.error_rate`, so one
    failure among a few sends is not enough), and it stays critical until that round has
    left the window; in between the rate over the whole window decides. One storm is one
    incident in the history, not a flicker.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self._rounds: deque[tuple[float, int, int]] = deque()
        self._bad_at: float | None = None  # when a round's own rate was last critical

    def observe(
        self, at: float, errors_total: float, attempts_total: float, thresholds: Thresholds
    ) -> tuple[int, int, State]:
        """Record this round's totals (``at``: monotonic seconds); returns the errors and
        attempts in the window and the state they give."""
        window_s = thresholds.error_rate_window_s
        last, self._last = self._last, (errors_total, attempts_total)
        if last is None:  # the first round only sets the baseline
            errors = attempts = 0
        elif errors_total < last[0] or attempts_total < last[1]:
            # the counters restarted (a new fleet): all they hold is new
            errors, attempts = int(errors_total), int(attempts_total)
        else:
            errors, attempts = int(errors_total - last[0]), int(attempts_total - last[1])
        while self._rounds and self._rounds[0][0] < at - window_s:
            self._rounds.popleft()
        if errors or attempts:
            self._rounds.append((at, errors, attempts))
        if thresholds.error_rate(errors, attempts) is State.CRITICAL:
            self._bad_at = at
        in_window = sum(r[1] for r in self._rounds), sum(r[2] for r in self._rounds)
        state = thresholds.error_rate(*in_window)
        if self._bad_at is not None and at - self._bad_at <= window_s:
            state = State.CRITICAL
        return in_window[0], in_window[1], state


class TelegramProbe:
    """Per bot: breaker state and last error; fleet-wide: share of 429s over the last
    ``error_rate_window_s`` (from the delivery gate's counters, see :class:`RateWindow`);
    the admin bot: getMe once a minute."""

    name = "telegram"
    GETME_EVERY_S = 60.0

    def __init__(self) -> None:
        self._admin: dict[str, Any] | None = None
        self._admin_checked = -1e18
        self._gate = RateWindow()

    async def _admin_bot(self, ctx: ProbeContext) -> dict[str, Any] | None:
        """The admin bot's getMe, at most once a minute (it is not the fleet's to report)."""
        settings = ctx.services.settings
        token = settings.admin_bot_token.reveal() if settings.admin_bot_token else ""
        if not token:
            return None
        if time.monotonic() - self._admin_checked >= self.GETME_EVERY_S or (
            self._admin and not self._admin["getme_ok"]
        ):
            ok, err = await telegram_getme(
                settings.telegram_api_url, token, max(0.05, ctx.thresholds.probe_timeout_s * 0.9)
            )
            self._admin_checked = time.monotonic()
            self._admin = {"getme_ok": ok, "last_getme_at": ctx.now.isoformat(), "error": err}
        return self._admin

    async def check(self, ctx: ProbeContext) -> Reading:
        snap = ctx.fleet if ctx.fleet and ctx.fleet.get("running") else None
        admin = await self._admin_bot(ctx)
        if snap is None and admin is None:
            return Reading(self.name, State.UNKNOWN, NOT_RUNNING)
        t = ctx.thresholds
        per_bot: dict[str, dict[str, Any]] = {}
        states: list[State] = []
        breakers = ((snap or {}).get("breakers") or {}).get("bots") or {}
        for key, desc in breakers.items():
            breaker = _breaker_state(desc)
            state = _breaker_health(breaker)
            states.append(state)
            per_bot[str(key)] = {
                "state": state.value,
                "breaker": breaker,
                "failures": int(_num((desc or {}).get("failures"))),
                "last_error_class": _error_class((desc or {}).get("last_error")),
            }
        if admin is not None:
            state = State.HEALTHY if admin["getme_ok"] else State.CRITICAL
            states.append(state)
            per_bot["admin"] = {"state": state.value, **admin}
        details: dict[str, Any] = {"bots": per_bot}
        n429 = attempts = 0
        if snap is not None:
            # The gate's counters are totals; ``sent`` counts the sends that went through.
            gate = snap.get("gate") or {}
            total_429 = _num(gate.get("count_429"))
            n429, attempts, rate = self._gate.observe(
                ctx.monotonic, total_429, total_429 + _num(gate.get("sent")), t
            )
            states.append(rate)
            details.update(
                recent_429=n429, recent_attempts=attempts, window_s=t.error_rate_window_s
            )
        if not states:
            return Reading(self.name, State.UNKNOWN, "no bots", details)
        bad = sum(1 for b in per_bot.values() if b["state"] != "healthy")
        said = [
            phrase("bots_bad", n=len(per_bot), bad=bad)
            if bad
            else phrase("bots_ok", n=len(per_bot))
        ]
        if n429:
            window = f"{t.error_rate_window_s:g}"
            said.append(phrase("rate_429", n=n429, attempts=attempts, window=window))
        if admin is not None and not admin["getme_ok"]:
            said.append(admin_bot_problem(admin["error"]))
        return Reading.said(self.name, worst(states), said, details, private=frozenset({"bots"}))


def admin_bot_problem(error: str | None) -> Phrase:
    """What a failed getMe of the admin bot means, for the status page and the alert
    (``error``: the Bot API's error code, or the exception class of a call that got no
    answer; see :func:`telegram_getme`). 401 is a revoked or wrong token (Bot API docs)."""
    if error == "401":
        return phrase("admin_token_refused", sep="; ")
    if error and error.isdigit():
        return phrase("admin_getme_code", sep="; ", n=error)
    return phrase("admin_unreachable", sep="; ", error=error or "no answer")


async def telegram_getme(api_url: str, token: str, deadline_s: float) -> tuple[bool, str | None]:
    """Call getMe; the URL holds the token, so it is never logged or returned."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{api_url.rstrip('/')}/bot{token}/getMe",
                timeout=aiohttp.ClientTimeout(total=deadline_s),
            ) as resp,
        ):
            body = await resp.json(content_type=None)
            if body.get("ok"):
                return True, None
            return False, f"{body.get('error_code', resp.status)}"
    except Exception as exc:
        return False, type(exc).__name__
