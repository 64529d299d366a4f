"""Input the database refuses, and names that reorder a screen: both surfaces, both databases.

A NUL byte in a /users search used to break the query on PostgreSQL *and* the audit row
about it; now every argument and dialog answer is checked at the edge, refused with a
clear message and audited. Bidi controls in user-supplied names are shown neutralised.
"""

from __future__ import annotations

from sqlalchemy import update

from chatops import i18n
from piyasa.admin import users as svc
from piyasa.db.models import Identity
from tests.chatops.harness import audit_count, next_audit
from tests.chatops.slack_server import slack_text
from tests.users.helpers import private, slack_tap, tap

CONTROL = i18n.t("en", "refuse.input.control")
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
EVIL = f"Ayşe {RLO}gnp.exe"  # reads "Ayşe exe.png" where it is not neutralised


async def test_nul_in_search_is_refused_and_audited_telegram(tg) -> None:
    mark = await audit_count(tg.services)
    reply = await tg.say("admin", "/users ab\x00c")
    assert reply["text"] == "⛔ " + CONTROL
    row = await next_audit(tg.services, mark, action="users")
    assert row.result == "refused_input" and row.params["search"] == "ab\\x00c"
    too_long = await tg.say("admin", "/users " + "x" * 65)
    assert too_long["text"] == "⛔ " + i18n.t("en", "refuse.input.too_long", max=64)
    row = await next_audit(tg.services, row.id, action="users")
    assert row.result == "refused_input"
    ok = await tg.say("admin", "/users " + "x" * 64)  # the cap itself is fine
    assert ok["text"].startswith("Users (0)")


async def test_nul_in_a_dialog_answer_is_refused_and_the_dialog_stays(tg) -> None:
    await tg.say("admin", "/adduser")
    mark = await audit_count(tg.services)
    refused = await tg.say("admin", "new\x00bie")
    assert refused["text"] == "⛔ " + CONTROL
    row = await next_audit(tg.services, mark, action="adduser.input")
    assert row.result == "refused_input"
    step = await tg.say("admin", "newbie")
    assert "Step 2/6" in step["text"]


async def test_nul_in_search_is_refused_and_audited_slack(slack, slack_server) -> None:
    mark = await audit_count(slack.services)
    _, ack, _ = await slack.slash("U0ADMIN", "users ab\x00c")
    assert CONTROL in slack_text(ack)
    row = await next_audit(slack.services, mark, action="users")
    assert row.result == "refused_input" and row.surface == "slack"
    _, ack, _ = await slack.slash("U0ADMIN", "users " + "x" * 65)
    assert i18n.t("en", "refuse.input.too_long", max=64) in slack_text(ack)
    # the service refuses such a search too (CLI, anything not going through chat)
    page = await svc.query_users(slack.services, search="a\x00")
    assert page.total == 0


async def _evil_display_name(services, username: str) -> None:  # type: ignore[no-untyped-def]
    uid = (await svc.get_user(services, username)).id
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(Identity).where(Identity.user_id == uid).values(display_name=EVIL)
        )


async def test_bidi_controls_in_names_are_neutralised_telegram(tg) -> None:
    await _evil_display_name(tg.services, "user_viewer")
    me = private("admin")
    card = await tg.say("admin", "/users viewer")
    card = await tap(tg, "admin", me, card, "👤 user_viewer")
    sessions = await tap(tg, "admin", me, card, "Sessions")
    assert RLO not in sessions["text"] and "Ayşe [U+202E]gnp.exe" in sessions["text"]
    echoed = await tg.say("admin", f"/users {RLO}view")
    assert RLO not in echoed["text"] and "[U+202E]view" in echoed["text"]


async def test_bidi_controls_in_names_are_neutralised_slack(slack, slack_server) -> None:
    await _evil_display_name(slack.services, "user_viewer")
    _, ack, _ = await slack.slash("U0ADMIN", "users viewer")
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_viewer")
    sessions = await slack_tap(slack, slack_server, "U0ADMIN", card, "Sessions")
    text = slack_text(sessions)
    assert RLO not in text and "Ayşe [U+202E]gnp.exe" in text
