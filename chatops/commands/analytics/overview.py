"""``/analytics [24h|7d|30d|YYYY-MM-DD..YYYY-MM-DD]``: the overview — totals with their
trend against the previous period, top performers, issues detected (each with a button to
the bot or the fix) — and the buttons to every other analytics screen."""

from __future__ import annotations

from chatops.commands.analytics.common import (
    Fmt,
    api,
    bot_names,
    guarded,
    period,
    period_label,
    period_row,
)
from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.analytics.queries import Issue, Overview

TOP_SHOWN = 3
ISSUES_SHOWN = 8
# how an issue's value and threshold read: rates in percent, latency in ms, a cost spike
# as a ratio to the previous period, silence in hours
ISSUE_UNITS = {
    "error_rate": "pct",
    "rate_limited": "pct",
    "slow_p95": "ms",
    "cost_spike": "ratio",
    "silent": "num",  # threshold: the active hours the bot was silent in
}


def _issue_value(fmt: Fmt, kind: str, value: float) -> str:
    unit = ISSUE_UNITS.get(kind, "num")
    if unit == "pct":
        return fmt.pct(value)
    if unit == "ms":
        return fmt.ms(value)
    if unit == "ratio":
        return "×" + fmt.num(value)
    if unit == "count":
        return fmt.count(value)
    return fmt.num(value)


def issue_text(ctx: Context, issue: Issue, names: dict[int, str]) -> str:
    """One "issues detected" line: who, what, measured against which threshold."""
    fmt = Fmt(ctx)
    who = names.get(issue.bot_id, f"#{issue.bot_id}") if issue.bot_id else ctx.t("analytics.fleet")
    kind = issue.kind if issue.kind in ISSUE_UNITS else "other"
    return ctx.t(
        f"analytics.issue.{kind}",
        bot=who,
        value=_issue_value(fmt, issue.kind, issue.value),
        threshold=_issue_value(fmt, issue.kind, issue.threshold),
    )


def issue_button(ctx: Context, issue: Issue, names: dict[int, str], p: str) -> Button:
    """The way to the bot or the fix: a silent bot's card (schedule, enable), the fleet's
    rate limits for fleet-wide 429s, else the bot's analytics (errors by class, latency,
    cost by model) with its card one press away."""
    who = names.get(issue.bot_id, f"#{issue.bot_id}") if issue.bot_id else ""
    if issue.kind == "rate_limited" and issue.bot_id is None:
        return Button(ctx.t("analytics.fix.limits"), "limits")
    if issue.bot_id is not None and issue.kind == "silent":
        return Button(ctx.t("analytics.fix.card", bot=who), "bots.card", {"id": issue.bot_id})
    if issue.bot_id is not None:
        return Button(
            ctx.t("analytics.fix.detail", bot=who), "analytics.bot", {"id": issue.bot_id, "p": p}
        )
    sort = "p95" if issue.kind == "slow_p95" else "cost"
    return Button(ctx.t("analytics.fix.table"), "analytics.bots", {"p": p, "sort": sort})


def overview_view(ctx: Context, ov: Overview, names: dict[int, str]) -> View:
    """The overview screen from an :class:`Overview` (pure: no I/O)."""
    fmt, t, p = Fmt(ctx), ctx.t, ov.period.label
    f, prev = ov.figures, ov.previous
    view = View(title=t("analytics.title.overview", period=period_label(ctx, ov.period)))
    view.blocks.append(
        Fields(
            [
                (
                    t("analytics.f.messages"),
                    fmt.count(f.messages) + fmt.trend(f.messages, prev.messages),
                ),
                (
                    t("analytics.f.success"),
                    fmt.pct(f.success_rate) + fmt.points(f.success_rate, prev.success_rate),
                ),
                (
                    t("analytics.f.cost"),
                    fmt.money(f.cost_usd) + fmt.trend(f.cost_usd, prev.cost_usd),
                ),
                (t("analytics.f.avg"), fmt.ms(f.avg_ms) + fmt.trend(f.avg_ms, prev.avg_ms)),
                (t("analytics.f.p95"), fmt.ms(f.p95_ms) + fmt.trend(f.p95_ms, prev.p95_ms)),
            ]
        )
    )
    if f.messages == 0:
        view.blocks.append(Alert("info", t("analytics.empty")))
    top = [r for r in ov.top if r.figures.messages][:TOP_SHOWN]
    if top:
        lines = [f"{i}. {r.name} — {fmt.row_summary(r.figures)}" for i, r in enumerate(top, 1)]
        view.blocks.append(Text(t("analytics.top") + "\n" + "\n".join(lines)))
    issues = ov.issues[:ISSUES_SHOWN]
    if issues:
        lines = ["⚠️ " + issue_text(ctx, i, names) for i in issues]
        view.blocks.append(Text(t("analytics.issues") + "\n" + "\n".join(lines)))
    elif f.messages:
        view.blocks.append(Text(t("analytics.no_issues")))
    view.row(*period_row(ctx, "analytics.period", ov.period))
    view.row(
        Button(t("analytics.btn.bots"), "analytics.bots", {"p": p}),
        Button(t("analytics.btn.compare"), "analytics.compare", {"p": p}),
    )
    view.row(
        Button(t("analytics.btn.chats"), "analytics.chats", {"p": p}),
        Button(t("analytics.btn.models"), "analytics.models", {"p": p}),
    )
    view.row(
        Button(t("analytics.btn.chart.messages"), "analytics.chart", {"p": p, "kind": "messages"}),
        Button(t("analytics.btn.chart.success"), "analytics.chart", {"p": p, "kind": "success"}),
    )
    view.row(
        Button(t("analytics.btn.chart.cost"), "analytics.chart", {"p": p, "kind": "cost_bots"}),
        Button(t("analytics.btn.chart.latency"), "analytics.chart", {"p": p, "kind": "latency"}),
    )
    view.row(
        Button(t("analytics.btn.chart.topics"), "analytics.chart", {"p": p, "kind": "topics"}),
        Button(t("analytics.btn.csv"), "analytics.csv", {"p": p, "table": "overview"}),
    )
    for r in top:
        view.row(
            Button(t("analytics.btn.top", bot=r.name), "analytics.bot", {"id": r.bot_id, "p": p})
        )
    for issue in issues:
        view.row(issue_button(ctx, issue, names, p))
    return view


async def show_overview(ctx: Context) -> View:
    ov = await api(ctx).overview(period(ctx))
    wanted = [i.bot_id for i in ov.issues if i.bot_id is not None]
    return overview_view(ctx, ov, await bot_names(ctx, wanted))


@command(
    "analytics",
    role="viewer",
    order=60,
    capability="analytics",
    args=(Arg("period", max_len=32),),
)
@guarded
async def analytics(ctx: Context) -> View:
    """``/analytics [24h|7d|30d|YYYY-MM-DD..YYYY-MM-DD]`` (default 24h)."""
    return await show_overview(ctx)


@analytics.action("period")
@guarded
async def analytics_period(ctx: Context) -> View:
    return await show_overview(ctx)
