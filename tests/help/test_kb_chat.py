"""/kb on Telegram and Slack: browse by category, search (typos, Turkish, a pasted error),
an entry with related entries, [Apply fix] only for roles its action allows and running
that action (settings: current → new, then Apply), and "nothing found" with topics."""

from __future__ import annotations

import pytest

from chatops import i18n
from piyasa.fleetadmin import settings as fs
from piyasa.help.kb import knowledge_base
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import buttons
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import private, slack_tap, tap

# The knowledge base lives in the process; the database only matters to the settings fix,
# whose own tests run on both databases.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KB = knowledge_base()
FIX = i18n.t("en", "kb.btn.fix")


def labels(message: dict) -> list[str]:
    return [label for label, _ in buttons(message)]


async def test_telegram_browse_search_open_related(tg) -> None:  # noqa: F811
    me = private("viewer")
    home = await tg.say("viewer", "/kb")
    assert "Knowledge base" in home["text"] and f"{len(KB.entries)} entries" in home["text"]
    assert "Telegram (15)" in labels(home) and any(
        label.startswith("Slack (") for label in labels(home)
    )
    cat = await tap(tg, "viewer", me, home, "Database (")
    assert KB.entries["db-locked"].w("en").title in labels(cat)
    entry = await tap(tg, "viewer", me, cat, KB.entries["db-locked"].w("en").title)
    assert "Symptoms" in entry["text"] and "PostgreSQL" in entry["text"]
    assert "What to do" in entry["text"] and "1. " in entry["text"]
    related = KB.entries["db-pg-refused"].w("en").title
    assert f"↪ {related}" in labels(entry)
    nxt = await tap(tg, "viewer", me, entry, related)
    assert "5432" in nxt["text"]
    # a viewer may read a fix's entry, but not run the fix (health.run_checks: operator)
    assert FIX not in labels(nxt)
    found = await tg.say("viewer", "/kb databse lockd")
    assert labels(found)[0] == f"1. {KB.entries['db-locked'].w('en').title}"


async def test_telegram_turkish_search_and_pasted_error(tg) -> None:  # noqa: F811
    await tg.say("viewer", "/lang tr")
    found = await tg.say("viewer", "/kb VERITABANI kilitli")
    assert labels(found)[0] == f"1. {KB.entries['db-locked'].w('tr').title}"
    pasted = await tg.say(
        "viewer", "/kb Telegram server says - Forbidden: bot was kicked from the group chat"
    )
    assert labels(pasted)[0] == f"1. {KB.entries['tg-403-kicked'].w('tr').title}"
    none = await tg.say("viewer", "/kb qwxzvbnm")
    assert "“qwxzvbnm” için bir şey bulunamadı" in none["text"]
    assert any(label.startswith("Telegram (") for label in labels(none))  # topics offered


async def test_telegram_operator_applies_the_fix_through_settings(tg) -> None:  # noqa: F811
    me = private("operator")
    entry = await tg.say("operator", "/kb tg-429")
    assert "Too Many Requests" in entry["text"]
    preview = await tap(tg, "operator", me, entry, FIX)
    assert "1 → 0.5" in preview["text"]
    assert (await fs.get(tg.services, "scale_factor")).value == 1.0  # nothing changed yet
    done = await tap(tg, "operator", me, preview, "Apply")
    assert "scale_factor: 1 → 0.5" in done["text"]
    assert (await fs.get(tg.services, "scale_factor")).value == 0.5
    # an entry without an automatic fix says so
    manual = await tg.say("operator", "/kb tg-403-kicked")
    assert FIX not in labels(manual) and "No automatic fix" in manual["text"]


async def test_telegram_huge_query_is_refused_clearly(tg) -> None:  # noqa: F811
    reply = await tg.say("viewer", "/kb " + "ş" * 4100)
    assert "too long" in reply["text"].lower()
    # only the refusal's 📘 Learn more (h17ctx), nothing of /kb
    assert [b for b, _ in buttons(reply)] == [i18n.t("en", "help.btn.learn")]


async def test_slack_search_entry_and_fix(slack, slack_server) -> None:  # noqa: F811
    _status, ack, _url = await slack.slash("U0VIEWER", "kb slack imza")  # tr words, en reader
    assert slack_buttons(ack)[0][0].startswith("1. Slack: request signature")
    _status, ack, _url = await slack.slash("U0VIEWER", "kb not_in_channel")
    first = slack_buttons(ack)[0][0]
    assert first == f"1. {KB.entries['slack-not-in-channel'].w('en').title}"[:75]
    entry = await slack_tap(slack, slack_server, "U0VIEWER", ack, first)
    assert "/invite" in slack_text(entry)
    _status, ack, _url = await slack.slash("U0OPERATOR", "kb llm-quota")
    preview = await slack_tap(slack, slack_server, "U0OPERATOR", ack, FIX)
    assert "1 → 0.5" in slack_text(preview)
    _status, ack, _url = await slack.slash("U0VIEWER", "kb llm-quota")
    assert FIX not in [label for label, _ in slack_buttons(ack)]
