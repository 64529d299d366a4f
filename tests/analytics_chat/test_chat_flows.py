"""/analytics on Telegram and Slack over real rollups (SQLite and PostgreSQL): the overview
with its issues, the sortable bots table, a bot's detail, compare, a chart that arrives as a
photo (Telegram) or an uploaded PNG (Slack), a CSV whose figures are the view's, Turkish
numbers for a Turkish reader, and clear refusals of bad periods and stale buttons."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from chatops import i18n
from piyasa.admin.identity import set_language
from piyasa.analytics import localfmt
from piyasa.analytics.queries import Analytics, Period
from tests.analytics_chat.history import seed_history
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401 (fixtures)
from tests.chatops.harness import audit_count
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import private, slack_tap, slack_token, slack_upload, tap, token_for
from tests.waiting import until


def day() -> Period:
    return Period.parse("24h", datetime.now(UTC))


async def tap_photo_or_file(world: Any, chat: int, message: dict, label: str, kind: str) -> dict:
    """Press ``label`` and wait for the bot's new message carrying a ``kind`` (photo/document)."""
    mark = await world.press("viewer", chat, message, token_for(message, label))
    return await world.sb.wait_for_message(
        lambda m: kind in m, chat_id=chat, after=mark, bot_id=world.bot_id
    )


async def audit_of(services: Any, after: int, period: str) -> Any:
    """The audit row of ``/analytics <period>`` past mark ``after`` (rows land after the
    reply, so an earlier command's row may follow the mark)."""
    from sqlalchemy import select

    from piyasa.db.models import AuditEntry

    async def row() -> Any:
        async with services.sessions() as session:
            rows = await session.scalars(
                select(AuditEntry).where(AuditEntry.id > after, AuditEntry.action == "analytics")
            )
            return next((r for r in rows if (r.params or {}).get("period") == period), None)

    return await until(row, f"the audit row of /analytics {period}", interval=0.01)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


async def test_telegram_overview_table_detail_chart_and_csv(tg) -> None:  # noqa: F811
    await seed_history(tg.services)
    q, me = Analytics(tg.services.sessions), private("viewer")
    shown = await tg.say("viewer", "/analytics")
    ov = await q.overview(day())
    assert ov.figures.messages == 51  # what the history holds (the query API's own tests
    text = shown["text"]  # prove its figures against raw rows)
    assert f"Messages: {ov.figures.messages}" in text
    assert f"Cost: {localfmt.money(ov.figures.cost_usd, 'en')}" in text
    assert f"Success rate: {localfmt.percent(ov.figures.success_rate, 'en')}" in text
    assert f"p95 response: {localfmt.duration_ms(ov.figures.p95_ms, 'en')}" in text
    assert "Top performers" in text and "1. Ayşe" in text
    assert "Mehmet: 429 share 33.3%" in text  # the issue, and its button to the bot
    detail = await tap(tg, "viewer", me, shown, "Mehmet: see why")
    assert "Mehmet — last 24 hours" in detail["text"] and "Failed: 5" in detail["text"]
    assert "quota" in detail["text"]  # recent errors grouped by class

    table = await tap(tg, "viewer", me, detail, "Bots table")
    by_cost = await tap(tg, "viewer", me, table, "Cost")
    rows, total = await q.bots(day(), sort="cost")
    positions = [by_cost["text"].index(r.name) for r in rows]
    assert total == 3 and positions == sorted(positions)  # costliest first, as the API sorts

    doc = await tap_photo_or_file(tg, me, by_cost, "CSV", "document")
    data = tg.sb.world.files[doc["document"]["file_id"]].data
    exported = csv_rows(data)
    assert [r["bot"] for r in exported] == [r.name for r in rows]
    for row in exported:  # the document's figures are the view's
        assert localfmt.count(int(row["messages"]), "en") in by_cost["text"]
        assert localfmt.money(row["cost_usd"], "en") in by_cost["text"]

    photo = await tap_photo_or_file(tg, me, by_cost, "Cost chart", "photo")
    assert photo["caption"] == "Cost by bot — last 24 hours"
    assert tg.sb.calls("sendPhoto")[-1]["ok"]

    ayse = await tap(tg, "viewer", me, by_cost, "🤖 Ayşe")
    assert "Tokens cached:" in ayse["text"] and "bist:" in ayse["text"]
    photo = await tap_photo_or_file(tg, me, ayse, "Topics chart", "photo")
    assert photo["caption"] == "Topics — last 24 hours"


async def test_telegram_compare_two_bots_then_per_model_and_chat(tg) -> None:  # noqa: F811
    await seed_history(tg.services)
    me = private("viewer")
    picker = await tap(tg, "viewer", me, await tg.say("viewer", "/analytics 7d"), "Compare")
    assert "Pick 2 to 5 bots" in picker["text"]
    picker = await tap(tg, "viewer", me, picker, "☐ Ayşe")
    picker = await tap(tg, "viewer", me, picker, "☐ Zeynep")
    assert "(2 picked)" in picker["text"]
    compared = await tap(tg, "viewer", me, picker, "Compare 2 bots")  # text, then the chart
    assert "Comparison — last 7 days" in compared["text"]
    assert "Ayşe" in compared["text"] and "Zeynep" in compared["text"]
    chart = await tg.sb.wait_for_message(lambda m: "photo" in m, chat_id=me, bot_id=tg.bot_id)
    assert chart["caption"] == "Bots compared — last 7 days"
    back = await tap(tg, "viewer", me, compared, "Overview")
    models = await tap(tg, "viewer", me, back, "Per model")
    assert "Per model — last 7 days" in models["text"]
    assert "gpt-4o-mini" in models["text"] and "gpt-4.1" in models["text"]
    chats = await tap(tg, "viewer", me, await tap(tg, "viewer", me, models, "Overview"), "Per chat")
    assert "Piyasa Sohbet" in chats["text"] and "100%" in chats["text"]


async def test_turkish_reader_and_bad_periods(tg) -> None:  # noqa: F811
    await seed_history(tg.services)
    await set_language(tg.services, tg.user_ids["viewer"], "tr")
    ov = await Analytics(tg.services.sessions).overview(day())
    shown = await tg.say("viewer", "/analytics 24h")
    assert f"Maliyet: {localfmt.money(ov.figures.cost_usd, 'tr')}" in shown["text"]
    assert "," in localfmt.money(ov.figures.cost_usd, "tr")  # "$0,05", not "$0.05"
    for text, key in (
        ("40d", "analytics.err.period_unknown"),
        ("2026-13-01..x", "analytics.err.period_unknown"),
        ("2026-11-20..2026-11-10", "analytics.err.period_order"),
        ("2020-01-01..2020-01-31", "analytics.err.period_retention"),
    ):
        n = await audit_count(tg.services)
        said = await tg.say("viewer", f"/analytics {text}")
        assert i18n.t("tr", "analytics.title.error") in said["text"]
        assert "Kullanım: /analytics" in said["text"], said["text"]
        row = await audit_of(tg.services, n, text)
        assert (row.params or {}).get("outcome") == key, (text, row.params)


async def test_stale_buttons_are_refused_clearly(tg) -> None:  # noqa: F811
    """A bot removed after its button was drawn, and a compare button whose bots are gone."""
    await seed_history(tg.services)
    uid = private("viewer")
    anchor = await tg.say("viewer", "/analytics")
    for spec, params, want in (
        ("analytics.bot", {"id": 999, "p": "24h"}, "No fleet bot “999”"),
        ("analytics.compared", {"ids": [1], "p": "24h"}, "Compare takes 2 to 5 bots; 1 were"),
        ("analytics.bot", {"p": "24h"}, "This button is out of date"),
        ("analytics.bots", {"p": "40d"}, "“40d” is not a period"),
    ):
        token = await tg.surface.tokens.issue(
            spec_id=spec, surface="telegram", user=str(uid), chat=str(uid), params=params
        )
        mark = await tg.press("viewer", uid, anchor, token, forge=True)
        said = await tg.sb.wait_for_message(chat_id=uid, after=mark, bot_id=tg.bot_id)
        assert want in said["text"], said["text"]


async def test_slack_overview_chart_upload_and_csv(slack, slack_server) -> None:  # noqa: F811
    await seed_history(slack.services)
    ov = await Analytics(slack.services.sessions).overview(day())
    _status, ack, _url = await slack.slash("U0VIEWER", "analytics")
    text = slack_text(ack)
    assert f"Messages: {ov.figures.messages}" in text and "Mehmet: 429 share" in text
    labels = [label for label, _ in slack_buttons(ack)]
    assert {"📋 Bots table", "⚖️ Compare", "📈 Messages chart", "📄 CSV"} <= set(labels)
    before = len(slack_server.uploads)
    await slack.press("U0VIEWER", slack_token(ack, "Messages chart"))  # a file, no message
    png = await slack_upload(slack_server, ".png")
    assert png["channel"] == "C0OPS" and png["size"] > 1000 and len(slack_server.uploads) > before
    table = await slack_tap(slack, slack_server, "U0VIEWER", ack, "Bots table")
    assert "Ayşe" in slack_text(table) and "Zeynep" in slack_text(table)
    await slack_tap(slack, slack_server, "U0VIEWER", table, "CSV")
    sheet = await slack_upload(slack_server, ".csv")
    assert sheet["filename"].startswith("piyasa-analytics-bots-24h") and sheet["size"] > 0
    _status, bad, _url = await slack.slash("U0VIEWER", "analytics 2026-11-20..2026-11-10")
    assert "The period starts (2026-11-20) after it ends (2026-11-10)." in slack_text(bad)
    assert "/piyasa analytics" in slack_text(bad)
