"""Issue 12 item 6: Slack Web API failures, through the real slack_sdk client talking HTTP to
the local Slack. A rate-limited ``chat.postMessage`` is retried after ``Retry-After``; every
other error becomes an answer that says what to do, in the user's language, through the
``response_url`` of the command or press — never the generic "try again in a minute".

The path: ``/piyasa health`` then [📡 Live], which posts a channel message the live view
keeps updating (``chat.postMessage``). SQLite only: nothing here depends on the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatops import i18n
from piyasa.admin.health import HealthService, State, Thresholds
from tests.chatops.conftest import start_slack
from tests.chatops.harness import with_admin_settings
from tests.chatops.slack_server import SlackClient, dm_of, slack_text
from tests.health.conftest import Scripted
from tests.users.helpers import slack_token

LIVE = "📡 Live"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["en", "tr"])
async def slack_live(request, services, people, slack_server) -> AsyncIterator[SlackClient]:  # type: ignore[no-untyped-def]
    """The Slack app with a health monitor, in ``PIYASA_LANG`` en or tr (the seeded users
    chose no language, so that is theirs)."""
    with_admin_settings(services, "http://127.0.0.1:9")
    services.settings = dataclasses.replace(services.settings, lang=request.param)
    health = HealthService(
        services,
        probes=[Scripted("database", State.HEALTHY)],
        thresholds=Thresholds(interval_s=0.2, probe_timeout_s=1.0),
        record_stop=False,
    )
    services.extras["health"] = health
    await health.start()
    try:
        async for client, surface in start_slack(services, slack_server):
            await surface.check_token()  # what start-up does: learns the bot's name
            client.lang = request.param  # type: ignore[attr-defined]
            yield client
            live = services.extras.get("health.live")
            if live is not None:
                await live.stop_all()
    finally:
        await health.stop()


async def press_live(slack: Any, server: Any) -> list[dict]:
    """``/piyasa health``, then [📡 Live]; returns the answers to the press."""
    status, ack, _ = await slack.slash("U0ADMIN", "health")
    assert status == 200
    label = i18n.t(slack.lang, "health.live.start")
    status, url = await slack.press("U0ADMIN", slack_token(ack, label))
    assert status == 200
    return await server.wait_response(url)


def _channel_posts(server: Any) -> list[dict]:
    return [m for m in server.posted if m["channel"] == "C0OPS"]


async def test_rate_limited_post_is_retried_after_retry_after(slack_live, slack_server) -> None:
    slack_server.rate_limit_next["chat.postMessage"] = 1
    (answer,) = await press_live(slack_live, slack_server)
    text = slack_text(answer)
    assert i18n.t(slack_live.lang, "health.live.posted") in text
    assert i18n.t(slack_live.lang, "error.internal") not in text
    assert len(_channel_posts(slack_server)) == 1  # the live view, once
    posts = [(at, status) for m, at, status in slack_server.timeline if m == "chat.postMessage"]
    assert [status for _, status in posts] == [429, 200]
    assert posts[1][0] - posts[0][0] >= 1.0  # not before Slack's Retry-After


EXPECTED = {
    # Slack error body -> (catalog key, values, a phrase a reader of that language needs)
    "not_in_channel": (
        {"error": "not_in_channel"},
        "slack.error.not_in_channel",
        {"en": "/invite @piyasa", "tr": "/invite @piyasa ile davet edin"},
    ),
    "missing_scope": (
        {"error": "missing_scope", "needed": "chat:write", "provided": "commands"},
        "slack.error.missing_scope",
        {"en": "lacks the chat:write permission", "tr": "chat:write izni yok"},
    ),
    "token_revoked": (
        {"error": "token_revoked"},
        "slack.error.token",
        {"en": "PIYASA_SLACK_BOT_TOKEN", "tr": "PIYASA_SLACK_BOT_TOKEN içine"},
    ),
    "channel_not_found": (
        {"error": "channel_not_found"},
        "slack.error.channel_not_found",
        {"en": "it is private and I am not a member", "tr": "kanal özel ve üyesi değilim"},
    ),
    "is_archived": (
        {"error": "is_archived"},
        "slack.error.is_archived",
        {"en": "Unarchive it", "tr": "Arşivden çıkarın"},
    ),
    "msg_too_long": (
        {"error": "msg_too_long"},
        "slack.error.too_long",
        {"en": "Ask for less", "tr": "Daha azını isteyin"},
    ),
}


@pytest.mark.parametrize("error", list(EXPECTED))
async def test_web_api_errors_get_a_specific_answer(slack_live, slack_server, error) -> None:
    body, key, phrase = EXPECTED[error]
    lang = slack_live.lang
    slack_server.fail_next["chat.postMessage"] = body
    (answer,) = await press_live(slack_live, slack_server)
    text = slack_text(answer)
    assert phrase[lang] in text
    assert i18n.t(lang, key, error=error, bot="piyasa", scope="chat:write") in text
    assert i18n.t(lang, "error.internal") not in text
    assert not answer.get("replace_original")  # beside the health view, which stays
    assert _channel_posts(slack_server) == []


async def test_a_rate_limit_longer_than_we_wait_says_when_to_try_again(
    slack_live, slack_server
) -> None:
    """Slack asking for minutes: the press is not held that long; the user learns when."""
    slack_server.rate_limit_next["chat.postMessage"] = 120
    (answer,) = await press_live(slack_live, slack_server)
    text = slack_text(answer)
    assert i18n.t(slack_live.lang, "slack.error.ratelimited", seconds=120) in text
    assert "120" in text and i18n.t(slack_live.lang, "error.internal") not in text


async def test_a_file_slack_refuses_is_explained_not_dropped(slack_live, slack_server) -> None:
    """`/piyasa mfa` sends its QR code as a file to the user's DM: without files:write
    the upload fails after the ack, and the user is told why instead of waiting for it."""
    lang = slack_live.lang
    slack_server.fail_next["files.getUploadURLExternal"] = {
        "error": "missing_scope",
        "needed": "files:write",
        "provided": "commands,chat:write",
    }
    status, _ack, url = await slack_live.slash("U0VIEWER", "mfa", channel=dm_of("U0VIEWER"))
    assert status == 200
    (answer,) = await slack_server.wait_response(url)
    text = slack_text(answer)
    assert i18n.t(lang, "slack.error.missing_scope", scope="files:write") in text
    assert slack_server.uploads == []
