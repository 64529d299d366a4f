"""Issue 12 item 2 for Slack, in process: start-up calls ``auth.test``; a token Slack refuses
makes the Slack part failed with the reason (token masked), a ``slack`` health component
critical — the state-change event the alerter posts to the other surface — and the route
tells whoever types a command what to do; the check is retried with backoff and recovers.
The whole `piyasa up` process: tests/e2e/test_slack_outage.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chatops.startup import Surfaces
from chatops.web.server import make_web_app, start_web
from piyasa.admin.health import HealthEvent, HealthService, State, Thresholds
from piyasa.config import Secret
from tests.chatops.harness import with_admin_settings
from tests.chatops.slack_server import BOT_TOKEN, SIGNING_SECRET, SlackClient, slack_text
from tests.health.conftest import Scripted
from tests.waiting import until


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


def _event(events: list[HealthEvent], state: State) -> HealthEvent | None:
    return next((e for e in events if e.component == "slack" and e.current is state), None)


async def test_a_refused_slack_token_is_reported_alerted_answered_and_retried(
    services, people, slack_server
) -> None:
    slack_server.token = "xoxb-1111-another-workspace-token"  # ours is refused: invalid_auth
    with_admin_settings(services, "http://127.0.0.1:9")
    services.settings = dataclasses.replace(
        services.settings,
        admin_bot_token=Secret(""),
        slack_bot_token=Secret(BOT_TOKEN),
        slack_signing_secret=Secret(SIGNING_SECRET),
        slack_api_url=slack_server.base + "/api/",
    )
    health = HealthService(
        services,
        probes=[Scripted("database")],
        thresholds=Thresholds(interval_s=0.2, probe_timeout_s=1.0),
        record_stop=False,
    )
    events: list[HealthEvent] = []
    health.subscribe(events.append)
    services.extras["health"] = health
    await health.start()
    web_app = make_web_app(services)
    states: list[tuple[str, str | None]] = []
    surfaces = Surfaces(services, web_app, on_state=lambda s, p: states.append((s, p)))
    runner, port = await start_web(web_app, "127.0.0.1", 0)
    try:
        (line,) = await surfaces.start()  # returns: `piyasa up` goes on serving
        assert "Slack app not ready" in line and "invalid_auth" in line
        assert states == [("slack", states[0][1])] and "refused the bot token" in str(states[0][1])
        critical = await until(lambda: _event(events, State.CRITICAL), "a slack critical event")
        assert "invalid_auth" in critical.summary and "PIYASA_SLACK_BOT_TOKEN" in critical.summary
        assert BOT_TOKEN not in json.dumps([states, critical.summary, line])

        slack = SlackClient(slack_server, f"http://127.0.0.1:{port}/slack/events")
        status, ack, _ = await slack.slash("U0ADMIN", "health")
        assert status == 200 and "PIYASA_SLACK_BOT_TOKEN" in slack_text(ack)

        slack_server.token = BOT_TOKEN  # a new token was installed: the retry picks it up
        await until(lambda: states[-1] == ("slack", None), "the Slack part to recover")
        await until(lambda: _event(events, State.HEALTHY), "a slack healthy event")
        status, ack, _ = await slack.slash("U0ADMIN", "whoami")
        assert status == 200 and "user_admin" in slack_text(ack)
    finally:
        await surfaces.stop()
        await runner.cleanup()
        await health.stop()
