"""Issue 17's fixes with preview and undo, on Telegram and Slack: /diagnose's [Apply fix]
shows the value the report saw → the recommended one, applies it audited, and the change
is undone from the confirmation or from /audit; a fix whose preconditions changed since
the report (the setting moved, the issue is gone) refuses, changes nothing and shows a
fresh diagnosis; a stale or forged Undo changes nothing; a viewer sees no Undo.

The fault: a burst of Telegram 429s in the JSON log (the log analyzer names it ``tg-429``,
whose fix halves ``scale_factor``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatops import i18n
from piyasa.fleetadmin import settings as fs
from piyasa.help.kb import knowledge_base
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import audit_count, next_audit
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.help.test_diagnose_chat import diagnose, labels
from tests.users.helpers import private, slack_tap, slack_token, tap, token_for
from tests.waiting import until

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TITLE = knowledge_base().entries["tg-429"].w("en").title
UNDO_IN_AUDIT = "↩ Undo scale_factor: 1 → 0.5"


def write_429s(data_dir: Path, n: int = 12) -> Path:
    """A burst of Telegram 429 errors in the JSON log (what the fleet logs in a storm)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat()
    row = {
        "ts": now,
        "level": "ERROR",
        "logger": "piyasa.runtime.delivery",
        "msg": "send failed: Telegram server says - Too Many Requests: retry after 5",
        "exc": "TelegramRetryAfter",
    }
    path = data_dir / "piyasa.jsonl"
    path.write_text("\n".join(json.dumps(row) for _ in range(n)) + "\n")
    return path


def fix_label(report_text: str) -> str:
    """The [Apply fix] of the 429 issue: its number is the issue's place in the report."""
    line = next(x for x in report_text.split("\n") if TITLE in x)
    return f"🛠 {line.split('.', 1)[0].strip()}. Apply fix"


async def scale(services) -> float:  # type: ignore[no-untyped-def]
    return (await fs.get(services, "scale_factor")).value


async def test_telegram_apply_is_audited_and_undone_from_audit(tg) -> None:  # noqa: F811
    write_429s(tg.services.settings.data_dir)
    me = private("operator")
    report = await diagnose(tg, "operator")
    preview = await tap(tg, "operator", me, report, fix_label(report["text"]))
    assert "scale_factor: 1 → 0.5" in preview["text"] and TITLE in preview["text"]
    assert await scale(tg.services) == 1.0  # nothing changed yet
    n = await audit_count(tg.services)
    done = await tap(tg, "operator", me, preview, "✅ Apply")
    assert "scale_factor: 1 → 0.5" in done["text"] and await scale(tg.services) == 0.5
    assert "↩ Undo last change" in labels(done)  # undo from the confirmation too
    row = await next_audit(tg.services, n, action="diagnose.fix_apply")
    assert row.result == "ok" and row.target == "scale_factor"
    assert (row.params["old"], row.params["new"]) == (1.0, 0.5)

    # a fresh report names the fix in force (another setting changed since does not hide
    # it) with its Undo; a viewer's, without either button
    await fs.change_setting(tg.services, "max_msgs_per_min", 30, actor="someone_else")
    ours = await diagnose(tg, "operator")
    assert "Last fix applied: scale_factor 1 → 0.5" in ours["text"]
    assert UNDO_IN_AUDIT in labels(ours)
    mine = await diagnose(tg, "viewer")
    assert TITLE in mine["text"] and "Last fix applied" in mine["text"]
    assert not [x for x in labels(mine) if "Apply fix" in x or "Undo" in x]

    admin = private("admin")
    audit = await tg.say("admin", "/audit")
    assert UNDO_IN_AUDIT in labels(audit)
    assert labels(audit).count(UNDO_IN_AUDIT) == 1  # one change, though two audit rows
    confirm = await tap(tg, "admin", admin, audit, UNDO_IN_AUDIT)
    undone = await tap(tg, "admin", admin, confirm, "Yes")
    assert "back to 1" in undone["text"] and await scale(tg.services) == 1.0
    again = await tg.say("admin", "/audit")  # nothing left to undo for that change
    assert UNDO_IN_AUDIT not in labels(again)


async def test_telegram_changed_precondition_refuses_and_rediagnoses(tg) -> None:  # noqa: F811
    log = write_429s(tg.services.settings.data_dir)
    me = private("operator")
    report = await diagnose(tg, "operator")
    preview = await tap(tg, "operator", me, report, fix_label(report["text"]))
    await fs.change_setting(tg.services, "scale_factor", 3, actor="someone_else")  # meanwhile
    n = await audit_count(tg.services)
    refused = await tap(tg, "operator", me, preview, "✅ Apply")
    text = refused["text"]
    assert "scale_factor is 3 now, not 1 as the report saw" in text
    assert "Health score" in text and TITLE in text  # the fresh diagnosis
    assert await scale(tg.services) == 3.0
    row = await next_audit(tg.services, n, action="diagnose.fix_apply")
    assert row.params.get("outcome") == "stale"
    # the fresh report's fix starts from what is there now: 3 → 1.5
    fresh = await tap(tg, "operator", me, refused, fix_label(text))
    assert "scale_factor: 3 → 1.5" in fresh["text"]

    # the fault is gone by the time Apply is pressed: refused, nothing changed
    log.unlink()
    gone = await tap(tg, "operator", me, fresh, "✅ Apply")
    assert f"“{TITLE}” is no longer found" in gone["text"] and "Health score" in gone["text"]
    assert await scale(tg.services) == 3.0


async def test_telegram_stale_or_forged_undo_changes_nothing(tg) -> None:  # noqa: F811
    write_429s(tg.services.settings.data_dir)
    me = private("operator")
    report = await diagnose(tg, "operator")
    preview = await tap(tg, "operator", me, report, fix_label(report["text"]))
    done = await tap(tg, "operator", me, preview, "✅ Apply")
    admin = private("admin")
    audit = await tg.say("admin", "/audit")
    undo_token = token_for(audit, UNDO_IN_AUDIT)

    # a viewer: /audit is not theirs, and a press of the admin's Undo is refused
    viewer = private("viewer")
    mine = await tg.say("viewer", "/settings")
    assert not [x for x in labels(mine) if "Undo" in x]
    answers = len(tg.sb.callback_answers)
    await tg.press("viewer", viewer, mine, undo_token, forge=True)
    await until(lambda: len(tg.sb.callback_answers) > answers, "the refusal of the press")
    # ... and so is an Undo bound to them (as a forged or old button would be)
    n = await audit_count(tg.services)
    change = await fs.last_change(tg.services, "scale_factor")
    forged = await tg.surface.tokens.issue(
        spec_id="settings.undo",
        surface="telegram",
        user=str(viewer),
        chat=str(viewer),
        params={"key": "scale_factor", "c": change.id},
        confirmed=True,
    )
    await tg.press("viewer", viewer, mine, forged, forge=True)
    assert (await next_audit(tg.services, n, action="settings.undo")).result == "denied_role"
    assert await scale(tg.services) == 0.5

    # stale: the setting changed after the Undo was shown; neither Undo puts 1 back
    await fs.change_setting(tg.services, "scale_factor", 0.8, actor="someone_else")
    confirm = await tap(tg, "admin", admin, audit, UNDO_IN_AUDIT)
    reply = await tap(tg, "admin", admin, confirm, "Yes")
    assert "scale_factor was changed again since that Undo was shown" in reply["text"]
    confirm = await tap(tg, "operator", me, done, "↩ Undo last change")
    reply = await tap(tg, "operator", me, confirm, "Yes")
    assert "changed again since" in reply["text"]
    assert await scale(tg.services) == 0.8


async def test_slack_apply_then_undo_from_audit(slack, slack_server) -> None:  # noqa: F811
    write_429s(slack.services.settings.data_dir)
    _status, ack, _url = await slack.slash("U0OPERATOR", "diagnose")
    text = slack_text(ack)
    assert TITLE in text
    preview = await slack_tap(slack, slack_server, "U0OPERATOR", ack, fix_label(text))
    assert "scale_factor: 1 → 0.5" in slack_text(preview)
    assert await scale(slack.services) == 1.0
    done = await slack_tap(slack, slack_server, "U0OPERATOR", preview, "Apply")
    assert "scale_factor: 1 → 0.5" in slack_text(done) and await scale(slack.services) == 0.5

    # a viewer's report: no fix, no Undo
    _status, mine, _url = await slack.slash("U0VIEWER", "diagnose")
    assert "Last fix applied: scale_factor 1 → 0.5" in slack_text(mine)
    assert not [x for x, _ in slack_buttons(mine) if "Apply fix" in x or "Undo" in x]

    _status, audit, _url = await slack.slash("U0ADMIN", "audit")
    assert UNDO_IN_AUDIT in [x for x, _ in slack_buttons(audit)]
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", audit, UNDO_IN_AUDIT)
    undone = await slack_tap(slack, slack_server, "U0ADMIN", confirm, "Yes")
    assert "back to 1" in slack_text(undone) and await scale(slack.services) == 1.0
    _status, ours, _url = await slack.slash("U0OPERATOR", "diagnose")  # undone: no longer shown
    assert "Last fix applied" not in slack_text(ours)


async def test_slack_forged_and_stale_undo_change_nothing(slack, slack_server) -> None:  # noqa: F811
    write_429s(slack.services.settings.data_dir)
    _status, ack, _url = await slack.slash("U0OPERATOR", "diagnose")
    preview = await slack_tap(slack, slack_server, "U0OPERATOR", ack, fix_label(slack_text(ack)))
    await slack_tap(slack, slack_server, "U0OPERATOR", preview, "Apply")
    _status, audit, _url = await slack.slash("U0ADMIN", "audit")
    token = slack_token(audit, UNDO_IN_AUDIT)
    # a viewer pressing the admin's Undo: refused, nothing changed
    _status, url = await slack.press("U0VIEWER", token)
    (answer,) = await slack_server.wait_response(url)
    assert i18n.t("en", "refuse.button") in slack_text(answer)
    assert await scale(slack.services) == 0.5
    # stale: changed again after the Undo was shown
    await fs.change_setting(slack.services, "scale_factor", 0.8, actor="someone_else")
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", audit, UNDO_IN_AUDIT)
    reply = await slack_tap(slack, slack_server, "U0ADMIN", confirm, "Yes")
    assert "scale_factor was changed again since that Undo was shown" in slack_text(reply)
    assert await scale(slack.services) == 0.8


async def test_slack_changed_precondition_refuses(slack, slack_server) -> None:  # noqa: F811
    write_429s(slack.services.settings.data_dir)
    _status, ack, _url = await slack.slash("U0OPERATOR", "diagnose")
    preview = await slack_tap(slack, slack_server, "U0OPERATOR", ack, fix_label(slack_text(ack)))
    await fs.change_setting(slack.services, "scale_factor", 3, actor="someone_else")
    refused = await slack_tap(slack, slack_server, "U0OPERATOR", preview, "Apply")
    text = slack_text(refused)
    assert "scale_factor is 3 now, not 1 as the report saw" in text and "Health score" in text
    assert await scale(slack.services) == 3.0
    # changed and changed back: the value is the same, but not the one the report saw
    await fs.change_setting(slack.services, "scale_factor", 1, actor="someone_else")
    refused = await slack_tap(slack, slack_server, "U0OPERATOR", preview, "Apply")
    assert "scale_factor was changed meanwhile (now version 2)" in slack_text(refused)
    assert (await fs.get(slack.services, "scale_factor")).version == 2
