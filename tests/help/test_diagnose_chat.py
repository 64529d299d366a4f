"""/diagnose on Telegram and Slack: progress in one message, then the score and the issues
named by the KB (from the log analyzer here), [Learn more] opens the entry, the score's
button says how it is computed, [Export] sends a Markdown document with secrets
redacted, [Ignore 24 h] (operator only) takes an issue out of the list and the score."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from piyasa.help.kb import knowledge_base
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import PEOPLE, buttons
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import private, slack_tap, slack_upload, tap
from tests.waiting import HANG_S, until

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KB = knowledge_base()
SECRET = "sk-" + "q" * 30


def write_log(data_dir: Path, n: int = 12) -> None:
    """A burst of SQLite lock errors in the JSON log, one carrying a key-shaped secret."""
    data_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat()
    rows = [
        {
            "ts": now,
            "level": "ERROR",
            "logger": "piyasa.db",
            "msg": f"write failed ({SECRET}): sqlite3.OperationalError: database is locked",
            "exc": "OperationalError",
        }
        for _ in range(n)
    ]
    (data_dir / "piyasa.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def labels(message: dict) -> list[str]:
    return [label for label, _ in buttons(message)]


async def diagnose(tg, role: str) -> dict:  # noqa: F811
    """``role`` sends /diagnose; the progress message, once edited into the report."""
    me = private(role)
    mark = tg.sb.mark()
    await tg.sb.send_user_message(PEOPLE[role][0], me, "/diagnose", bot_id=tg.bot_id)
    return await tg.sb.wait_for_message(
        lambda m: "score" in (m.get("text") or "").lower() and "/100" in (m.get("text") or ""),
        chat_id=me,
        bot_id=tg.bot_id,
        edits=True,
        after=mark,
        timeout=HANG_S,
    )


async def test_telegram_report_learn_more_score_export_ignore(tg) -> None:  # noqa: F811
    write_log(tg.services.settings.data_dir)
    report = await diagnose(tg, "viewer")
    text = report["text"]
    title = KB.entries["db-locked"].w("en").title
    assert "🩺 Diagnosis" in text and f"🔴 {title}" in text  # a burst of errors: critical
    assert "Cause:" in text and "Evidence:" in text and "12×" in text and "burst" in text
    assert SECRET not in text
    progress = [e for e in tg.sb.events if "Diagnosing" in str(e)]
    assert progress, "the progress was shown before the report"
    names = labels(report)
    assert any("Learn more" in n for n in names)
    assert not any("Ignore" in n for n in names)  # ignoring is an operator's call
    me = private("viewer")
    mark = tg.sb.mark()
    await tg.press("viewer", me, report, dict(buttons(report))["📄 Export (Markdown)"])
    doc = await tg.sb.wait_for_message(
        lambda m: "document" in m, chat_id=me, after=mark, timeout=HANG_S
    )
    data = tg.sb.world.files[doc["document"]["file_id"]].data.decode()
    assert data.startswith("# Piyasa diagnosis") and "`db-locked`" in data and SECRET not in data
    score = await tap(tg, "viewer", me, report, "❔ How is the score computed?")
    assert "25 per critical issue" in score["text"] and f"−25 {title}" in score["text"]
    report = await diagnose(tg, "viewer")
    entry = await tap(tg, "viewer", me, report, next(n for n in names if "Learn more" in n))
    assert "Symptoms" in entry["text"] and "PostgreSQL" in entry["text"]

    op = await diagnose(tg, "operator")
    ignore = next(n for n in labels(op) if "Ignore" in n)
    done = await tap(tg, "operator", private("operator"), op, ignore)
    assert "ignored for 24 hours" in done["text"]
    again = await diagnose(tg, "operator")
    assert title not in again["text"]
    assert "1 issue(s) ignored for 24 h" in again["text"]


async def test_telegram_a_viewer_cannot_use_an_operators_ignore_button(tg) -> None:  # noqa: F811
    from piyasa.help.diagnose import is_ignored

    write_log(tg.services.settings.data_dir)
    op = await diagnose(tg, "operator")
    token = dict(buttons(op))[next(n for n in labels(op) if "Ignore" in n)]
    mine = await diagnose(tg, "viewer")
    answers = len(tg.sb.callback_answers)
    await tg.press("viewer", private("viewer"), mine, token, forge=True)
    await until(lambda: len(tg.sb.callback_answers) > answers, "the refusal of the press")
    assert not await is_ignored(tg.services, "db-locked")


async def test_slack_report_and_export(slack, slack_server) -> None:  # noqa: F811
    write_log(slack.services.settings.data_dir) if hasattr(slack, "services") else None
    _status, ack, _url = await slack.slash("U0VIEWER", "diagnose")
    text = slack_text(ack)
    assert "Health score" in text and "/100" in text
    names = [label for label, _ in slack_buttons(ack)]
    assert "📄 Export (Markdown)" in names
    await slack_tap(slack, slack_server, "U0VIEWER", ack, "📄 Export (Markdown)")
    upload = await slack_upload(slack_server, ".md")
    assert upload["filename"].startswith("piyasa-diagnosis-")
