"""The analytics job inside `piyasa up`: roll new messages up every ``EVERY_S`` seconds,
and once an hour compact old hourly rollups and (when configured) prune raw rows.

``PIYASA_ANALYTICS_RAW_DAYS`` (config file or environment; default unset = keep raw rows)
is the raw-row retention in days; rollups are never pruned. Several instances may run it:
the job serialises itself (``piyasa.analytics.rollup.lock``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from piyasa.analytics.maintenance import Upkeep
from piyasa.services import Services
from piyasa.tasks import cancel_and_wait

log = logging.getLogger(__name__)
EVERY_S = 10.0
UPKEEP_EVERY_S = 3600.0
RAW_DAYS_KEY = "PIYASA_ANALYTICS_RAW_DAYS"


def raw_retention_days(services: Services) -> int | None:
    raw = (services.settings.extra.get(RAW_DAYS_KEY) or "").strip()
    if not raw:
        return None
    try:
        days = int(raw)
    except ValueError:
        log.warning("%s=%r is not a number of days; raw rows are kept", RAW_DAYS_KEY, raw)
        return None
    return days if days >= 1 else None


async def start_rollups(
    services: Services, every_s: float = EVERY_S, first_upkeep_s: float = 60.0
) -> Callable[[], Awaitable[None]]:
    """Start the job (a round every ``every_s`` seconds; the first compaction or prune
    ``first_upkeep_s`` after the start, then every ``UPKEEP_EVERY_S``);
    ``services.extras["analytics.rollups"]`` is its ``Upkeep``. Returns the stopper."""
    job = Upkeep(services.sessions, services.engine.dialect.name)
    services.extras["analytics.rollups"] = job
    loop = asyncio.get_running_loop()

    async def run() -> None:
        next_upkeep = loop.time() + first_upkeep_s
        while True:
            try:
                await job.catch_up()
                if loop.time() >= next_upkeep:
                    next_upkeep = loop.time() + UPKEEP_EVERY_S
                    days = raw_retention_days(services)
                    if days:
                        await job.prune(days)
                    else:
                        await job.compact()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away: the next round retries
                log.warning("analytics rollup round failed: %s", type(exc).__name__)
            await asyncio.sleep(every_s)

    task = asyncio.create_task(run(), name="analytics-rollups")

    async def stop() -> None:
        await cancel_and_wait(task)

    return stop
