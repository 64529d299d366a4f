"""The analytics screens, charts and CSV built from known query results (no database): what a
reader sees in Turkish and English, the buttons to the bot or the fix, and exports that
carry the view's figures as machine numbers, safe from spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PIL import Image as PILImage

from chatops.commands.analytics import detail, exports, overview, tables
from chatops.context import Client, Context
from piyasa.analytics import charts, localfmt
from piyasa.analytics.queries import (
    BotDetail,
    BotRow,
    ErrorGroup,
    Figures,
    Issue,
    Overview,
    Period,
    PeriodError,
    SeriesPoint,
    Share,
)

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
P24 = Period.parse("24h", NOW)


def ctx(lang: str = "en", surface: str = "telegram") -> Context:
    return Context(
        services=None,  # type: ignore[arg-type]  # view builders read no service
        registry=None,  # type: ignore[arg-type]
        surface=surface,
        client=Client(surface, "1"),
        actor=None,
        lang=lang,
        chat_id="1",
        chat_private=True,
    )


def figures(messages: int, failed: int = 3, cost: str = "2.47", p95: float = 1500.0) -> Figures:
    sent = messages - failed
    return Figures(
        messages=messages,
        sent=sent,
        failed=failed,
        success_rate=sent / (sent + failed) if messages else None,
        cost_usd=Decimal(cost),
        tokens_in=120_000,
        tokens_out=8_000,
        tokens_cached=40_000,
        avg_ms=840.0,
        p50_ms=700.0,
        p95_ms=p95,
        p99_ms=2100.0,
        min_ms=120.0,
        rate_limited=1,
    )


def overview_of(issues: list[Issue]) -> Overview:
    top = [BotRow(1, "Ayşe", True, figures(900)), BotRow(2, "=cmd()", True, figures(347))]
    return Overview(P24, figures(1247), figures(1000, cost="1.90"), top, issues)


def labels(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for row in view.buttons for b in row]


def actions(view) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    return [(b.action, b.params) for row in view.buttons for b in row]


@pytest.mark.parametrize(
    ("lang", "count", "money", "rate", "trend"),
    [("tr", "1.247", "$2,47", "%99,8", "+%24,7"), ("en", "1,247", "$2.47", "99.8%", "+24.7%")],
)
def test_overview_reads_in_the_readers_language(lang, count, money, rate, trend) -> None:  # type: ignore[no-untyped-def]
    view = overview.overview_view(ctx(lang), overview_of([]), {})
    text = view.plain_text()
    assert count in text and money in text and rate in text and trend in text
    assert localfmt.duration_ms(840.0, lang) in text  # average
    assert ("1,5 s" if lang == "tr" else "1.5 s") in text  # p95
    assert "Ayşe" in text
    assert ("Sorun tespit edilmedi" if lang == "tr" else "No issues detected") in text


def test_issues_detected_each_with_a_way_to_the_bot_or_the_fix() -> None:
    issues = [
        Issue("error_rate", 1, 0.12, 0.05),
        Issue("rate_limited", 2, 0.3, 0.1),
        Issue("silent", 3, 0.0, 40.0),
        Issue("slow_p95", 1, 12_000.0, 10_000.0),
        Issue("cost_spike", None, 2.5, 2.0),
        Issue("rate_limited", None, 0.2, 0.1),
    ]
    names = {1: "Ayşe", 2: "Mehmet", 3: "Zeynep"}
    view = overview.overview_view(ctx(), overview_of(issues), names)
    text = view.plain_text()
    assert "Ayşe: error rate 12% (threshold 5%)" in text
    assert "Mehmet: 429 share 30% (threshold 10%)" in text
    assert "Zeynep: no message in 40 active hours of this period" in text
    assert "Ayşe: p95 response 12 s (threshold 10 s)" in text
    assert "Fleet: cost ×2.5 of the previous period (threshold ×2)" in text
    got = actions(view)
    assert ("analytics.bot", {"id": 1, "p": "24h"}) in got  # the errors and latency of the bot
    assert ("analytics.bot", {"id": 2, "p": "24h"}) in got  # one bot's 429s: its errors
    assert ("limits", {}) in got  # the fleet's 429s: the rate limits are the fix
    assert ("bots.card", {"id": 3}) in got  # a silent bot: its card (schedule, enable)
    assert ("analytics.bots", {"p": "24h", "sort": "cost"}) in got  # fleet-wide cost


def test_empty_period_says_so_and_keeps_every_way_out() -> None:
    empty = figures(0, failed=0, cost="0")
    ov = Overview(P24, empty, empty, [], [])
    view = overview.overview_view(ctx(), ov, {})
    assert "No bot message in this period." in view.plain_text()
    assert "—" in view.plain_text()  # no success rate, not "0%"
    assert {"analytics.bots", "analytics.compare", "analytics.chart", "analytics.csv"} <= {
        a for a, _ in actions(view)
    }


def test_bots_table_sorts_pages_and_opens_each_bot() -> None:
    rows = [BotRow(i, f"Bot {i}", i != 3, figures(100 * i)) for i in range(1, 5)]
    view = tables.bots_view(ctx(), P24, rows, total=20, sort="cost", page=2)
    text = view.plain_text()
    assert "Bots — last 24 hours (20)" in text and "Bot 3 ⏸" in text
    assert "$2.47" in text and "400" in text
    assert view.pager is not None and (view.pager.page, view.pager.pages) == (2, 3)
    assert view.pager.params == {"p": "24h", "sort": "cost"}
    assert "▼ Cost" in labels(view)
    assert ("analytics.bot", {"id": 4, "p": "24h"}) in actions(view)
    assert ("analytics.csv", {"p": "24h", "sort": "cost", "table": "bots"}) in actions(view)


def detail_of(name: str = "Ayşe", bot_id: int = 1) -> BotDetail:
    return BotDetail(
        row=BotRow(bot_id, name, True, figures(1247)),
        per_hour=51.958,
        cost_per_message=Decimal("0.001981"),
        topics=[
            Share("bist", 700, 0.5613, Decimal("1.3")),
            Share("fx", 547, 0.4387, Decimal("1.17")),
        ],
        chats=[Share("Piyasa Sohbet", 1247, 1.0, Decimal("2.47"))],
        models=[Share("gpt-4o-mini", 1247, 1.0, Decimal("2.47"))],
        errors=[ErrorGroup("telegram", 2, NOW - timedelta(hours=3)), ErrorGroup("quota", 1, NOW)],
    )


def test_bot_detail_shows_every_figure_the_issue_lists() -> None:
    view = detail.detail_view(ctx("tr"), detail_of(), P24, now=NOW + timedelta(seconds=30))
    text = view.plain_text()
    for want in ("1.247", "1.244", "52", "840 ms", "700 ms", "1,5 s", "2,1 s", "120 ms"):
        assert want in text, want
    assert "120.000" in text and "40.000" in text and "8.000" in text  # tokens in/cached/out
    assert "$2,47" in text and "$0,001981" in text  # cost, cost per message
    assert "bist: %56,1 (700)" in text
    assert "telegram" in text and "3 sa. önce" in text and "az önce" in text
    assert ("bots.card", {"id": 1}) in actions(view)
    assert ("analytics.chart", {"p": "24h", "id": 1, "kind": "topics"}) in actions(view)


def test_compare_picker_and_side_by_side() -> None:
    rows = [BotRow(i, f"Bot {i}", True, figures(10 * i)) for i in range(1, 7)]
    picker = detail.picker_view(ctx(), P24, rows, 6, picked=[1], page=1)
    assert "☑ Bot 1" in labels(picker) and "☐ Bot 2" in labels(picker)
    assert not any(a == "analytics.compared" for a, _ in actions(picker))  # one is not enough
    picker = detail.picker_view(ctx(), P24, rows, 6, picked=[1, 2, 3, 4, 5, 6], page=1)
    assert "At most 5 bots" in picker.plain_text()
    assert not any(a == "analytics.compared" for a, _ in actions(picker))
    picker = detail.picker_view(ctx(), P24, rows, 6, picked=[1, 2], page=1)
    assert ("analytics.compared", {"p": "24h", "ids": [1, 2]}) in actions(picker)
    details = [detail_of("Ayşe", 1), detail_of("Mehmet", 2)]
    png = charts.compare(details, "en", exports.texts(ctx(), "compare", P24))
    view = detail.compared_view(ctx(), P24, details, png)
    assert "Ayşe" in view.plain_text() and "Mehmet" in view.plain_text()
    assert view.images and view.images[0].data.startswith(b"\x89PNG") and view.edit is False


def test_charts_are_phone_sized_pngs_with_or_without_data() -> None:
    words = exports.texts(ctx("tr"), "messages", P24)
    points = [
        SeriesPoint(NOW + timedelta(hours=i), 10 + i, 8 + i, 1, Decimal("0.1"), 900.0)
        for i in range(24)
    ]
    bins = [(100.0 * 1.02**i, 100.0 * 1.02 ** (i + 1), i % 7) for i in range(60)]
    pngs = [
        charts.messages_over_time(points, "tr", words),
        charts.success_over_time(points, "tr", words),
        charts.latency_histogram(bins, "tr", words),
        charts.cost_breakdown([(f"bot{i}", Decimal(i)) for i in range(20)], "tr", words),
        charts.shares(detail_of().topics, "tr", words),
        charts.messages_over_time([], "en", words),  # "no data", not an error
        charts.latency_histogram([], "en", words),
    ]
    for png in pngs:
        image = PILImage.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size[0] <= 1280
        assert image.size[0] + image.size[1] <= 10000


def test_csv_carries_the_views_figures_as_machine_numbers() -> None:
    rows = [BotRow(1, '=HYPERLINK("x")', True, figures(1247)), BotRow(2, "B", False, figures(5))]
    data = exports.bots_csv(rows).decode()
    parsed = list(csv.DictReader(io.StringIO(data)))
    assert parsed[0]["bot"].startswith("'=")  # formula injection neutralised
    assert parsed[0]["messages"] == "1247" and parsed[0]["cost_usd"] == "2.47"
    assert float(parsed[0]["success_rate"]) == pytest.approx(1244 / 1247)
    # the figures a reader sees in the table are these numbers, formatted
    view = tables.bots_view(ctx(), P24, rows, total=2, sort="messages", page=1)
    for row in parsed:
        assert localfmt.count(int(row["messages"]), "en") in view.plain_text()
        assert localfmt.money(Decimal(row["cost_usd"]), "en") in view.plain_text()
    ov = overview_of([])
    data = exports.overview_csv(P24, ov.figures, ov.previous).decode()
    current, previous = list(csv.DictReader(io.StringIO(data)))
    assert (current["period"], current["messages"], previous["messages"]) == ("24h", "1247", "1000")
    long = list(csv.reader(io.StringIO(exports.bot_csv(detail_of()).decode())))
    assert ["topic", "bist", "700", "0.5613", "1.3", ""] in long
    assert ["error", "quota", "1", "", "", NOW.isoformat()] in long


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("40d", "analytics.err.period_unknown"),
        ("2026-13-01..x", "analytics.err.period_unknown"),
        ("2026-11-20..2026-11-10", "analytics.err.period_order"),
        ("2024-01-01..2024-01-31", "analytics.err.period_retention"),
    ],
)
def test_bad_periods_have_a_localized_message(text: str, key: str) -> None:
    with pytest.raises(PeriodError) as caught:
        Period.parse(text, NOW)
    assert caught.value.key == key
    for lang in ("tr", "en"):
        said = ctx(lang).t(key, **caught.value.params)
        assert said != key and "{" not in said
