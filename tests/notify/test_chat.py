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


async def test_an_admin_adds_tests_and_removes_a_channel_from_chat(world, receiver) -> None:
    from piyasa.admin.notify.channels.verify_example import verify
    from piyasa.bench._procs import free_port

    tg, admin = world.tg, PEOPLE["admin"][0]
    secret = "whsec-chat-0123456789"
    refused = await tg.say("admin", f"/addchannel hook webhook url=ftp://x/h secret={secret}")
    assert "must start with http:// or https://" in refused["text"]
    closed = free_port()
    refused = await tg.say(
        "admin", f"/addchannel hook webhook url=http://127.0.0.1:{closed}/h secret={secret}"
    )
    assert f"cannot reach 127.0.0.1:{closed}" in refused["text"]
    assert "No channels" in (await tg.say("admin", "/channels"))["text"]

    box = await receiver()
    added = await tg.say("admin", f"/addchannel hook webhook url={box.url}/h secret={secret}")
    assert "Channel hook added" in added["text"] and secret not in added["text"]
    listed = await tg.say("admin", "/channels")
    assert "hook (webhook, on)" in listed["text"] and box.url not in listed["text"]
    mark = await tg.press("admin", admin, listed, button(listed, "Test hook"))
    said = await tg.sb.wait_for_message(
        lambda m: "went through hook" in (m.get("text") or ""),
        chat_id=admin,
        after=mark,
        edits=True,
    )
    assert said
    assert len(box.requests) == 1
    _path, headers, body = box.requests[0]
    assert verify(secret, headers["X-Piyasa-Timestamp"], headers["X-Piyasa-Signature"], body)
    # a group sees no channel secrets: /addchannel is refused there
    in_group = await tg.say("admin", f"/addchannel x webhook url={box.url} secret=s", group=True)
    assert "Channel x added" not in in_group["text"]


async def test_a_digest_is_scheduled_from_notify_and_sent_to_the_users_dm(world) -> None:
    from datetime import UTC

    from chatops.notify_delivery import start_digests
    from tests.notify.conftest import Clock

    tg, admin = world.tg, PEOPLE["admin"][0]
    await _alert(world)  # one critical incident, still open
    stop = await start_digests(world.notify)
    try:
        bad = await tg.say("admin", "/notify digest daily 25:00")
        assert "is not a digest" in bad["text"]
        await tg.say("admin", "/notify tz Europe/Istanbul")
        saved = await tg.say("admin", "/notify digest daily 09:00")
        (line,) = [x for x in saved["text"].splitlines() if x.lstrip("*• ").startswith("Digest")]
        assert "daily 09:00" in line
        jobs = world.notify.services.extras["notify.digests"]
        (job,) = [j for j in jobs.scheduler.get_jobs() if j.id.startswith("digest:")]
        local = job.next_run_time.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Istanbul"))
        assert (local.hour, local.minute) == (9, 0)

        # the job fires at its time (the next 09:00 in Istanbul, within a day of the
        # incident): the digest is computed from the notification tables and posted to
        # the admin's DM
        world.notify.clock = Clock(job.next_run_time.astimezone(UTC))
        mark = tg.sb.mark()
        await job.func(*job.args)
        dm = await tg.sb.wait_for_message(chat_id=admin, bot_id=tg.bot_id, after=mark)
        assert "Daily digest" in dm["text"] and "9:00" in dm["text"]
        assert "1 notifications (1 events)" in dm["text"]
        assert "Open incidents: 1" in dm["text"] and "Top sources: health (1)" in dm["text"]

        off = await tg.say("admin", "/notify digest off")
        (line,) = [x for x in off["text"].splitlines() if x.lstrip("*• ").startswith("Digest")]
        assert "daily" not in line
        assert not [j for j in jobs.scheduler.get_jobs() if j.id.startswith("digest:")]
    finally:
        await stop()
