"""The digest fires at the user's wall-clock time in their timezone (computed from the
APScheduler trigger with a given "now", never by waiting for it), counts what happened,
lists what is still open, and reads in Turkish and English with CLDR numbers and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chatops import i18n
from piyasa.admin.notify.digest import (
    DigestPlan,
    DigestPlanError,
    NotificationSummary,
    build_digest,
    next_run,
    parse_plan,
    render_digest,
    schedule,
    unschedule,
)
from tests.waiting import until

IST = ZoneInfo("Europe/Istanbul")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_monday_0900_istanbul_versus_utc() -> None:
    istanbul = parse_plan(1, "weekly", "09:00", "Europe/Istanbul", "monday")
    in_utc = parse_plan(2, "weekly", "09:00", "UTC", "mon")
    sunday_noon = utc(2026, 1, 4, 12, 0)  # 2026-01-05 is a Monday
    assert next_run(istanbul, sunday_noon) == utc(2026, 1, 5, 6, 0)  # 09:00 at UTC+3
    assert next_run(istanbul, sunday_noon).astimezone(IST).strftime("%a %H:%M") == "Mon 09:00"
    assert next_run(in_utc, sunday_noon) == utc(2026, 1, 5, 9, 0)
    # Monday 06:30 UTC: Istanbul's 09:00 has passed (next week), UTC's has not (today)
    monday_early = utc(2026, 1, 5, 6, 30)
    assert next_run(istanbul, monday_early) == utc(2026, 1, 12, 6, 0)
    assert next_run(in_utc, monday_early) == utc(2026, 1, 5, 9, 0)
    # exactly at the fire time: the next one, not the same one again
    assert next_run(in_utc, utc(2026, 1, 5, 9, 0)) == utc(2026, 1, 12, 9, 0)


def test_daily_keeps_the_wall_clock_across_daylight_saving() -> None:
    berlin = parse_plan(3, "daily", "9:00", "Europe/Berlin")
    # Berlin moves to summer time on 2026-03-29: 09:00 is 08:00 UTC before, 07:00 after
    assert next_run(berlin, utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 28, 8, 0)
    assert next_run(berlin, utc(2026, 3, 28, 8, 0)) == utc(2026, 3, 29, 7, 0)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("hourly", "09:00", "UTC"), "cadence"),
        (("daily", "25:00", "UTC"), "time"),
        (("daily", "9am", "UTC"), "time"),
        (("weekly", "09:00", "UTC", "funday"), "weekday"),
        (("daily", "09:00", "Mars/Olympus_Mons"), "timezone"),
        (("daily", "09:00", "../etc/passwd"), "timezone"),
    ],
)
def test_a_choice_that_does_not_parse_is_refused_in_both_languages(
    args: tuple[str, ...], key: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_plan(1, *args)
    error = caught.value
    assert isinstance(error, DigestPlanError) and error.key == key
    assert i18n.t("en", error.catalog_key, **error.params) == str(error)
    assert i18n.t("tr", error.catalog_key, **error.params) not in (str(error), error.catalog_key)


def summaries() -> list[NotificationSummary]:
    def s(fp: str, sev: str, src: str, state: str, first: datetime, last: datetime, n: int):
        return NotificationSummary(fp, f"title {fp}", sev, src, state, first, last, n)

    return [
        s("redis", "critical", "health", "open", utc(2026, 1, 4, 20), utc(2026, 1, 5, 5), 1200),
        s("disk", "warning", "host", "open", utc(2025, 12, 1), utc(2025, 12, 2), 3),  # old, open
        s("429", "warning", "fleet", "resolved", utc(2026, 1, 4, 10), utc(2026, 1, 4, 11), 30),
        s("bk", "success", "backup", "resolved", utc(2026, 1, 5, 2), utc(2026, 1, 5, 2), 1),
        s("bk2", "success", "backup", "resolved", utc(2026, 1, 4, 7), utc(2026, 1, 4, 7), 1),
        s("old", "info", "fleet", "resolved", utc(2025, 1, 1), utc(2025, 1, 2), 9),  # before
    ]


def test_counts_open_incidents_and_top_sources() -> None:
    digest = build_digest(summaries(), utc(2026, 1, 4, 6), utc(2026, 1, 5, 6))
    assert digest.by_severity == {"critical": 1, "warning": 1, "info": 0, "success": 2}
    assert digest.total == 4 and digest.events == 1200 + 30 + 1 + 1
    assert [o.fingerprint for o in digest.open] == ["redis", "disk"]  # worst first
    assert digest.top_sources == [("backup", 2), ("fleet", 1), ("health", 1)]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ["Daily digest — Jan 5, 2026", "4 notifications (1,232 events)", "1 critical"]),
        ("tr", ["Günlük özet — 5 Oca 2026", "4 bildirim (1.232 olay)", "1 kritik"]),
    ],
)
def test_rendered_in_the_readers_language_and_timezone(lang: str, expected: list[str]) -> None:
    plan = parse_plan(7, "daily", "09:00", "Europe/Istanbul", lang=lang)
    digest = build_digest(summaries(), utc(2026, 1, 4, 6), utc(2026, 1, 5, 6))
    message = render_digest(digest, plan, i18n.t, link="http://127.0.0.1:8080/")
    whole = message.title + "\n" + message.body_text
    for part in expected:
        assert part in whole, (part, whole)
    # 06:00 UTC shown as the reader's 09:00, in their locale's clock
    assert message.title.endswith("9:00\u202fAM" if lang == "en" else "09:00"), message.title
    assert "title redis" in message.body_text and "title disk" in message.body_text
    assert "1.200" in message.body_text if lang == "tr" else "1,200" in message.body_text
    assert message.severity == "info" and message.source == "digest"
    assert message.body_html and "<p>" in message.body_html


def test_a_quiet_period_says_so() -> None:
    plan = parse_plan(7, "weekly", "09:00", "UTC", lang="tr")
    end = utc(2026, 1, 5, 9)
    digest = build_digest([], end - plan.period, end)
    assert "Sakin bir dönem" in render_digest(digest, plan, i18n.t).body_text


async def test_the_scheduler_job_fires_the_users_digest() -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    sent: list[tuple[DigestPlan, datetime]] = []

    async def send(plan: DigestPlan, now: datetime) -> None:
        sent.append((plan, now))

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    try:
        plan = parse_plan(42, "weekly", "09:00", "Europe/Istanbul", "mon")
        before = datetime.now(UTC)
        job = schedule(scheduler, plan, send)
        assert job.id == "digest:42"
        assert job.next_run_time.astimezone(IST).strftime("%a %H:%M") == "Mon 09:00"
        assert before < job.next_run_time <= before + timedelta(days=7)
        schedule(scheduler, plan, send)  # a changed preference replaces, never doubles
        assert len(scheduler.get_jobs()) == 1
        job.modify(next_run_time=datetime.now(UTC))  # bring the fire time to now
        await until(lambda: sent, "the digest job to run")
        assert sent[0][0] == plan
        unschedule(scheduler, 42)
        assert scheduler.get_jobs() == []
    finally:
        scheduler.shutdown(wait=False)
