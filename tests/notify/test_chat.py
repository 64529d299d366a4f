"""Notifications in chat, end to end through the real surfaces: a critical event reaches
the admin group at once with buttons; presses are authorized by role; `/alerts` shows the
unread count and incidents by day; an Ack pressed on Slack shows acknowledged on
Telegram. SQLite only: the database matrix is covered by the other tests here."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chatops import i18n
from chatops.notify_delivery import start_notifications
from piyasa.admin.notify import emit
from piyasa.config import Secret, Settings
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.services import Services
from tests.chatops.conftest import slack_server, start_slack, start_telegram  # noqa: F401
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, seed_people, wait_answer
from tests.chatops.slack_server import BOT_TOKEN, slack_text
from tests.health_chat.conftest import button, kb
from tests.notify.conftest import critical
from tests.waiting import until


@pytest.fixture
async def services(settings: Settings, tmp_path: Path) -> AsyncIterator[Services]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify_chat.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    svc = Services.build(settings, engine=engine)
    yield svc
    await svc.close()


@pytest.fixture
async def world(services: Services, slack_server) -> AsyncIterator[Any]:  # noqa: F811
    await seed_people(services)
    async for tg in start_telegram(services):
        async for slack, slack_surface in start_slack(services, slack_server):
            services.settings = dataclasses.replace(
                services.settings, slack_bot_token=Secret(BOT_TOKEN), slack_alert_channel="C0OPS"
            )
            surfaces = SimpleNamespace(telegram=tg.surface, slack=slack_surface)
            notify = await start_notifications(services, surfaces)
            notify.tick_s = 0.05
            try:
                yield SimpleNamespace(tg=tg, slack=slack, server=slack_server, notify=notify)
            finally:
                await notify.stop()


async def _alert(world: Any) -> dict:
    mark = world.tg.sb.mark()
    emit(world.tg.services.extras, critical("database"))
    return await world.tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)


async def _press(world: Any, role: str, message: dict, data: str) -> dict:
    uid = PEOPLE[role][0]
    qid = await world.tg.sb.press_button(
        uid, ADMIN_GROUP, message["message_id"], data, bot_id=world.tg.bot_id
    )
    return await wait_answer(world.tg.sb, qid)


async def test_a_critical_event_is_pushed_at_once_and_acked_by_role(world) -> None:
    alert = await _alert(world)
    assert alert["text"].startswith("🔴 Critical: Database")
    labels = list(kb(alert))
    assert any("Ack" in x for x in labels) and any("Silence" in x for x in labels)
    refused = await _press(world, "viewer", alert, button(alert, "Ack"))
    assert (refused.get("text") or "") == i18n.t(
        "en", "refuse.denied", help_cmd="/help", link_cmd="/link", surface="Telegram", id=0
    )
    mark = world.tg.sb.mark()
    await _press(world, "operator", alert, button(alert, "Ack"))
    answer = await world.tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert "acknowledged" in answer["text"]
    center = await world.tg.say("viewer", "/alerts")
    assert "1 unread" in center["text"] and "Today" in center["text"]
    assert "✋ #1 Critical: Database — acknowledged" in center["text"]


async def test_alerts_center_marks_read(world) -> None:
    await _alert(world)
    center = await world.tg.say("viewer", "/alerts")
    assert "1 unread" in center["text"]
    uid = PEOPLE["viewer"][0]
    mark = world.tg.sb.mark()
    await world.tg.sb.press_button(
        uid, uid, center["message_id"], button(center, "#1"), bot_id=world.tg.bot_id
    )
    details = await world.tg.sb.wait_for_message(chat_id=uid, after=mark, edits=True)
    assert "Events: 1" in details["text"] and not any("Ack" in x for x in kb(details))
    again = await world.tg.say("viewer", "/alerts")
    assert "0 unread" in again["text"]


async def test_ack_on_slack_shows_acknowledged_on_telegram(world) -> None:
    await _alert(world)
    await until(lambda: world.server.posted, "the alert in Slack")
    token = await world.slack.surface_tokens.issue(
        spec_id="alerts.ack", surface="slack", user="U0OPERATOR", chat="C0OPS", params={"id": 1}
    )
    _status, url = await world.slack.press("U0OPERATOR", token)
    (answer,) = await world.server.wait_response(url)
    assert "acknowledged" in slack_text(answer)
    center = await world.tg.say("admin", "/alerts")
    assert "#1 Critical: Database — acknowledged" in center["text"]
