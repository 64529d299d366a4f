"""What every analytics screen shares: the period a request is about, the query API, the
error answer, bot names and the figure formatting bound to the reader's language.

A screen's whole state (period text, sort, page, bot, compare selection) travels in the
server-side button params; every press re-parses the period against the current time
and re-reads the rollups, so a stale button can only show fresh data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from sqlalchemy import select

from chatops.context import Context
from chatops.views import Alert, Button, View
from piyasa.analytics import localfmt
from piyasa.analytics.queries import Analytics, AnalyticsError, Figures, Period
from piyasa.analytics.types import SORTS  # noqa: F401  # the screens' sort keys

PERIOD_CHOICES = ("24h", "7d", "30d")
PAGE_SIZE = 8
COMPARE_MIN, COMPARE_MAX = 2, 5


def api(ctx: Context) -> Analytics:
    """The query API over the app's shared session factory (rebound on a database switch)."""
    return Analytics(ctx.services.sessions)


def period_text(ctx: Context) -> str | None:
    """The period a request names: a button's ``p`` param, else the typed argument."""
    value = ctx.params.get("p")
    if isinstance(value, str) and value:
        return value
    return ctx.args.get("period") or None


def period(ctx: Context) -> Period:
    """The request's period, parsed against now; ``PeriodError`` for bad text."""
    return Period.parse(period_text(ctx), datetime.now(UTC))


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def id_list(value: Any) -> list[int]:
    """Bot ids from a ``ids`` param (a list of ints); anything else counts as none."""
    if not isinstance(value, list):
        return []
    out = []
    for v in value:
        i = as_int(v)
        if i is not None and i not in out:
            out.append(i)
    return out


class Stale(AnalyticsError):
    """A button whose params no longer make sense (forged, or from an older version)."""

    def __init__(self) -> None:
        super().__init__("analytics.err.stale", "stale analytics button")


def guarded(fn: Callable[[Context], Awaitable[View]]) -> Callable[[Context], Awaitable[View]]:
    """Answer an :class:`AnalyticsError` (bad period, unknown bot, bad compare, stale
    button) with its localized text; nothing else is shown and nothing changes."""

    @wraps(fn)
    async def run(ctx: Context) -> View:
        try:
            return await fn(ctx)
        except AnalyticsError as exc:
            ctx.audit_params["outcome"] = exc.key
            view = View(title=ctx.t("analytics.title.error"))
            view.blocks.append(Alert("error", ctx.t(exc.key, **exc.params)))
            view.blocks.append(Alert("info", ctx.t("analytics.err.usage", cmd=prefix(ctx))))
            view.edit = False
            return view

    return run


def prefix(ctx: Context) -> str:
    return "/piyasa analytics" if ctx.surface == "slack" else "/analytics"


async def bot_names(ctx: Context, ids: Iterable[int]) -> dict[int, str]:
    """Display names of fleet bots by id, as the query API names them in its rows
    (display name, else ``@username``, else ``#id``)."""
    from piyasa.db.models import Bot

    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    async with ctx.services.sessions() as session:
        bots = (await session.scalars(select(Bot).where(Bot.id.in_(wanted)))).all()
    return {b.id: b.display_name or (f"@{b.username}" if b.username else f"#{b.id}") for b in bots}


def period_label(ctx: Context, p: Period) -> str:
    """ "last 24 hours" / "son 24 saat", or a localized date range."""
    if p.label in PERIOD_CHOICES:
        return ctx.t(f"analytics.period.{p.label}")
    last = p.end - timedelta(days=1)  # a range's end is the midnight after its last day
    return ctx.t(
        "analytics.period.range",
        start=localfmt.day(p.start, ctx.lang),
        end=localfmt.day(last, ctx.lang),
    )


def period_row(ctx: Context, action: str, current: Period, **params: Any) -> list[Button]:
    """[24h] [7d] [30d] switching ``action`` to another period (the current one marked)."""
    return [
        Button(
            ("• " if current.label == choice else "") + ctx.t(f"analytics.btn.p.{choice}"),
            action,
            {**params, "p": choice},
        )
        for choice in PERIOD_CHOICES
    ]


class Fmt:
    """Figures as the reader reads them (Babel, in ``ctx.lang``)."""

    def __init__(self, ctx: Context) -> None:
        self.lang = ctx.lang
        self.t = ctx.t

    def count(self, n: float | None) -> str:
        return localfmt.count(n, self.lang)

    def money(self, v: Any) -> str:
        return localfmt.money(v, self.lang)

    def pct(self, r: float | None) -> str:
        return localfmt.percent(r, self.lang)

    def ms(self, v: float | None) -> str:
        return localfmt.duration_ms(v, self.lang)

    def num(self, v: float | None) -> str:
        return localfmt.number(v, self.lang)

    def trend(self, now: Any, before: Any) -> str:
        """ " (+12.5 % vs previous)" or "" when there is nothing to compare with."""
        change = localfmt.change(now, before)
        if change is None:
            return ""
        return " " + self.t("analytics.trend", v=localfmt.signed_percent(change, self.lang))

    def points(self, now: float | None, before: float | None) -> str:
        """A success-rate trend in percentage points: " (+1.2 pp)"."""
        if now is None or before is None:
            return ""
        diff = round((now - before) * 100, 1)
        sign = "+" if diff >= 0 else ""
        return " " + self.t("analytics.trend_points", v=sign + localfmt.number(diff, self.lang))

    def row_summary(self, f: Figures) -> str:
        """ "320 messages · 99% · p95 1.2 s · $0.41" for a one-line bot summary."""
        return self.t(
            "analytics.row",
            n=self.count(f.messages),
            rate=self.pct(f.success_rate),
            p95=self.ms(f.p95_ms),
            cost=self.money(f.cost_usd),
        )
