"""The admin role in `piyasa up`: the admin bot's long polling, the alert / notification
dispatcher and the digest scheduler run on the one instance holding the ``admin`` lease
(piyasa/cluster/). They share in-process state (the notification service `/alerts`
reads, the digest jobs `/notify digest` reschedules), so they move together.

    line = await elect_admin(services, surfaces)   # after surfaces.start()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chatops.alerts import start_alerts
from piyasa.cluster import ADMIN_ROLE, Cluster
from piyasa.services import Services


async def elect_admin(services: Services, surfaces: Any) -> str:
    """Contest the admin role (the first attempt awaited: a lone instance holds it when
    this returns) and keep contesting it; returns the banner line. The cluster's
    ``elector.stop`` (a stopper of `piyasa up`) stops the work and releases the lease."""
    cluster: Cluster = services.extras["cluster"]
    stoppers: list[Callable[[], Awaitable[None]]] = []

    async def gained() -> None:
        await surfaces.set_admin_polling(True)
        stoppers.append(await start_alerts(services, surfaces))

    async def lost() -> None:  # within the stop margin, before the lease can expire
        await surfaces.set_admin_polling(False)  # first: a second poller is what Telegram sees
        while stoppers:
            await stoppers.pop()()

    cluster.elector.watch(ADMIN_ROLE, gained, lost)
    await cluster.elect()
    where = f"lease: {cluster.lease.kind}"
    if cluster.elector.is_leader(ADMIN_ROLE):
        return (
            f"Instance {cluster.id}: holds the admin role (admin bot polling, alerts, "
            f"scheduler; {where})"
        )
    return (
        f"Instance {cluster.id}: standby for the admin role (another instance holds it; "
        f"{where}); takes it over within 15 s of its holder's death"
    )
