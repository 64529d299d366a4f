"""The fleet's side of bots spread across instances (:mod:`piyasa.cluster.spread`): which
bots it may own, and what owning one means — its poller runs here and the gate claims
and sends its outbox rows here. Losing one stops its poller first (gracefully: the long
poll ends, so the next owner's never overlaps it), then hands its claimed rows back."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from piyasa.db.runtime_models import OutboxItem

if TYPE_CHECKING:
    from piyasa.cluster.spread import BotSpreader
    from piyasa.runtime.fleet import Fleet
    from piyasa.runtime.outbox import Item


def spreadable(fleet: Fleet) -> list[int]:
    """The fleet's bots that can work: enabled, with a usable token."""
    clients = fleet.clients
    return sorted(
        b.id
        for b in fleet.roster.bots.values()
        if b.enabled and clients is not None and clients.has(b.id)
    )


async def spread_bots(fleet: Fleet, cluster: Any) -> BotSpreader | None:
    """Several instances: own a fair share of the bots by lease, polling and sending only
    for those (the outbox is told which, and fenced on PostgreSQL). One instance (no
    cluster, or the local lease): None, every bot is ours as before."""
    if cluster is None or cluster.lease.kind == "local":
        return None
    from piyasa.cluster.spread import BotSpreader

    async def gained(bot_id: int) -> None:
        if fleet.started:
            if fleet.webhooks is None:  # polling: start this bot's poller (webhooks: set once)
                await fleet._start_receivers()
            if fleet.gate is not None:
                fleet.gate.notify()

    async def lost(bot_id: int, graceful: bool) -> None:
        poller = fleet.pollers.pop(bot_id, None)
        if poller is not None:
            if graceful:
                await poller.finish()
            await fleet.supervisor.remove(f"poll-{bot_id}")
        with contextlib.suppress(Exception):
            await fleet.store.release_bots(fleet.instance, [bot_id])

    spreader = BotSpreader(
        cluster.lease,
        cluster.id,
        bots=lambda: spreadable(fleet),
        live=cluster.registry.live_count,
        on_gain=gained,
        on_loss=lost,
        alone=lambda: cluster.registry.peers == 0,
    )
    fleet.store.owned = spreader.owned_ids
    fleet.store.fence = cluster.id if cluster.lease.kind == "postgresql" else None
    cluster.spreader = spreader
    fleet.spreader = spreader  # owns() answers from the first round on
    await spreader.start()
    return spreader


class Settler:
    """The planner waits for its decisions to be delivered (``Planner.settle``). With bots
    spread, a decision made here may be sent by another instance (the bot's owner), so
    this instance would wait forever: it remembers the outbox rows it decided (and those
    pending at start, which the planner was seeded with) and settles the ones found
    finished elsewhere, every ``every_s`` seconds, in one query."""

    def __init__(self, fleet: Fleet, every_s: float = 1.0) -> None:
        self.fleet = fleet
        self.every_s = every_s
        self.tracked: dict[int, int] = {}  # outbox row id -> chat id

    def track(self, items: list[Item]) -> None:
        for it in items:
            self.tracked[it.id] = it.chat_id

    def done(self, item: Item) -> bool:
        """A row finished on this instance: True when it was decided (or seeded) here."""
        return self.tracked.pop(item.id, None) is not None

    async def seed(self) -> None:
        """Track the rows undelivered at start (the planner counts them as pending)."""
        async with self.fleet.services.sessions() as session:
            rows = await session.execute(
                select(OutboxItem.id, OutboxItem.chat_id).where(
                    OutboxItem.state.in_(("queued", "claimed", "sending"))
                )
            )
            self.tracked.update({int(i): int(c) for i, c in rows.all()})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            if not self.tracked:
                continue
            ids = list(self.tracked)
            async with self.fleet.services.sessions() as session:
                rows = await session.execute(
                    select(OutboxItem.id).where(
                        OutboxItem.id.in_(ids), OutboxItem.state.in_(("sent", "failed"))
                    )
                )
                finished = [int(i) for i in rows.scalars().all()]
            for row_id in finished:
                chat_id = self.tracked.pop(row_id, None)
                if chat_id is not None and self.fleet.planner is not None:
                    self.fleet.planner.settle(chat_id)
