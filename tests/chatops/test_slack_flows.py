"""The Slack app through signed HTTP requests into our aiohttp server, real slack-bolt."""

from __future__ import annotations

import time

import pytest

from chatops import i18n
from piyasa.admin.users import link_code_for
from tests.chatops.conftest import start_slack
from tests.chatops.harness import registry_for_tests, with_admin_settings
from tests.chatops.slack_server import dm_of, slack_buttons, slack_text


@pytest.fixture
async def slackx(services, people, slack_server):  # type: ignore[no-untyped-def]
    with_admin_settings(services, "http://127.0.0.1:9")
    reg = registry_for_tests()
    async for client, _surface in start_slack(services, slack_server, reg):
        client.registry = reg
        yield client


async def test_bad_and_stale_signatures_get_401(slack) -> None:
    status, _, _ = await slack.slash("U0ADMIN", "help", secret="not-the-secret")
    assert status == 401
    status, _, _ = await slack.slash("U0ADMIN", "help", timestamp=int(time.time()) - 600)
    assert status == 401
    status, ack, _ = await slack.slash("U0ADMIN", "help")
    assert status == 200 and ack["blocks"][0]["type"] == "header"
    assert "linkcode" in slack_text(ack)


async def test_unknown_slack_user_is_told_how_to_link_and_can(slack, slack_server) -> None:
    _status, ack, _ = await slack.slash("U0STRANGER", "whoami")
    text = slack_text(ack)
    assert "/piyasa link" in text and "U0STRANGER" in text
    code = await link_code_for(slack.services, "user_operator")
    # typed in a channel: refused, pointing to the app's DM; nobody else saw the slash
    # command, so the code is not burned
    _, ack, _ = await slack.slash("U0STRANGER", f"link {code}")
    where = i18n.t("en", "refuse.private_where.slack")
    assert i18n.t("en", "refuse.private_only", where=where) in slack_text(ack)
    _, ack, _ = await slack.slash("U0STRANGER", f"link {code}", channel=dm_of("U0STRANGER"))
    assert "user_operator" in slack_text(ack)
    _, ack, _ = await slack.slash("U0STRANGER", "whoami")
    assert "operator" in slack_text(ack)


async def test_button_press_edits_in_place_and_foreign_press_changes_nothing(
    slack, slack_server
) -> None:
    _, ack, _ = await slack.slash("U0VIEWER", "lang")
    (_, tr_value), _en, _help = slack_buttons(ack)  # h17ctx: ❓ Help last
    _status, url = await slack.press("U0ADMIN", tr_value)  # not the viewer's button
    (answer,) = await slack_server.wait_response(url)
    assert not answer.get("replace_original")
    assert i18n.t("en", "refuse.button") in slack_text(answer)
    _status, url = await slack.press("U0VIEWER", tr_value)
    (answer,) = await slack_server.wait_response(url)
    assert answer["replace_original"] is True and "Türkçe" in slack_text(answer)


async def test_slow_work_is_acked_then_answered_via_response_url(slackx, slack_server) -> None:
    status, ack, url = await slackx.slash("U0VIEWER", "slow", final=False)
    assert status == 200 and i18n.t("en", "slack.working") in slack_text(ack)
    slackx.registry.gate.set()
    (answer,) = await slack_server.wait_response(url)
    assert "slow result" in slack_text(answer)


async def test_long_views_become_several_valid_messages(slackx, slack_server) -> None:
    status, ack, url = await slackx.slash("U0VIEWER", "long")
    assert status == 200 and len(ack["blocks"]) <= 50
    rest = await slack_server.wait_response(url)
    # follow-ups arrive one post at a time: wait until the last row has come
    while "row 599" not in "".join(slack_text(m) for m in rest):
        rest = await slack_server.wait_response(url, count=len(rest) + 1)
    assert all(len(m["blocks"]) <= 50 for m in rest)
    text = slack_text(ack) + "".join(slack_text(m) for m in rest)
    assert "&lt;row 599&gt; &amp; more" in text


async def test_step_up_and_confirm_on_slack(slackx, slack_server) -> None:
    import pyotp

    from piyasa.admin import auth

    secret = await auth.enroll_totp(slackx.services, 4)  # user_admin (ids are seeded in order)
    _, ack, url = await slackx.slash("U0ADMIN", "danger db")
    assert "/piyasa stepup" in slack_text(ack)
    code = pyotp.TOTP(secret).now()
    _, _ack2, _url2 = await slackx.slash("U0ADMIN", f"stepup {code}", channel=dm_of("U0ADMIN"))
    confirm = (await slack_server.wait_response(url))[-1]
    assert "Are you sure" in slack_text(confirm)
    yes = slack_buttons(confirm)[0][1]
    _, press_url = await slackx.press("U0ADMIN", yes)
    (done,) = await slack_server.wait_response(press_url)
    assert "destroyed db" in slack_text(done) and slackx.registry.fired == ["db"]
    _, ack3, _ = await slackx.slash("U0ADMIN", f"stepup {code}", channel=dm_of("U0ADMIN"))
    assert "already used" in slack_text(ack3)
