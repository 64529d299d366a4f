"""One bot's analytics (messages, latency, tokens and cost, topics, errors by class) and the
side-by-side comparison of 2–5 bots (a picker, then the figures and one chart)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from chatops import timefmt
from chatops.commands.analytics.common import (
    COMPARE_MAX,
    COMPARE_MIN,
    PAGE_SIZE,
    Fmt,
    Stale,
    api,
    as_int,
    guarded,
    id_list,
    period,
    period_label,
    period_row,
)
from chatops.commands.analytics.overview import analytics
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Image, Pager, Table, Text, View
from piyasa.analytics.queries import BotDetail, BotRow, CompareError, Period, Share

SHARES_SHOWN = 8
ERRORS_SHOWN = 8


def _shares_text(fmt: Fmt, shares: list[Share]) -> str:
    return "\n".join(
        f"• {s.name}: {fmt.pct(s.share)} ({fmt.count(s.messages)})" for s in shares[:SHARES_SHOWN]
    )


def detail_view(ctx: Context, d: BotDetail, p: Period, now: datetime | None = None) -> View:
    """One bot's screen from a :class:`BotDetail` (pure: no I/O)."""
    t, fmt, f = ctx.t, Fmt(ctx), d.row.figures
    now = now or datetime.now(UTC)
    view = View(title=t("analytics.title.bot", bot=d.row.name, period=period_label(ctx, p)))
    view.blocks.append(
        Fields(
            [
                (t("analytics.f.messages"), fmt.count(f.messages)),
                (t("analytics.f.sent"), fmt.count(f.sent)),
                (t("analytics.f.failed"), fmt.count(f.failed)),
                (t("analytics.f.success"), fmt.pct(f.success_rate)),
                (t("analytics.f.per_hour"), fmt.num(d.per_hour)),
            ]
        )
    )
    view.blocks.append(
        Fields(
            [
                (t("analytics.f.avg"), fmt.ms(f.avg_ms)),
                (t("analytics.f.p50"), fmt.ms(f.p50_ms)),
                (t("analytics.f.p95"), fmt.ms(f.p95_ms)),
                (t("analytics.f.p99"), fmt.ms(f.p99_ms)),
                (t("analytics.f.fastest"), fmt.ms(f.min_ms)),
            ]
        )
    )
    view.blocks.append(
        Fields(
            [
                (t("analytics.f.tokens_in"), fmt.count(f.tokens_in)),
                (t("analytics.f.tokens_cached"), fmt.count(f.tokens_cached)),
                (t("analytics.f.tokens_out"), fmt.count(f.tokens_out)),
                (t("analytics.f.cost"), fmt.money(f.cost_usd)),
                (t("analytics.f.cost_per_message"), fmt.money(d.cost_per_message)),
            ]
        )
    )
    if d.topics:
        view.blocks.append(Text(t("analytics.topics") + "\n" + _shares_text(fmt, d.topics)))
    if d.models:
        view.blocks.append(Text(t("analytics.models") + "\n" + _shares_text(fmt, d.models)))
    if d.errors:
        just_now = t("analytics.just_now")
        view.blocks.append(Text(t("analytics.errors")))
        view.blocks.append(
            Table(
                [t("analytics.col.error"), t("analytics.col.count"), t("analytics.col.last")],
                [
                    (
                        e.error_class,
                        fmt.count(e.count),
                        timefmt.ago(ctx.lang, e.last_seen, now, just_now=just_now),
                    )
                    for e in d.errors[:ERRORS_SHOWN]
                ],
            )
        )
    else:
        view.blocks.append(Text(t("analytics.no_errors")))
    state = {"p": p.label, "id": d.row.bot_id}
    view.row(*period_row(ctx, "analytics.bot", p, id=d.row.bot_id))
    view.row(
        Button(t("analytics.btn.chart.messages"), "analytics.chart", {**state, "kind": "messages"}),
        Button(t("analytics.btn.chart.latency"), "analytics.chart", {**state, "kind": "latency"}),
        Button(t("analytics.btn.chart.topics"), "analytics.chart", {**state, "kind": "topics"}),
    )
    view.row(
        Button(t("analytics.btn.card"), "bots.card", {"id": d.row.bot_id}),
        Button(t("analytics.btn.csv"), "analytics.csv", {**state, "table": "bot"}),
        Button(t("analytics.btn.to_table"), "analytics.bots", {"p": p.label}),
    )
    return view


@analytics.action("bot")
@guarded
async def analytics_bot(ctx: Context) -> View:
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        raise Stale()
    p = period(ctx)
    return detail_view(ctx, await api(ctx).bot_detail(bot_id, p), p)


# -- compare ----------------------------------------------------------------------------------


def picker_view(
    ctx: Context, p: Period, rows: list[BotRow], total: int, picked: list[int], page: int
) -> View:
    """Choose 2–5 bots: a toggle per bot on this page, then [Compare] (pure: no I/O)."""
    t = ctx.t
    view = View(title=t("analytics.title.pick", period=period_label(ctx, p)))
    view.blocks.append(
        Text(t("analytics.pick.help", min=COMPARE_MIN, max=COMPARE_MAX, n=len(picked)))
    )
    if len(picked) > COMPARE_MAX:
        view.blocks.append(Alert("warning", t("analytics.pick.too_many", max=COMPARE_MAX)))
    state = {"p": p.label, "ids": picked, "page": page}
    for i in range(0, len(rows), 2):
        view.row(
            *(
                Button(
                    ("☑ " if r.bot_id in picked else "☐ ") + r.name,
                    "analytics.compare",
                    {**state, "toggle": r.bot_id},
                )
                for r in rows[i : i + 2]
            )
        )
    if COMPARE_MIN <= len(picked) <= COMPARE_MAX:
        view.row(
            Button(
                t("analytics.btn.compare_go", n=len(picked)),
                "analytics.compared",
                {"p": p.label, "ids": picked},
                style="primary",
            )
        )
    view.row(Button(t("analytics.btn.back"), "analytics.period", {"p": p.label}))
    pages = max(1, -(-total // PAGE_SIZE))
    view.pager = Pager("analytics.compare", min(page, pages), pages, {"p": p.label, "ids": picked})
    return view


@analytics.action("compare")
@guarded
async def analytics_compare(ctx: Context) -> View:
    p = period(ctx)
    picked = id_list(ctx.params.get("ids"))
    toggle = as_int(ctx.params.get("toggle"))
    if toggle is not None:
        picked = [i for i in picked if i != toggle] if toggle in picked else [*picked, toggle]
    page = max(as_int(ctx.params.get("page")) or 1, 1)
    rows, total = await api(ctx).bots(p, sort="messages", page=page - 1, page_size=PAGE_SIZE)
    return picker_view(ctx, p, rows, total, picked, page)


def compared_view(ctx: Context, p: Period, details: list[BotDetail], chart: bytes | None) -> View:
    """Bots side by side: one column per bot, one row per figure, and the chart."""
    t, fmt = ctx.t, Fmt(ctx)
    figures = [d.row.figures for d in details]
    rows = [
        (t("analytics.f.messages"), [fmt.count(f.messages) for f in figures]),
        (t("analytics.f.success"), [fmt.pct(f.success_rate) for f in figures]),
        (t("analytics.f.failed"), [fmt.count(f.failed) for f in figures]),
        (t("analytics.f.per_hour"), [fmt.num(d.per_hour) for d in details]),
        (t("analytics.f.avg"), [fmt.ms(f.avg_ms) for f in figures]),
        (t("analytics.f.p95"), [fmt.ms(f.p95_ms) for f in figures]),
        (t("analytics.f.p99"), [fmt.ms(f.p99_ms) for f in figures]),
        (t("analytics.f.cost"), [fmt.money(f.cost_usd) for f in figures]),
        (t("analytics.f.cost_per_message"), [fmt.money(d.cost_per_message) for d in details]),
    ]
    view = View(title=t("analytics.title.compare", period=period_label(ctx, p)))
    view.blocks.append(Table(["", *(d.row.name[:12] for d in details)], [(k, *v) for k, v in rows]))
    ids = [d.row.bot_id for d in details]
    view.row(*period_row(ctx, "analytics.compared", p, ids=ids))
    view.row(
        Button(
            t("analytics.btn.csv"), "analytics.csv", {"p": p.label, "ids": ids, "table": "compare"}
        ),
        Button(t("analytics.btn.pick_again"), "analytics.compare", {"p": p.label, "ids": ids}),
        Button(t("analytics.btn.back"), "analytics.period", {"p": p.label}),
    )
    if chart is not None:
        caption = t("analytics.chart.compare", period=period_label(ctx, p))
        view.images.append(Image(chart, caption, filename="piyasa-compare.png"))
        view.edit = False
    return view


async def compare_details(ctx: Context, p: Period) -> list[BotDetail]:
    ids = id_list(ctx.params.get("ids"))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise CompareError(
            "analytics.err.compare_count",
            "compare takes 2 to 5 bots",
            min=COMPARE_MIN,
            max=COMPARE_MAX,
            count=len(ids),
        )
    return await api(ctx).compare(ids, p)


@analytics.action("compared")
@guarded
async def analytics_compared(ctx: Context) -> View:
    from chatops.commands.analytics.exports import texts
    from piyasa.analytics import charts

    p = period(ctx)
    details = await compare_details(ctx, p)
    words = texts(ctx, "compare", p)
    png = await asyncio.to_thread(charts.compare, details, ctx.lang, words)
    return compared_view(ctx, p, details, png)
