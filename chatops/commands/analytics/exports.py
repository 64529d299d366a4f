"""[Chart …] and [CSV] of ``/analytics``: a chart as a photo (Telegram) or an uploaded file
(Slack), and any table as a CSV document whose figures are the view's.

Charts render in a worker thread (:mod:`piyasa.analytics.charts`, matplotlib Agg) so a
slow draw never stalls the chat loop. CSV cells carry machine numbers (``1247``,
``0.973``, ``2.47``: a spreadsheet reads them in any locale), UTC ISO times, and text
cells neutralised against formula injection as ``/audit`` does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from chatops.commands.analytics.common import (
    Stale,
    api,
    as_int,
    guarded,
    id_list,
    period,
    period_label,
)
from chatops.commands.analytics.detail import compare_details
from chatops.commands.analytics.overview import analytics
from chatops.commands.registry import Param
from chatops.context import Context
from chatops.views import File, Image, Text, View
from piyasa.analytics.csvout import (  # noqa: F401  (re-exported: the chat's CSV tables)
    FIGURE_COLUMNS,
    bot_csv,
    bots_csv,
    details_csv,
    figure_cells,
    overview_csv,
    shares_csv,
    to_csv,
)
from piyasa.analytics.queries import BotRow, Period
from piyasa.analytics.report import all_bots

CHART_KINDS = (
    "messages",
    "success",
    "cost_bots",
    "cost_models",
    "latency",
    "topics",
    "chats",
    "compare",
)
TABLES = ("overview", "bots", "bot", "chats", "models", "compare")
CHART_BARS = 100  # bots read for the cost chart; it shows the 11 largest and sums the rest


def texts(ctx: Context, kind: str, p: Period) -> Any:
    """The translated words of chart ``kind`` (title with the period, legend names)."""
    from piyasa.analytics.charts import Texts

    names = {
        k: ctx.t(f"analytics.series.{k}")
        for k in ("sent", "failed", "other", "messages", "success", "p95", "cost")
    }
    return Texts(
        title=ctx.t(f"analytics.chart.{kind}", period=period_label(ctx, p)),
        empty=ctx.t("analytics.chart.empty"),
        names=names,
    )


async def _all_bots(ctx: Context, p: Period, sort: str) -> list[BotRow]:
    return await all_bots(api(ctx), p, sort)


async def render_chart(ctx: Context, kind: str, p: Period) -> bytes:
    """PNG bytes of chart ``kind`` for the request's period (and bot or bots)."""
    from piyasa.analytics import charts

    q, words, lang = api(ctx), texts(ctx, kind, p), ctx.lang
    bot = as_int(ctx.params.get("id"))
    only = [bot] if bot is not None else None
    if kind in ("messages", "success"):
        points = await q.series(p, bot_ids=only)
        draw = charts.messages_over_time if kind == "messages" else charts.success_over_time
        return await asyncio.to_thread(draw, points, lang, words)
    if kind == "latency":
        bins = await q.latency_histogram(p, bot_ids=only)
        return await asyncio.to_thread(charts.latency_histogram, bins, lang, words)
    if kind == "cost_bots":
        rows, _ = await q.bots(p, sort="cost", page=0, page_size=CHART_BARS)
        items = [(r.name, r.figures.cost_usd) for r in rows]
        return await asyncio.to_thread(charts.cost_breakdown, items, lang, words)
    if kind == "cost_models":
        items = [(s.name, s.cost_usd) for s in await q.models(p)]
        return await asyncio.to_thread(charts.cost_breakdown, items, lang, words)
    if kind == "chats":
        return await asyncio.to_thread(charts.shares, await q.chats(p), lang, words)
    if kind == "topics":
        topics = await q.topics(p) if bot is None else (await q.bot_detail(bot, p)).topics
        return await asyncio.to_thread(charts.shares, topics, lang, words)
    details = await compare_details(ctx, p)  # "compare"
    return await asyncio.to_thread(charts.compare, details, lang, words)


@analytics.action("chart", params=(Param("kind", CHART_KINDS, required=True),))
@guarded
async def analytics_chart(ctx: Context) -> View:
    p, kind = period(ctx), ctx.params["kind"]
    png = await render_chart(ctx, kind, p)
    ctx.audit_params["chart"] = kind
    caption = ctx.t(f"analytics.chart.{kind}", period=period_label(ctx, p))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return View(images=[Image(png, caption, filename=f"piyasa-{kind}-{stamp}.png")], edit=False)


# -- CSV (the tables themselves: piyasa.analytics.csvout) ---------------------------------


async def build_csv(ctx: Context, table: str, p: Period) -> bytes:
    q = api(ctx)
    if table == "overview":
        ov = await q.overview(p)
        return overview_csv(p, ov.figures, ov.previous)
    if table == "bots":
        sort = ctx.params.get("sort")
        return bots_csv(await _all_bots(ctx, p, sort if isinstance(sort, str) else "messages"))
    if table == "bot":
        bot = as_int(ctx.params.get("id"))
        if bot is None:
            raise Stale()
        return bot_csv(await q.bot_detail(bot, p))
    if table == "chats":
        return shares_csv("chat", await q.chats(p))
    if table == "models":
        return shares_csv("model", await q.models(p))
    if len(id_list(ctx.params.get("ids"))) == 0:
        raise Stale()
    return details_csv(await compare_details(ctx, p))  # "compare"


@analytics.action(
    "csv",
    params=(
        Param("table", TABLES, required=True),
        Param("sort", ("messages", "success", "p95", "cost")),
    ),
)
@guarded
async def analytics_csv(ctx: Context) -> View:
    p, table = period(ctx), ctx.params["table"]
    data = await build_csv(ctx, table, p)
    rows = max(data.count(b"\n") - 1, 0)
    ctx.audit_params.update(table=table, rows=rows)
    safe = p.label.replace("..", "_")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    caption = ctx.t(
        "analytics.csv.caption",
        table=ctx.t(f"analytics.table.{table}"),
        period=period_label(ctx, p),
    )
    return View(
        blocks=[Text(ctx.t("analytics.csv.done", n=rows))],
        files=[
            File(f"piyasa-analytics-{table}-{safe}-{stamp}.csv", data, caption, mime="text/csv")
        ],
        edit=False,
    )
