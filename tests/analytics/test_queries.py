"""The query API's rules: periods, bad input, problem detection, series and histogram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from piyasa.analytics.maintenance import Upkeep
from piyasa.analytics.queries import (
    Analytics,
    CompareError,
    Period,
    PeriodError,
    UnknownBot,
)
from piyasa.db.models import Bot, Chat, Message

NOW = datetime(2026, 11, 30, 15, 20, tzinfo=UTC)


def test_period_texts() -> None:
    assert Period.parse(None, NOW) == Period(NOW - timedelta(hours=24), NOW, "24h")
    assert Period.parse("7D", NOW).start == NOW - timedelta(days=7)
    p = Period.parse("2026-11-01..2026-11-07", NOW)
    assert (p.start, p.end) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 8, tzinfo=UTC),
    )
    assert p.previous() == Period(
        datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), "prev:" + p.label
    )
    cases = {
        "yesterday": "analytics.err.period_unknown",
        "2026-11-31..2026-12-01": "analytics.err.period_unknown",
        "2026-11-07..2026-11-01": "analytics.err.period_order",
        "2026-12-05..2026-12-06": "analytics.err.period_future",
        "2024-01-01..2024-01-02": "analytics.err.period_retention",
    }
    for text, key in cases.items():
        with pytest.raises(PeriodError) as caught:
            Period.parse(text, NOW)
        assert caught.value.key == key, text


async def _world(sessions) -> Upkeep:  # type: ignore[no-untyped-def]
    """Bot 1 healthy, bot 2 failing with 429s, bot 3 silent since yesterday."""
    async with sessions() as s, s.begin():
        s.add_all(
            Bot(
                id=i,
                token_encrypted="x",
                token_fingerprint=f"f{i}",
                display_name=f"B{i}",
                created_at=datetime.now(UTC) - timedelta(days=3),
            )
            for i in (1, 2, 3)
        )
        s.add(Chat(id=1, telegram_id=-1001, title="Piyasa"))
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        for i in range(40):
            at = now - timedelta(minutes=10 * i + 5)
            s.add(_msg(1, at, "sent", latency=800 + i))
            s.add(_msg(2, at, "failed" if i % 2 else "sent", latency=20000, error="quota"))
            s.add(_msg(3, at - timedelta(days=1), "sent", latency=900))
    assert await Analytics(sessions).refresh() == 120
    assert await Analytics(sessions).refresh() == 0
    return Upkeep(sessions, sessions.kw["bind"].dialect.name)


def _msg(bot: int, at: datetime, status: str, latency: int, error: str | None = None) -> Message:
    return Message(
        chat_id=1,
        bot_id=bot,
        author_kind="bot",
        created_at=at,
        topic="fx",
        model="gpt-4o-mini",
        latency_ms=latency,
        tokens_in=100,
        tokens_out=10,
        tokens_cached=0,
        status=status,
        error_class=error if status == "failed" else None,
    )


async def test_issues_bad_input_series_and_histogram(sessions) -> None:  # type: ignore[no-untyped-def]
    await _world(sessions)
    analytics = Analytics(sessions)
    period = Period.parse("24h", datetime.now(UTC))
    ov = await analytics.overview(period)
    kinds = {(i.kind, i.bot_id) for i in ov.issues}
    assert {("error_rate", 2), ("rate_limited", 2), ("slow_p95", 2), ("silent", 3)} <= kinds
    assert not {k for k in kinds if k[1] == 1}
    assert [r.bot_id for r in ov.top][:1] == [1]
    assert ov.previous.messages == 40 and ov.figures.messages == 80

    with pytest.raises(UnknownBot) as caught:
        await analytics.bot_detail(99, period)
    assert caught.value.key == "analytics.err.unknown_bot"
    for ids in ([1], [1, 1], [1, 2, 3, 4, 5, 6]):
        with pytest.raises(CompareError):
            await analytics.compare(ids, period)
    assert issubclass(CompareError, ValueError)
    pair = await analytics.compare([2, 1], period)
    assert [d.row.bot_id for d in pair] == [2, 1]
    assert pair[0].errors[0].error_class == "quota" and pair[0].errors[0].count == 20
    with pytest.raises(ValueError):
        await analytics.bots(period, sort="name")
    rows, total = await analytics.bots(period, sort="p95")
    assert total == 3 and rows[0].bot_id == 2  # slowest first
    rows, _ = await analytics.bots(period, sort="success")
    assert [r.bot_id for r in rows] == [1, 2, 3]  # silent bot (no outcomes) last

    points = await analytics.series(period, bot_ids=[1])
    assert len(points) == 25 and sum(p.sent for p in points) == 40
    assert sum(n for _, _, n in await analytics.latency_histogram(period, bot_ids=[1])) == 40
    week = await analytics.series(Period.parse("7d", datetime.now(UTC)))
    assert len(week) == 8 and sum(p.messages for p in week) == 120  # daily points


async def test_silent_means_silent_in_its_active_hours(sessions) -> None:  # type: ignore[no-untyped-def]
    """Silent: enabled, no message although its own active hours covered at least an hour
    of the period — whether or not it talked before; a bot added minutes ago, a paused
    one, or one that talked are not."""
    await _world(sessions)
    now = datetime.now(UTC)
    async with sessions() as s, s.begin():
        for i, hours, on, added in (
            (4, "00:00-24:00", True, now - timedelta(days=2)),  # never talked: silent
            (5, "00:00-24:00", True, now - timedelta(minutes=20)),  # just added
            (6, "00:00-24:00", False, now - timedelta(days=2)),  # paused
            (7, "09:00-09:30", True, now - timedelta(days=2)),  # half an hour a day
        ):
            s.add(
                Bot(
                    id=i,
                    token_encrypted="x",
                    token_fingerprint=f"f{i}",
                    display_name=f"B{i}",
                    active_hours=hours,
                    timezone="UTC",
                    enabled=on,
                    created_at=added,
                )
            )
    ov = await Analytics(sessions).overview(Period.parse("24h", now))
    silent = {i.bot_id: i.threshold for i in ov.issues if i.kind == "silent"}
    assert set(silent) == {3, 4}
    assert 23.5 <= silent[4] <= 24.0
    week = await Analytics(sessions).overview(Period.parse("7d", now))
    silent = {i.bot_id: i.threshold for i in week.issues if i.kind == "silent"}
    assert 7 in silent and 0.5 <= silent[7] <= 1.5
