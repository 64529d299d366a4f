"""The analytics query API's types, re-exported by ``piyasa.analytics.queries``.

Contract shared with the chat surfaces and the CLI: the dataclasses below are what they
render. Periods are UTC, half-open ``[start, end)``.

Errors carry a catalog key (``key``) and its placeholders (``params``) so each surface can
say what went wrong in the user's language:

- ``PeriodError``: ``analytics.err.period_unknown`` {text},
  ``analytics.err.period_order`` {start, end}, ``analytics.err.period_retention`` {days},
  ``analytics.err.period_future`` {start}.
- ``UnknownBot``: ``analytics.err.unknown_bot`` {bot}.
- ``compare`` with fewer than 2 or more than 5 bots: ``ValueError`` (``CompareError`` with key
  ``analytics.err.compare_count`` {min, max, count}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from piyasa.errors import UserFacingError

#: Rollups are kept this long by default; a period reaching further back is refused.
DEFAULT_RETENTION_DAYS = 400
#: Orders of the bots table; tables a CSV export writes (shell and web API; the chat adds
#: "compare", which takes its bots from buttons).
SORTS = ("messages", "success", "p95", "cost")
EXPORT_TABLES = ("overview", "bots", "bot", "chats", "models")
_RELATIVE = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")


class AnalyticsError(UserFacingError):
    """An analytics request that cannot be answered; nothing was changed."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


class PeriodError(AnalyticsError, ValueError):
    """A period text that is not ``24h``, ``7d``, ``30d`` or ``YYYY-MM-DD..YYYY-MM-DD``."""


class UnknownBot(AnalyticsError, LookupError):
    """No bot with that id (or name) exists."""


class CompareError(AnalyticsError, ValueError):
    """Compare takes 2 to 5 distinct bots."""


@dataclass(frozen=True)
class Period:
    """A UTC window ``[start, end)`` and its label: "24h" | "7d" | "30d" | "2026-11-01..2026-11-07".

    A date range includes both dates (its end is midnight after the second date).
    """

    start: datetime
    end: datetime
    label: str

    @classmethod
    def parse(
        cls, text: str | None, now: datetime, *, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> Period:
        """``None`` or "" -> 24h. Raises ``PeriodError`` for unknown text, from > to, a range
        starting in the future or further back than ``retention_days``."""
        now = now.astimezone(UTC)
        label = (text or "24h").strip().lower()
        if label in _RELATIVE:
            return cls(now - _RELATIVE[label], now, label)
        match = _RANGE.match(label)
        if not match:
            raise PeriodError(
                "analytics.err.period_unknown", f"unknown period {text!r}", text=text or ""
            )
        try:
            first, last = (date.fromisoformat(g) for g in match.groups())
        except ValueError:
            raise PeriodError(
                "analytics.err.period_unknown", f"unknown period {text!r}", text=text or ""
            ) from None
        if first > last:
            raise PeriodError(
                "analytics.err.period_order",
                f"period starts after it ends: {first} > {last}",
                start=first.isoformat(),
                end=last.isoformat(),
            )
        start = datetime.combine(first, time(0), UTC)
        end = datetime.combine(last + timedelta(days=1), time(0), UTC)
        if start > now:
            raise PeriodError(
                "analytics.err.period_future",
                f"period starts in the future: {first}",
                start=first.isoformat(),
            )
        if start < now - timedelta(days=retention_days):
            raise PeriodError(
                "analytics.err.period_retention",
                f"analytics keep {retention_days} days; {first} is older",
                days=retention_days,
            )
        return cls(start, end, f"{first.isoformat()}..{last.isoformat()}")

    def previous(self) -> Period:
        """The period of the same length just before this one (for trends)."""
        length = self.end - self.start
        return Period(self.start - length, self.start, f"prev:{self.label}")

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Figures:
    """Totals for bot messages in a period.

    ``messages`` counts bot messages decided (queued, sent or failed); ``success_rate`` is
    sent/(sent+failed) in 0..1, None when both are 0. Latencies are milliseconds of LLM
    generation; percentiles come from the rollup histogram (≤ 2 % relative error).
    ``rate_limited`` counts failures whose error class is a Telegram 429.
    """

    messages: int
    sent: int
    failed: int
    success_rate: float | None
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    rate_limited: int
    max_ms: float | None = None


@dataclass(frozen=True)
class BotRow:
    bot_id: int
    name: str
    enabled: bool
    figures: Figures


@dataclass(frozen=True)
class Issue:
    """A problem worth a look: ``kind`` in {"error_rate", "slow_p95", "cost_spike", "silent",
    "rate_limited"}; ``value`` measured against ``threshold`` (rates 0..1, ms, USD ratio)."""

    kind: str
    bot_id: int | None
    value: float
    threshold: float


@dataclass(frozen=True)
class ErrorGroup:
    error_class: str
    count: int
    last_seen: datetime


@dataclass(frozen=True)
class Share:
    """One topic / chat / model: its bot messages, share of the total (0..1) and cost."""

    name: str
    messages: int
    share: float
    cost_usd: Decimal


@dataclass(frozen=True)
class BotDetail:
    row: BotRow
    per_hour: float
    cost_per_message: Decimal | None
    topics: list[Share]
    chats: list[Share]
    models: list[Share]
    errors: list[ErrorGroup]


@dataclass(frozen=True)
class Overview:
    period: Period
    figures: Figures
    previous: Figures
    top: list[BotRow]
    issues: list[Issue]


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    messages: int
    sent: int
    failed: int
    cost_usd: Decimal
    p95_ms: float | None
