"""/docs on Telegram and Slack: the pages and their links, search over pages, FAQ and KB
(Turkish too), an unknown page names the closest, and the tutorial ticks a step only when
the real state says it was done."""

from __future__ import annotations

import pytest

from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import buttons
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.runtime.helpers import seed
from tests.users.helpers import private, slack_tap, tap

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def labels(message: dict) -> list[str]:
    return [label for label, _ in buttons(message)]


async def test_telegram_pages_links_search_and_unknown(tg) -> None:  # noqa: F811
    me = private("viewer")
    home = await tg.say("viewer", "/docs")
    assert "User guide" in home["text"] and "📄 Getting started (5 minutes)" in labels(home)
    page = await tap(tg, "viewer", me, home, "📄 Getting started (5 minutes)")
    assert "piyasa up" in page["text"] and "(adding-a-bot.md)" not in page["text"]
    nxt = await tap(tg, "viewer", me, page, "↪ Adding a bot")
    assert "@BotFather" in nxt["text"]
    found = await tg.say("viewer", "/docs backup secret key")
    assert any("Backups" in n for n in labels(found))
    close = await tg.say("viewer", "/docs alert")
    assert "closest" in close["text"] and "📄 Alerts" in labels(close)
    none = await tg.say("viewer", "/docs qwxzvbnm")
    assert "Nothing found" in none["text"] and "📄 FAQ" in labels(none)
    await tg.say("viewer", "/lang tr")
    tr = await tg.say("viewer", "/docs yedek")
    assert any("Yedekler" in n for n in labels(tr))


async def test_telegram_tutorial_checks_the_real_state(tg) -> None:  # noqa: F811
    me = private("operator")
    listing = await tg.say("operator", "/docs tutorial")
    assert "🎓 Add your first bot" in labels(listing) and "not started" in listing["text"]
    step1 = await tap(tg, "operator", me, listing, "🎓 Add your first bot")
    assert "Step 1/4 ●○○○" in step1["text"]
    step2 = await tap(tg, "operator", me, step1, "✅ Done — check")
    assert "Step 2/4 ●●○○" in step2["text"] and "Step 1 done" in step2["text"]
    again = await tap(tg, "operator", me, step2, "✅ Done — check")
    assert "Step 2/4" in again["text"] and "No bot yet" in again["text"]  # not ticked
    await seed(tg.services, tg.sb, bots=1, chats=1)  # the bot added, in a group
    step3 = await tap(tg, "operator", me, again, "✅ Done — check")
    assert "Step 3/4 ●●●○" in step3["text"]
    step4 = await tap(tg, "operator", me, step3, "✅ Done — check")
    done = await tap(tg, "operator", me, step4, "✅ Done — check")
    assert "●●●●" in done["text"] and "All done" in done["text"]


async def test_slack_docs_page_and_search(slack, slack_server) -> None:  # noqa: F811
    _status, ack, _url = await slack.slash("U0VIEWER", "docs")
    names = [label for label, _ in slack_buttons(ack)]
    assert "📄 Troubleshooting" in names
    page = await slack_tap(slack, slack_server, "U0VIEWER", ack, "📄 Troubleshooting")
    assert "/diagnose" in slack_text(page)
    _status, ack, _url = await slack.slash("U0VIEWER", "docs health score")
    assert slack_buttons(ack)
