"""/piyasa bots on Slack: the same list and card; a disable confirmed by a press; typed
edits in a modal, where a bad value ("9-18", an unknown zone) is shown under the input
and changes nothing; a stale card of a removed bot says so (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from chatops import i18n
from piyasa.fleetadmin import bot_changes, bots
from tests.chatops.conftest import people, slack, slack_server  # noqa: F401 (fixtures)
from tests.chatops.slack_server import slack_text
from tests.runtime.helpers import seed
from tests.users.helpers import slack_tap, slack_token
from tests.waiting import PatientSandbox


async def _seeded(services: Any) -> tuple[PatientSandbox, list[Any]]:
    sb = PatientSandbox(enforce_limits=False)
    await sb.start("127.0.0.1", 0)
    rows, _chats = await seed(services, sb, bots=2, chats=1)
    return sb, rows


async def test_slack_list_card_disable_and_modal_edits(slack: Any, slack_server: Any) -> None:  # noqa: F811
    sb, rows = await _seeded(slack.services)
    try:
        _status, ack, _url = await slack.slash("U0OPERATOR", "bots")
        assert "Bots (2)" in slack_text(ack) and "@fleet1_bot" in slack_text(ack)
        card = await slack_tap(slack, slack_server, "U0OPERATOR", ack, "Fleet0")
        assert "Status: on" in slack_text(card)
        confirm = await slack_tap(slack, slack_server, "U0OPERATOR", card, "Disable")
        done = await slack_tap(slack, slack_server, "U0OPERATOR", confirm, "Yes")
        assert "Fleet0 is disabled" in slack_text(done)
        assert not (await bots.get_bot(slack.services, rows[0].id)).enabled
        # active hours typed in a modal: refused under the input, nothing changed
        hours = await slack_tap(slack, slack_server, "U0OPERATOR", done, "Active hours")
        _status, url = await slack.press("U0OPERATOR", slack_token(hours, "Type hours"))
        modal = await slack_server.wait_view("U0OPERATOR")
        outcome = await slack.submit("U0OPERATOR", modal, "9-18")
        want = i18n.t("en", "bots.err.bad_hours", value="9-18")
        assert outcome["errors"] == {"answer": want}
        assert (await bots.get_bot(slack.services, rows[0].id)).active_hours == "00:00-24:00"
        outcome = await slack.submit("U0OPERATOR", modal, "08:00-20:00")
        assert outcome["errors"] is None or not outcome["errors"]
        shown = (await slack_server.wait_response(url))[-1]
        assert "Active hours saved" in slack_text(shown)
        assert (await bots.get_bot(slack.services, rows[0].id)).active_hours == "08:00-20:00"
        # a card of a bot removed meanwhile: its buttons say it is gone
        await bot_changes.remove_bot(slack.services, rows[0].id, "fleet0_bot", actor="t")
        gone = await slack_tap(slack, slack_server, "U0OPERATOR", shown, "Speed")
        assert "There is no fleet bot" in slack_text(gone)
    finally:
        await sb.stop()


async def test_slack_viewer_reads_but_sees_no_change_buttons(slack: Any, slack_server: Any) -> None:  # noqa: F811
    sb, _rows = await _seeded(slack.services)
    try:
        _status, ack, _url = await slack.slash("U0VIEWER", "bots")
        card = await slack_tap(slack, slack_server, "U0VIEWER", ack, "Fleet0")
        labels = slack_text(card)
        assert "Persona:" in labels
        from tests.chatops.slack_server import slack_buttons

        shown = [t for t, _ in slack_buttons(card)]
        assert shown == ["← Bots", "❓ Help"], shown  # reading and help only
    finally:
        await sb.stop()
