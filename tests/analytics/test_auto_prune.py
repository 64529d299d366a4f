"""``PIYASA_ANALYTICS_RAW_DAYS``: the background job prunes raw rows past the retention on
its own, and the figures read from rollups stay exactly as they were."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from piyasa.analytics.background import RAW_DAYS_KEY, start_rollups
from piyasa.analytics.maintenance import Upkeep
from piyasa.analytics.queries import Analytics, Period
from piyasa.db.models import Message
from tests.analytics.dataset import NOW, seed
from tests.waiting import until


def _retention(services, value: str) -> None:  # type: ignore[no-untyped-def]
    extra = {**services.settings.extra, RAW_DAYS_KEY: value}
    services.settings = dataclasses.replace(services.settings, extra=extra)


async def _old_rows(services, before: datetime) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as s:
        query = select(func.count()).where(Message.created_at < before, Message.status != "queued")
        return int(await s.scalar(query) or 0)


async def test_the_job_prunes_past_the_retention_and_keeps_the_figures(services) -> None:  # type: ignore[no-untyped-def]
    await seed(services.sessions)
    upkeep = Upkeep(services.sessions, services.engine.dialect.name)
    await upkeep.catch_up()
    analytics = Analytics(services.sessions)
    whole = Period(NOW - timedelta(days=46), datetime.now(UTC), "all")
    before = (await analytics.overview(whole)).figures
    cut = datetime.now(UTC) - timedelta(days=11)  # 10 whole days kept, and a day's margin
    assert await _old_rows(services, cut) > 0
    _retention(services, "10")
    stop = await start_rollups(services, every_s=0.05, first_upkeep_s=0)
    try:
        await until(upkeep.pruned_before, "the job's first prune")
    finally:
        await stop()
    assert await _old_rows(services, cut) == 0
    assert (await analytics.overview(whole)).figures == before


async def test_a_bad_retention_keeps_raw_rows_and_says_why(  # type: ignore[no-untyped-def]
    services, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(services.sessions, n=200)
    _retention(services, "ten")
    cut = datetime.now(UTC) - timedelta(days=11)
    old = await _old_rows(services, cut)
    with caplog.at_level(logging.WARNING, logger="piyasa.analytics.background"):
        stop = await start_rollups(services, every_s=0.05, first_upkeep_s=0)
        try:
            await until(
                lambda: any(RAW_DAYS_KEY in r.getMessage() for r in caplog.records),
                "the warning",
            )
        finally:
            await stop()
    assert await _old_rows(services, cut) == old
    assert await Upkeep(services.sessions, services.engine.dialect.name).pruned_before() is None
