"""Slack cannot delete what a user typed, so /piyasa setup points to the Telegram wizard."""

from __future__ import annotations

from tests.chatops.conftest import people, slack, slack_server  # noqa: F401  (fixtures)
from tests.chatops.slack_server import slack_buttons, slack_text


async def test_slack_setup_points_admins_to_telegram_with_the_status(slack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    status, ack, _url = await slack.slash("U0ADMIN", "setup")
    text = slack_text(ack)
    assert status == 200
    assert "Continue in Telegram" in text and "send /setup" in text
    assert "Admin" in text and "piyasa check" in text
    # no setup code waits: /setup is the admins' (declared in the registry), so a viewer
    # gets the pipeline's refusal, which shows nothing of the setup
    status, ack, _url = await slack.slash("U0VIEWER", "setup")
    text = slack_text(ack)
    assert "does not exist or you may not run it" in text
    assert "Continue in Telegram" not in text and "Admin:" not in text
    assert not [b for b in slack_buttons(ack) if "setup." in str(b)]
