"""Scheduler jobs as singleton roles: each runs only on the instance holding its lease.

    stopper = await by_role(services, "backups", start, stop)

``start()`` runs when this instance wins the role (at once on SQLite, where the one
process holds every role, and when there is no cluster at all); ``stop()`` when it loses
it — within the elector's stop margin (2 s), before the lease can expire elsewhere — or
at shutdown. Roles (docs/scaling.md): ``backups`` (the APScheduler backup schedule and its
catch-up), ``rollups`` (the analytics rollup / compaction job). The digest scheduler moves
with the ``admin`` role (it shares the notification service's state).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from piyasa.services import Services

log = logging.getLogger(__name__)
BACKUPS_ROLE = "backups"
ROLLUPS_ROLE = "rollups"
Hook = Callable[[], Awaitable[None]]


async def by_role(services: Services, role: str, start: Hook, stop: Hook) -> Hook:
    """Run ``start``/``stop`` as ``role`` is won and lost; returns the shutdown stopper
    (stops the work if running; the lease itself is released by ``elector.stop``)."""
    cluster = services.extras.get("cluster")
    running = asyncio.Lock()
    state = {"on": False}

    async def gained() -> None:
        async with running:
            if not state["on"]:
                await start()
                state["on"] = True

    async def lost() -> None:
        async with running:
            if state["on"]:
                state["on"] = False
                await stop()

    if cluster is None:
        await gained()
    else:
        cluster.elector.watch(role, gained, lost)
    return lost


def held_here(services: Services, role: str) -> bool:
    """True when this instance runs ``role`` now (always without a cluster)."""
    cluster = services.extras.get("cluster")
    return cluster is None or cluster.elector.is_leader(role)
