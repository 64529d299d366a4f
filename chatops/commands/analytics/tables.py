"""The per-bot table (sortable by messages, success, p95, cost; paginated) and the per chat
and per model views of ``/analytics``."""

from __future__ import annotations

from chatops.commands.analytics.common import (
    PAGE_SIZE,
    SORTS,
    Fmt,
    Stale,
    api,
    as_int,
    guarded,
    period,
    period_label,
    period_row,
)
from chatops.commands.analytics.overview import analytics
from chatops.commands.registry import Param
from chatops.context import Context
from chatops.views import Button, Pager, Table, Text, View
from piyasa.analytics.queries import BotRow, Period, Share

SORT_PARAM = Param("sort", SORTS)


def bots_headers(ctx: Context) -> list[str]:
    return [ctx.t(f"analytics.col.{c}") for c in ("bot", "messages", "success", "p95", "cost")]


def bot_cells(fmt: Fmt, r: BotRow) -> tuple[str, ...]:
    f = r.figures
    name = r.name if r.enabled else f"{r.name} ⏸"
    return (
        name,
        fmt.count(f.messages),
        fmt.pct(f.success_rate),
        fmt.ms(f.p95_ms),
        fmt.money(f.cost_usd),
    )


def bots_view(
    ctx: Context, p: Period, rows: list[BotRow], total: int, sort: str, page: int
) -> View:
    """Page ``page`` (1-based) of the bots table sorted by ``sort`` (pure: no I/O)."""
    t, fmt = ctx.t, Fmt(ctx)
    pages = max(1, -(-total // PAGE_SIZE))
    view = View(title=t("analytics.title.bots", period=period_label(ctx, p), n=total))
    if rows:
        view.blocks.append(Table(bots_headers(ctx), [bot_cells(fmt, r) for r in rows]))
    else:
        view.blocks.append(Text(t("analytics.no_bots")))
    state = {"p": p.label, "sort": sort}
    view.row(
        *(
            Button(
                ("▼ " if s == sort else "") + t(f"analytics.sort.{s}"),
                "analytics.bots",
                {**state, "sort": s, "page": 1},
            )
            for s in SORTS
        )
    )
    for i in range(0, len(rows), 2):
        view.row(
            *(
                Button("🤖 " + r.name, "analytics.bot", {"id": r.bot_id, "p": p.label})
                for r in rows[i : i + 2]
            )
        )
    view.row(*period_row(ctx, "analytics.bots", p, sort=sort, page=1))
    view.row(
        Button(t("analytics.btn.csv"), "analytics.csv", {**state, "table": "bots"}),
        Button(
            t("analytics.btn.chart.cost"), "analytics.chart", {"p": p.label, "kind": "cost_bots"}
        ),
        Button(t("analytics.btn.back"), "analytics.period", {"p": p.label}),
    )
    view.pager = Pager("analytics.bots", min(page, pages), pages, state)
    return view


@analytics.action("bots", params=(SORT_PARAM,))
@guarded
async def analytics_bots(ctx: Context) -> View:
    p = period(ctx)
    sort = ctx.params.get("sort") or "messages"
    page = as_int(ctx.params.get("page")) or 1
    if page < 1:
        raise Stale()
    rows, total = await api(ctx).bots(p, sort=sort, page=page - 1, page_size=PAGE_SIZE)
    if not rows and total and page > 1:  # fewer bots than when the button was made
        page = max(1, -(-total // PAGE_SIZE))
        rows, total = await api(ctx).bots(p, sort=sort, page=page - 1, page_size=PAGE_SIZE)
    return bots_view(ctx, p, rows, total, sort, page)


def shares_table(ctx: Context, what: str, shares: list[Share]) -> Table:
    fmt = Fmt(ctx)
    headers = [ctx.t(f"analytics.col.{what}"), ctx.t("analytics.col.messages")]
    headers += [ctx.t("analytics.col.share"), ctx.t("analytics.col.cost")]
    return Table(
        headers,
        [(s.name, fmt.count(s.messages), fmt.pct(s.share), fmt.money(s.cost_usd)) for s in shares],
    )


def shares_view(ctx: Context, what: str, p: Period, shares: list[Share]) -> View:
    """Per chat (``what="chat"``) or per model (``"model"``) figures (pure: no I/O)."""
    t = ctx.t
    view = View(title=t(f"analytics.title.{what}s", period=period_label(ctx, p)))
    if shares:
        view.blocks.append(shares_table(ctx, what, shares))
    else:
        view.blocks.append(Text(t("analytics.empty")))
    view.row(*period_row(ctx, f"analytics.{what}s", p))
    chart = "cost_models" if what == "model" else "chats"
    view.row(
        Button(t("analytics.btn.chart.share"), "analytics.chart", {"p": p.label, "kind": chart}),
        Button(t("analytics.btn.csv"), "analytics.csv", {"p": p.label, "table": f"{what}s"}),
        Button(t("analytics.btn.back"), "analytics.period", {"p": p.label}),
    )
    return view


@analytics.action("chats")
@guarded
async def analytics_chats(ctx: Context) -> View:
    p = period(ctx)
    return shares_view(ctx, "chat", p, await api(ctx).chats(p))


@analytics.action("models")
@guarded
async def analytics_models(ctx: Context) -> View:
    p = period(ctx)
    return shares_view(ctx, "model", p, await api(ctx).models(p))
