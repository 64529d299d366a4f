"""Several `piyasa up` instances on one PostgreSQL (+ Redis): registration, heartbeat and
singleton roles by election. See docs/scaling.md.

``services.extras["cluster"]`` is the running :class:`Cluster`; other parts use
``cluster.elector.is_leader(role)`` or ``cluster.elector.watch(role, on_gain, on_loss)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piyasa.cluster.apply import register as register_handlers
from piyasa.cluster.changes import ChangeBus
from piyasa.cluster.elector import Elector
from piyasa.cluster.instances import InstanceRegistry, list_instances, new_instance_id
from piyasa.cluster.lease import make_lease
from piyasa.cluster.spread import BotSpreader

if TYPE_CHECKING:
    from piyasa.services import Services

EXTRAS_KEY = "cluster"
ADMIN_ROLE = "admin"  # admin bot polling + alert/notification dispatch + digest scheduler
ADMIN_ROLE_PARTS = ("admin-bot", "alerts", "scheduler")


class Cluster:
    """This instance: its id, its row in ``instances``, and its elector."""

    def __init__(self, services: Services, schema_revision: str) -> None:
        from piyasa import __version__

        self.services = services
        self.id = new_instance_id()
        self.lease = make_lease(services.settings, services.engine, services.cache)
        self.elector = Elector(self.lease, self.id, alone=lambda: self.registry.peers == 0)
        self.changes = ChangeBus(services, self.id)
        register_handlers(self.changes, services)
        self.registry = InstanceRegistry(
            lambda: services.sessions,
            self.id,
            version=__version__,
            schema_revision=schema_revision,
            roles=self.roles,
            bots=self.bots,
        )
        # the fleet's bot leases (piyasa.cluster.spread), set by the fleet when it starts
        self.spreader: BotSpreader | None = None
        self.local_bots: list[int] = []  # one instance (local lease): the bots it polls

    def bots(self) -> list[int]:
        """The fleet bots this instance owns now (written at each heartbeat)."""
        if self.spreader is not None:
            return sorted(self.spreader.owned_ids())
        return sorted(self.local_bots)

    def roles(self) -> list[str]:
        """The roles this instance holds now, with the admin lease spelt out."""
        out: list[str] = []
        for name in self.elector.held():
            out.extend(ADMIN_ROLE_PARTS if name == ADMIN_ROLE else (name,))
        return sorted(out)

    async def start(self) -> None:
        """Register (the heartbeat starts) and listen for changes made on the other
        instances; the roles are contested by :meth:`elect`."""
        await self.registry.start()
        self.services.extras[EXTRAS_KEY] = self
        await self.changes.start()

    async def leave(self) -> None:
        """Stop listening, mark this instance gone (after :meth:`Elector.stop`)."""
        await self.changes.stop()
        await self.registry.stop()

    async def elect(self) -> None:
        await self.elector.start()

    async def stop(self) -> None:
        await self.elector.stop()
        await self.leave()
        if self.services.extras.get(EXTRAS_KEY) is self:
            del self.services.extras[EXTRAS_KEY]


def of(services: Services) -> Cluster | None:
    return services.extras.get(EXTRAS_KEY)


__all__ = ["ADMIN_ROLE", "Cluster", "Elector", "InstanceRegistry", "list_instances", "of"]
