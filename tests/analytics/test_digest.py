"""The analytics digest end to end, through the real surfaces (the Telegram sandbox and the
Slack fake) and the notification outbox, on each database backend: `/notify analytics`
schedules it; at its time (an injected clock, the scheduler's job fired by hand) the
overview of the period reaches the user's DMs with the figures of ``Analytics.overview``
and one PNG chart; a failed send is retried by the outbox; a restart does not send a slot
twice; bad input is refused in en and tr with nothing saved; off stops it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from chatops import i18n
from chatops.notify_delivery import start_digests, start_notifications
from piyasa.admin.identity import set_language
from piyasa.admin.notify import routing
from piyasa.analytics import localfmt
from piyasa.analytics.maintenance import Upkeep
from piyasa.analytics.queries import Analytics, Overview, Period
from piyasa.config import Secret
from piyasa.db.notify_models import NotifyDelivery, NotifyPreference
from piyasa.services import Services
from tests.analytics.dataset import NOW, seed
from tests.chatops.conftest import slack_server, start_slack, start_telegram  # noqa: F401
from tests.chatops.harness import PEOPLE, seed_people
from tests.chatops.slack_server import BOT_TOKEN
from tests.notify.conftest import Clock
from tests.waiting import until

PNG = b"\x89PNG\r\n\x1a\n"
# 18:00 in Istanbul on the data set's last day: its last 24 hours hold messages
FIRE = NOW.replace(hour=15, minute=0)


@pytest.fixture
async def world(services: Services, slack_server) -> AsyncIterator[Any]:  # noqa: F811
    people = await seed_people(services)
    await seed(services.sessions, n=600)
    upkeep = Upkeep(services.sessions, services.engine.dialect.name)
    assert await upkeep.catch_up(limit=400) > 0
    async for tg in start_telegram(services):
        async for slack, slack_surface in start_slack(services, slack_server):
            services.settings = dataclasses.replace(
                services.settings, slack_bot_token=Secret(BOT_TOKEN)
            )
            surfaces = SimpleNamespace(telegram=tg.surface, slack=slack_surface)
            w = SimpleNamespace(
                tg=tg, slack=slack, server=slack_server, surfaces=surfaces, people=people
            )
            await _start(w, services)
            try:
                yield w
            finally:
                await w.stop_digests()
                await w.notify.stop()


async def _start(w: Any, services: Services) -> None:
    """Start (or, after a stop, restart) the notification service and the digests."""
    w.notify = await start_notifications(services, w.surfaces)
    w.notify.tick_s = 0.05
    w.notify.clock = Clock(FIRE)
    w.stop_digests = await start_digests(w.notify)
    w.jobs = services.extras["notify.digests"]


def _job(w: Any, role: str) -> Any:
    wanted = f"analytics-digest:{w.people[role]}"
    return next((j for j in w.jobs.scheduler.get_jobs() if j.id == wanted), None)


async def _rows(services: Services) -> int:
    async with services.sessions() as session:
        return (
            await session.scalar(select(func.count()).where(NotifyDelivery.kind == "analytics"))
            or 0
        )


def _figures(ov: Overview, lang: str) -> list[str]:
    f = ov.figures
    return [
        localfmt.count(f.messages, lang),
        localfmt.percent(f.success_rate, lang),
        localfmt.money(f.cost_usd, lang),
        localfmt.duration_ms(f.p95_ms, lang),
    ]


async def test_a_subscriber_gets_the_overview_and_a_chart_once(world, services) -> None:
    tg, admin = world.tg, PEOPLE["admin"][0]
    await tg.say("admin", "/notify tz Europe/Istanbul")
    saved = await tg.say("admin", "/notify analytics daily 18:00")
    (line,) = [x for x in saved["text"].splitlines() if x.lstrip("*• ").startswith("Analytics")]
    assert "daily 18:00" in line
    job = _job(world, "admin")
    local = job.next_run_time.astimezone(ZoneInfo("Europe/Istanbul"))
    assert (local.hour, local.minute) == (18, 0)

    # the job fires at 18:00 Istanbul: one outbox row per surface, sent by the service
    mark = tg.sb.mark()
    await job.func(*job.args)
    text = await tg.sb.wait_for_message(
        lambda m: "text" in m, chat_id=admin, bot_id=tg.bot_id, after=mark
    )
    photo = await tg.sb.wait_for_message(
        lambda m: "photo" in m, chat_id=admin, bot_id=tg.bot_id, after=mark
    )
    ov = await Analytics(services.sessions).overview(Period.parse("24h", FIRE))
    assert ov.figures.messages > 0
    assert "Daily analytics digest — last 24 hours" in text["text"]
    for figure in _figures(ov, "en"):
        assert figure in text["text"], (figure, text["text"])
    assert "vs previous" in text["text"]  # the trend against the previous 24 hours
    for row in [r for r in ov.top if r.figures.messages][:3]:
        assert row.name in text["text"]
    if ov.issues:
        assert i18n.t("en", "analytics.issues") in text["text"]
    stored = tg.sb.world.files[photo["photo"][-1]["file_id"]]
    assert stored.data.startswith(PNG)
    assert "Messages — last 24 hours" in photo["caption"]

    # Slack: the same digest in the admin's DM, the chart uploaded there
    await until(lambda: any(u.get("channel") and u["size"] for u in world.server.uploads), "upload")
    (upload,) = world.server.uploads
    posts = [a for m, a in world.server.calls if m == "chat.postMessage"]
    (post,) = [a for a in posts if a.get("channel") == upload["channel"]]
    assert all(figure in str(post) for figure in _figures(ov, "en"))
    assert await _rows(services) == 2

    # a restart: the same slot fires again (an hour's misfire grace) and adds nothing
    await world.stop_digests()
    await world.notify.stop()
    await _start(world, services)
    mark = tg.sb.mark()
    job = _job(world, "admin")
    await job.func(*job.args)
    assert await world.notify.deliver() == 0
    assert await _rows(services) == 2
    assert not [
        m for m in tg.sb.messages(admin, tg.bot_id) if m["message_id"] > text["message_id"] + 1
    ]
    assert len(world.server.uploads) == 1

    # off: no job, and nothing is sent the next day
    off = await tg.say("admin", "/notify analytics off")
    (line,) = [x for x in off["text"].splitlines() if x.lstrip("*• ").startswith("Analytics")]
    assert "daily" not in line
    assert _job(world, "admin") is None
    world.notify.clock = Clock(FIRE + timedelta(days=1))
    await world.notify.deliver()
    assert await _rows(services) == 2


async def test_a_failed_send_is_retried_by_the_outbox(world, services) -> None:
    tg, viewer = world.tg, PEOPLE["viewer"][0]
    await set_language(services, world.people["viewer"], "tr")
    await routing.set_pref(services, world.people["viewer"], "channels", "telegram")
    saved = await tg.say("viewer", "/notify analytics weekly 15:00")
    assert "weekly mon 15:00" in saved["text"]
    job = _job(world, "viewer")

    world.surfaces.telegram = None  # the Telegram bot is down when the digest is due
    world.notify.clock = Clock(FIRE)  # Monday 15:00 UTC
    await job.func(*job.args)

    async def failed() -> bool:
        async with services.sessions() as session:
            row = await session.scalar(
                select(NotifyDelivery).where(NotifyDelivery.kind == "analytics")
            )
            return row is not None and row.state == "failed" and row.attempts >= 1

    await until(failed, "the first attempt failed")
    mark = tg.sb.mark()
    world.surfaces.telegram = tg.surface
    await world.notify.retry_now()
    text = await tg.sb.wait_for_message(
        lambda m: "text" in m, chat_id=viewer, bot_id=tg.bot_id, after=mark
    )
    await tg.sb.wait_for_message(
        lambda m: "photo" in m, chat_id=viewer, bot_id=tg.bot_id, after=mark
    )
    ov = await Analytics(services.sessions).overview(Period.parse("7d", FIRE))
    assert "Haftalık analitik özeti — son 7 gün" in text["text"]
    for figure in _figures(ov, "tr"):
        assert figure in text["text"], (figure, text["text"])
    assert await _rows(services) == 1


@pytest.mark.parametrize(
    ("lang", "value", "expected"),
    [
        ("en", "daily 25:00", "is not a digest"),
        ("en", "hourly", "is not a digest"),
        ("tr", "weekly fri 7pm", "bir özet değil"),
        ("tr", "", "bir özet değil"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_saved(
    world, services, lang: str, value: str, expected: str
) -> None:
    await set_language(services, world.people["viewer"], lang)
    answer = await world.tg.say("viewer", f"/notify analytics {value}".strip())
    assert expected in answer["text"]
    async with services.sessions() as session:
        row = await session.get(NotifyPreference, world.people["viewer"])
    assert row is None or row.analytics_digest is None
    assert _job(world, "viewer") is None


def test_time_and_weekday_are_optional() -> None:
    parse = routing.parse_analytics_digest
    assert parse("daily") == "daily 09:00"
    assert parse("Weekly") == "weekly mon 09:00"
    assert parse("weekly 07:30") == "weekly mon 07:30"
    assert parse("weekly fri 07:30") == "weekly fri 07:30"
    assert parse("off") is None


async def test_two_instances_firing_the_same_slot_queue_it_once(services: Services) -> None:
    """The scheduler runs on the admin role's holder alone; should two instances fire the
    same minute anyway (a role handover), the outbox's dedupe key keeps one row each."""
    from piyasa.admin.notify.digest import parse_plan
    from piyasa.admin.notify.digest_jobs import DigestJobs
    from piyasa.admin.notify.service import NotifyService

    people = await seed_people(services)
    await routing.set_pref(services, people["operator"], "analytics", "daily 15:00")
    plan = parse_plan(people["operator"], "daily", "15:00", "UTC")
    one, two = (DigestJobs(NotifyService(services), None) for _ in range(2))
    added = await asyncio.gather(
        one.send_analytics(plan, FIRE), two.send_analytics(plan, FIRE + timedelta(seconds=20))
    )
    # telegram and slack, once each: which instance queued which is a race (on PostgreSQL
    # each may win one of the two dedupe keys), the sum is not
    assert sum(added) == 2
    assert await _rows(services) == 2
    assert await one.send_analytics(plan, FIRE + timedelta(minutes=1)) == 2  # the next minute
