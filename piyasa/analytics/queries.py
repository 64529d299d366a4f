"""The analytics query API: ``Analytics`` reads figures for periods, bots, chats and models
from the rollups only (``piyasa.analytics.read``), never from raw ``messages`` rows, so its
cost does not grow with history. The types it returns live in ``piyasa.analytics.types``
and are re-exported here: this module is the contract the chat surfaces and the CLI use.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from piyasa.analytics import read, sketch
from piyasa.analytics.rollup import Acc, floor_day, floor_hour
from piyasa.analytics.types import (
    DEFAULT_RETENTION_DAYS,
    SORTS,
    AnalyticsError,
    BotDetail,
    BotRow,
    CompareError,
    ErrorGroup,
    Figures,
    Issue,
    Overview,
    Period,
    PeriodError,
    SeriesPoint,
    Share,
    UnknownBot,
)
from piyasa.db.models import Bot, Chat
from piyasa.runtime.schedule import ScheduleError, active_hours_between

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "SORTS",
    "Analytics",
    "AnalyticsError",
    "BotDetail",
    "BotRow",
    "CompareError",
    "ErrorGroup",
    "Figures",
    "Issue",
    "Overview",
    "Period",
    "PeriodError",
    "SeriesPoint",
    "Share",
    "UnknownBot",
]

# Thresholds of "issues detected" (Overview.issues); rates are 0..1.
ERROR_RATE = 0.10  # failed / (sent + failed), with at least MIN_OUTCOMES outcomes
MIN_OUTCOMES = 20
SLOW_P95_MS = sketch.SLOW_MS  # what the rollups' lat_slow counts against
COST_SPIKE = 2.0  # cost / previous period's cost, when the cost is at least COST_SPIKE_MIN
COST_SPIKE_MIN = Decimal("0.01")
RATE_LIMITED_SHARE = 0.05  # 429s / (sent + failed)
TOP = 5
SILENT_MIN_ACTIVE_H = 1.0  # active hours in the period before "silent" is an issue
SERIES_HOURLY_MAX = timedelta(days=3)


def _slow(acc: Acc) -> bool:
    """Whether ``acc``'s p95 reads over SLOW_P95_MS, from its sums (no histogram)."""
    return sketch.reads_over(
        0.95, acc.lat_count, acc.lat_slow, acc.lat_min, acc.lat_max, SLOW_P95_MS
    )


def figures_of(acc: Acc) -> Figures:
    """Figures from summed rollup measures (percentiles from the merged histogram)."""
    outcomes = acc.sent + acc.failed
    p50, p95, p99 = read.percentiles(acc)
    return Figures(
        messages=acc.messages,
        sent=acc.sent,
        failed=acc.failed,
        success_rate=acc.sent / outcomes if outcomes else None,
        cost_usd=Decimal(acc.cost_micros).scaleb(-6),
        tokens_in=acc.tokens_in,
        tokens_out=acc.tokens_out,
        tokens_cached=acc.tokens_cached,
        avg_ms=acc.lat_sum / acc.lat_count if acc.lat_count else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        min_ms=float(acc.lat_min) if acc.lat_min is not None else None,
        rate_limited=acc.rate_limited,
        max_ms=float(acc.lat_max) if acc.lat_max is not None else None,
    )


def _shares(rows: list[tuple[Any, int, int]], names: dict[Any, str] | None = None) -> list[Share]:
    whole = sum(m for _, m, _ in rows)
    return [
        Share(
            name=(names or {}).get(key, str(key)) if key not in ("", None) else "-",
            messages=m,
            share=m / whole if whole else 0.0,
            cost_usd=Decimal(c).scaleb(-6),
        )
        for key, m, c in rows
    ]


def _sort_key(sort: str):  # type: ignore[no-untyped-def]
    if sort == "messages":
        return lambda r: (-r.figures.messages, r.name)
    if sort == "success":
        return lambda r: (r.figures.success_rate is None, -(r.figures.success_rate or 0), r.name)
    if sort == "p95":  # slowest first
        return lambda r: (r.figures.p95_ms is None, -(r.figures.p95_ms or 0), r.name)
    return lambda r: (-r.figures.cost_usd, r.name)


class Analytics:
    """Read-only analytics over the rollups; ``sessions`` is the app's async session factory.

    Figures are as fresh as the rollup job's last run (``piyasa up`` runs it every few
    seconds; ``Rollups.catch_up`` brings them up to date on demand).
    """

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions

    @staticmethod
    async def _segments(session: Any, *periods: Period) -> list[list[read.Segment]]:
        """The buckets of each period, as stored now (the compaction boundary is read in
        the same session as the figures)."""
        cut = await read.hourly_before(session)
        return [read.segments(p.start, p.end, cut) for p in periods]

    async def refresh(self) -> int:
        """Roll up whatever the background job has not yet (cheap when nothing is pending:
        one indexed query); returns how many messages moved. For surfaces that must show
        the last seconds too, and for tests without ``piyasa up``."""
        from piyasa.analytics.rollup import Rollups

        bind = self._sessions.kw["bind"]
        return await Rollups(self._sessions, bind.dialect.name).catch_up()

    async def _bot_meta(
        self, session: Any, bot_id: int | None = None
    ) -> dict[int, tuple[str, bool]]:
        query = select(Bot.id, Bot.display_name, Bot.username, Bot.enabled)
        if bot_id is not None:
            query = query.where(Bot.id == bot_id)
        rows = await session.execute(query)
        return {i: (dn or (f"@{un}" if un else f"#{i}"), bool(en)) for i, dn, un, en in rows}

    @staticmethod
    def _row(bot_id: int, meta: dict[int, tuple[str, bool]], acc: Acc | None) -> BotRow:
        name, enabled = meta.get(bot_id, (f"#{bot_id}", False))
        return BotRow(bot_id, name, enabled, figures_of(acc or Acc()))

    async def overview(self, period: Period) -> Overview:
        """Totals from the fleet rollup (one row per bucket); top performers and issues
        from per-bot sums (SQL GROUP BY bot); histograms merged only for the bots whose
        percentiles are shown (the top ones, and those whose p95 reads over the limit)."""
        async with self._sessions() as session:
            sets = await self._segments(session, period, period.previous())
            (cur,) = await read.per_bot_sets(session, sets[:1], hists=False)
            before = await read.per_bot_cost(session, sets[1])
            now, was = await read.fleet_sets(session, sets)
            meta = await self._bot_meta(session)
            best = sorted(
                (b for b, a in cur.items() if a.sent and (b in meta or a.messages)),
                key=lambda b: (-cur[b].sent, -cur[b].sent / (cur[b].sent + cur[b].failed), b),
            )[:TOP]
            need = set(best) | {b for b, a in cur.items() if _slow(a)}
            if need:
                await read.fill_hists(session, sets[:1], [cur], sorted(need))
            quiet = [b for b, (_n, on) in meta.items() if on and not (b in cur and cur[b].messages)]
            silent = await self._silent(session, quiet, period) if quiet else []
        top = [self._row(b, meta, cur[b]) for b in best]
        issues = self._issues(cur, before) + silent
        return Overview(
            period=period,
            figures=figures_of(now),
            previous=figures_of(was),
            top=top,
            issues=issues,
        )

    @staticmethod
    async def _silent(session: Any, bot_ids: list[int], period: Period) -> list[Issue]:
        """Enabled bots with no message in the period although its active hours (their own
        schedule and timezone, counted from when the bot was added) cover at least
        SILENT_MIN_ACTIVE_H of it: Issue value 0, threshold = those active hours."""
        rows = await session.execute(
            select(Bot.id, Bot.active_hours, Bot.timezone, Bot.created_at).where(
                Bot.id.in_(bot_ids)
            )
        )
        found = []
        for bot_id, spec, tz, added in sorted(rows, key=lambda r: r[0]):
            start = max(period.start, added) if added else period.start
            try:
                hours = active_hours_between(spec or "", tz or "UTC", start, period.end)
            except ScheduleError:
                continue  # the roster disables a bot with a bad schedule
            if hours >= SILENT_MIN_ACTIVE_H:
                found.append(Issue("silent", bot_id, 0.0, hours))
        return found

    @staticmethod
    def _issues(cur: dict[int, Acc], before: dict[int, Acc]) -> list[Issue]:
        found: list[Issue] = []
        for bot_id, acc in sorted(cur.items()):
            outcomes = acc.sent + acc.failed
            if outcomes >= MIN_OUTCOMES and acc.failed / outcomes > ERROR_RATE:
                found.append(Issue("error_rate", bot_id, acc.failed / outcomes, ERROR_RATE))
            if outcomes and acc.rate_limited / outcomes > RATE_LIMITED_SHARE:
                found.append(
                    Issue("rate_limited", bot_id, acc.rate_limited / outcomes, RATE_LIMITED_SHARE)
                )
            p95 = read.percentiles(acc)[1] if _slow(acc) else None
            if p95 is not None and p95 > SLOW_P95_MS:
                found.append(Issue("slow_p95", bot_id, p95, SLOW_P95_MS))
            was = before.get(bot_id)
            cost = Decimal(acc.cost_micros).scaleb(-6)
            if was and was.cost_micros and cost >= COST_SPIKE_MIN:
                ratio = acc.cost_micros / was.cost_micros
                if ratio > COST_SPIKE:
                    found.append(Issue("cost_spike", bot_id, ratio, COST_SPIKE))
        return found

    async def bots(
        self, period: Period, *, sort: str = "messages", page: int = 0, page_size: int = 10
    ) -> tuple[list[BotRow], int]:
        """Sort in {"messages", "success", "p95", "cost"}; returns (rows, total bots).

        Every known bot is listed (with zero figures when silent), plus deleted bots that
        still have rollups in the period. Raises ValueError for an unknown sort."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}")
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            cur = await read.per_bot(session, segs)
            meta = await self._bot_meta(session)
        ids = set(meta) | {b for b, a in cur.items() if a.messages}
        rows = sorted((self._row(b, meta, cur.get(b)) for b in ids), key=_sort_key(sort))
        first = max(page, 0) * page_size
        return rows[first : first + page_size], len(rows)

    async def bot_detail(self, bot_id: int, period: Period) -> BotDetail:
        """Raises UnknownBot when the bot neither exists nor has rollups in the period."""
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            meta = await self._bot_meta(session, bot_id)
            cur = await read.per_bot(session, segs, [bot_id])
            if bot_id not in meta and bot_id not in cur:
                raise UnknownBot("analytics.err.unknown_bot", f"no bot #{bot_id}", bot=str(bot_id))
            parts = await read.facets(session, segs, [bot_id])
            errs = await read.errors(session, segs, [bot_id])
        row = self._row(bot_id, meta, cur.get(bot_id))
        f = row.figures
        return BotDetail(
            row=row,
            per_hour=f.messages / period.hours if period.hours else 0.0,
            cost_per_message=(f.cost_usd / f.messages).quantize(Decimal("0.000001"))
            if f.messages
            else None,
            topics=_shares(parts["topic"]),
            chats=_shares(parts["chat"]),
            models=_shares(parts["model"]),
            errors=[ErrorGroup(c, n, seen) for c, n, seen in errs],
        )

    @staticmethod
    async def _chat_titles(session: Any, ids: list[int]) -> dict[Any, str]:
        if not ids:
            return {}
        rows = await session.execute(select(Chat.id, Chat.title).where(Chat.id.in_(ids)))
        return {i: (t or f"#{i}") for i, t in rows}

    async def compare(self, bot_ids: list[int], period: Period) -> list[BotDetail]:
        """2..5 distinct bots, in the order given; CompareError (a ValueError) otherwise."""
        unique = list(dict.fromkeys(bot_ids))
        if not 2 <= len(unique) <= 5:
            raise CompareError(
                "analytics.err.compare_count",
                "compare takes 2 to 5 bots",
                min=2,
                max=5,
                count=len(unique),
            )
        return [await self.bot_detail(b, period) for b in unique]

    async def series(
        self, period: Period, *, bot_ids: list[int] | None = None
    ) -> list[SeriesPoint]:
        """Hourly points for periods up to 3 days, daily beyond; empty buckets included."""
        hourly = period.end - period.start <= SERIES_HOURLY_MAX
        grain, step = ("h", timedelta(hours=1)) if hourly else ("d", timedelta(days=1))
        async with self._sessions() as session:
            got = await read.series(session, period.start, period.end, grain, bot_ids)
        at = floor_hour(period.start) if hourly else floor_day(period.start)
        points = []
        while at < period.end:
            acc = got.get(at) or Acc()
            points.append(
                SeriesPoint(
                    at=at,
                    messages=acc.messages,
                    sent=acc.sent,
                    failed=acc.failed,
                    cost_usd=Decimal(acc.cost_micros).scaleb(-6),
                    p95_ms=read.percentiles(acc)[1],
                )
            )
            at += step
        return points

    async def latency_histogram(
        self, period: Period, *, bot_ids: list[int] | None = None
    ) -> list[tuple[float, float, int]]:
        """(low ms, high ms, count) of the non-empty log bins (2 % wide), lowest first."""
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            cur = await read.per_bot(session, segs, bot_ids)
        merged = read.total(list(cur.values()))
        return sketch.bins(merged.counts) if merged.counts is not None else []

    async def chats(self, period: Period) -> list[Share]:
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            rows = await read.per_dimension(session, segs, "chat_id")
            titles = await self._chat_titles(session, [c for c, _, _ in rows])
        return _shares(rows, titles)

    async def models(self, period: Period) -> list[Share]:
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            rows = await read.per_dimension(session, segs, "model")
        return _shares(rows)

    async def topics(self, period: Period) -> list[Share]:
        async with self._sessions() as session:
            (segs,) = await self._segments(session, period)
            rows = await read.per_dimension(session, segs, "topic")
        return _shares(rows)
