"""The world of the `/alerts` center tests: both chat surfaces, users at every role, a
health monitor (the target of a notice's fix action) and the notification service on a
clock the test moves; helpers to fire an incident and press its buttons on either surface."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from chatops.notify_delivery import start_notifications
from piyasa.admin.notify import emit
from piyasa.admin.notify import store as notify_store
from piyasa.config import Secret
from piyasa.services import Services
from tests.chatops.conftest import slack_server, start_slack, start_telegram  # noqa: F401
from tests.chatops.harness import (
    ADMIN_GROUP,
    PEOPLE,
    seed_people,
    wait_answer,
)
from tests.chatops.slack_server import BOT_TOKEN, slack_buttons, slack_text
from tests.health.conftest import Scripted
from tests.health_chat.conftest import button, start_health
from tests.notify.conftest import START, Clock, critical
from tests.waiting import until

SURFACES = ("telegram", "slack")
TITLE = "🔴 Critical: Database"  # a firing notice's first line


@pytest.fixture
async def world(services: Services, slack_server) -> AsyncIterator[Any]:  # noqa: F811
    """Both surfaces, users at every role, a health monitor (the fix actions' target) and
    the notification service on a clock the test moves."""
    users = await seed_people(services)
    probe = Scripted("database")
    health = await start_health(services, [probe])
    try:
        async for tg in start_telegram(services):
            async for slack, slack_surface in start_slack(services, slack_server):
                services.settings = dataclasses.replace(
                    services.settings,
                    slack_bot_token=Secret(BOT_TOKEN),
                    slack_alert_channel="C0OPS",
                )
                surfaces = SimpleNamespace(telegram=tg.surface, slack=slack_surface)
                notify = await start_notifications(services, surfaces)
                notify.tick_s = 0.05
                clock = notify.clock = Clock(START)
                try:
                    yield SimpleNamespace(
                        tg=tg,
                        slack=slack,
                        server=slack_server,
                        notify=notify,
                        clock=clock,
                        services=services,
                        users=users,
                        probe=probe,
                    )
                finally:
                    await notify.stop()
    finally:
        await health.stop()


# -- helpers -----------------------------------------------------------------------------------


def tg_notices(world: Any, text: str = TITLE) -> list[dict]:
    return [
        m
        for m in world.tg.sb.sent(ADMIN_GROUP, world.tg.bot_id)
        if (m.get("text") or "").split("\n")[0] == text
    ]


def slack_notices(world: Any, text: str = TITLE) -> list[dict]:
    return [
        m
        for m in world.server.posted
        if m["channel"] == "C0OPS" and slack_text(m).split("\n")[0] == text
    ]


def counts(world: Any, text: str = TITLE) -> tuple[int, int]:
    return len(tg_notices(world, text)), len(slack_notices(world, text))


async def fire(world: Any, key: str = "database") -> dict[str, dict]:
    """A critical health event for ``key``: its notice on each surface."""
    title = f"🔴 Critical: {key.capitalize()}"
    before = counts(world, title)
    emit(world.services.extras, critical(key))
    await until(
        lambda: (
            all(a > b for a, b in zip(counts(world, title), before, strict=True))
            and slack_buttons(slack_notices(world, title)[-1])
        ),  # posted, then given its buttons
        "the notice on both surfaces",
    )
    return {"telegram": tg_notices(world, title)[-1], "slack": slack_notices(world, title)[-1]}


def slack_value(message: dict, label: str) -> str:
    for text, value in slack_buttons(message):
        if text.startswith(label) or label in text:
            return value
    raise AssertionError(f"no button {label!r} in {slack_buttons(message)}")


async def press(
    world: Any, surface: str, role: str, message: dict, label: str, *, chat: Any = None
) -> str:
    """``role`` presses the button labelled ``label`` on ``message``; what they are told
    (Telegram: the toast; Slack: the answer through response_url)."""
    if surface == "telegram":
        uid = PEOPLE[role][0]
        qid = await world.tg.sb.press_button(
            uid,
            chat or ADMIN_GROUP,
            message["message_id"],
            button(message, label),
            bot_id=world.tg.bot_id,
        )
        return (await wait_answer(world.tg.sb, qid)).get("text") or ""
    return await slack_press(world, role, slack_value(message, label), chat or "C0OPS")


async def slack_press(world: Any, role: str, token: str, channel: str = "C0OPS") -> str:
    _status, url = await world.slack.press(PEOPLE[role][1], token, channel=channel)
    (answer,) = await world.server.wait_response(url)
    return slack_text(answer)


async def center(world: Any, surface: str, role: str) -> dict:
    """``role``'s `/alerts` (Telegram: their private chat; Slack: #ops)."""
    if surface == "telegram":
        return await world.tg.say(role, "/alerts")
    _status, ack, _url = await world.slack.slash(PEOPLE[role][1], "alerts")
    return ack


def text_of(surface: str, message: dict) -> str:
    """What the reader sees (Slack: the blocks; its ``text`` is the notification's)."""
    return message["text"] if surface == "telegram" else slack_text({**message, "text": ""})


async def incident(world: Any, nid: int = 1) -> notify_store.Item:
    return await notify_store.get(world.services, nid, None, world.clock())
