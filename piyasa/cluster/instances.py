"""Instance registration: every `piyasa up` writes a row in ``instances`` and refreshes its
heartbeat every ``HEARTBEAT_S``; rows silent for ``GONE_AFTER`` intervals are marked gone by
any live instance (a stopped instance marks itself gone at once)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.base import utcnow
from piyasa.db.cluster_models import Instance
from piyasa.tasks import cancel_and_wait

log = logging.getLogger(__name__)
HEARTBEAT_S = 5.0
GONE_AFTER = 3  # heartbeats missed before a row is marked gone
# An instance counts as live for sharing the bots while its heartbeat is this fresh: a
# dead one stops counting before its bot leases (10 s) can expire, so the survivors'
# share already covers its bots when they become free.
LIVE_S = 8.0


def new_instance_id() -> str:
    """``host:pid:random`` — stable for the life of the process, unique across restarts."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class InstanceRow:
    """One instance as `/health` shows it; times are UTC."""

    id: str
    host: str
    pid: int
    version: str
    schema_revision: str
    roles: tuple[str, ...]
    bots: tuple[int, ...]
    started_at: datetime
    heartbeat_at: datetime
    gone: bool


class InstanceRegistry:
    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        instance_id: str,
        *,
        version: str,
        schema_revision: str,
        roles: Callable[[], list[str]] = list,
        bots: Callable[[], list[int]] = list,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        """``sessions``: returns the current session factory (the wizard's database switch
        rebinds it); ``roles``: the singleton roles held now, written at each heartbeat."""
        self._sessions = sessions
        self.id = instance_id
        self.version, self.schema_revision = version, schema_revision
        self._roles = roles
        self._bots = bots
        self.heartbeat_s = heartbeat_s
        self._task: asyncio.Task[None] | None = None
        self.last_beat: datetime | None = None
        self.peers = 0  # other live instances at the last register/beat

    async def register(self) -> None:
        now = utcnow()
        async with self._sessions()() as session:
            session.add(
                Instance(
                    id=self.id,
                    host=self.id.split(":")[0],
                    pid=os.getpid(),
                    version=self.version,
                    schema_revision=self.schema_revision,
                    roles=sorted(self._roles()),
                    bots=[],
                    started_at=now,
                    heartbeat_at=now,
                )
            )
            await session.commit()
            self.peers = await self._count_peers(session)
        self.last_beat = now

    async def _count_peers(self, session: AsyncSession) -> int:
        query = select(func.count()).where(Instance.gone_at.is_(None), Instance.id != self.id)
        return int((await session.execute(query)).scalar_one())

    async def beat(self) -> int:
        """Refresh this row (roles too; back from gone if it was marked so) and mark the
        silent ones gone; returns how many were marked gone now."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.heartbeat_s * GONE_AFTER)
        async with self._sessions()() as session:
            await session.execute(
                update(Instance)
                .where(Instance.id == self.id)
                .values(
                    heartbeat_at=now,
                    roles=sorted(self._roles()),
                    bots=sorted(self._bots()),
                    gone_at=None,
                )
            )
            gone = await session.execute(
                update(Instance)
                .where(Instance.gone_at.is_(None), Instance.heartbeat_at < cutoff)
                .values(gone_at=now)
            )
            await session.commit()
            self.peers = await self._count_peers(session)
        self.last_beat = now
        return int(gone.rowcount or 0)  # type: ignore[attr-defined]

    async def live_count(self, fresh_s: float = LIVE_S) -> int:
        """Instances (this one included) whose heartbeat is under ``fresh_s`` seconds old:
        how many share the fleet's bots."""
        cutoff = utcnow() - timedelta(seconds=fresh_s)
        query = select(func.count()).where(
            Instance.gone_at.is_(None), Instance.heartbeat_at >= cutoff, Instance.id != self.id
        )
        async with self._sessions()() as session:
            return 1 + int((await session.execute(query)).scalar_one())

    async def start(self) -> None:
        await self.register()
        self._task = asyncio.create_task(self._run(), name="instance-heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.beat()
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("instance heartbeat failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        try:
            async with self._sessions()() as session:
                await session.execute(
                    update(Instance)
                    .where(Instance.id == self.id)
                    .values(gone_at=utcnow(), roles=[], bots=[])
                )
                await session.commit()
        except Exception as exc:
            log.warning("instance not marked stopped: %s", type(exc).__name__)


async def list_instances(session: AsyncSession, *, include_gone: bool = False) -> list[InstanceRow]:
    """Live instances (and gone ones when asked), oldest first."""
    query = select(Instance).order_by(Instance.started_at)
    if not include_gone:
        query = query.where(Instance.gone_at.is_(None))
    rows = (await session.execute(query)).scalars().all()
    return [
        InstanceRow(
            id=r.id,
            host=r.host,
            pid=r.pid,
            version=r.version,
            schema_revision=r.schema_revision,
            roles=tuple(r.roles or ()),
            bots=tuple(r.bots or ()),
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            gone=r.gone_at is not None,
        )
        for r in rows
    ]
