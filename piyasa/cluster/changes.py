"""Changes reach every instance: a change made on one instance (a setting, pause/resume,
a breaker reset) is applied on the others within about a second.

    bus = ChangeBus(services, instance_id)      # services.extras["cluster.changes"]
    bus.on("settings", handler)                  # handler(payload: dict) -> awaitable
    await bus.start()
    await announce(services, "settings")         # from wherever the change was made

On PostgreSQL a change is a ``NOTIFY`` on a channel named after the database (so two
deployments, or two test schemas, on one server do not hear each other), heard through
``LISTEN`` on a dedicated connection. The instance that made the change has already
applied it and ignores its own notification. A listener that lost its connection
reconnects and then *resyncs*: every handler is called with ``{"resync": True}``, since
notifications sent meanwhile are lost; the same resync runs every ``RESYNC_S`` as a
safety net. On SQLite (one process) :func:`announce` does nothing: the change is already
applied where it was made.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from piyasa.tasks import cancel_and_wait, wait_for

if TYPE_CHECKING:
    from piyasa.services import Services

log = logging.getLogger(__name__)
EXTRAS_KEY = "cluster.changes"
RESYNC_S = 30.0
CHECK_S = 5.0  # how often the listening connection is checked
RECONNECT_S = 2.0

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def channel_for(database_url: str) -> str:
    """``piyasa_<hash>``: one channel per database (and search_path)."""
    return "piyasa_" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


class ChangeBus:
    def __init__(self, services: Services, instance_id: str, *, resync_s: float = RESYNC_S):
        self.services = services
        self.id = instance_id
        self.resync_s = resync_s
        self.channel = channel_for(services.settings.database_url)
        self.handlers: dict[str, list[Handler]] = {}
        self.heard = 0  # notifications from other instances, applied
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._conn: Any = None  # SQLAlchemy AsyncConnection held for LISTEN

    @property
    def shared(self) -> bool:
        return not self.services.settings.sqlite_default

    def on(self, topic: str, handler: Handler) -> None:
        self.handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, payload: dict[str, Any] | None = None) -> None:
        """Tell the other instances (the caller applied the change here already)."""
        if not self.shared:
            return
        message = json.dumps({"o": self.id, "t": topic, "p": payload or {}})
        async with self.services.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_notify(:ch, :msg)"), {"ch": self.channel, "msg": message}
            )

    async def start(self) -> None:
        self.services.extras[EXTRAS_KEY] = self
        if self.shared:
            await self._listen()
            self._task = asyncio.create_task(self._run(), name="cluster-changes")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self._close()
        if self.services.extras.get(EXTRAS_KEY) is self:
            del self.services.extras[EXTRAS_KEY]

    # -- listening -----------------------------------------------------------------------
    def _heard(self, _conn: Any, _pid: int, _channel: str, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        if msg.get("o") != self.id:
            self._queue.put_nowait((str(msg.get("t")), dict(msg.get("p") or {})))

    async def _listen(self) -> None:
        conn = await self.services.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.add_listener(self.channel, self._heard)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                raw = await conn.get_raw_connection()
                await raw.driver_connection.remove_listener(self.channel, self._heard)
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never back to the pool with a LISTEN on it

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + self.resync_s
        next_check = loop.time() + CHECK_S
        while True:
            timeout = max(0.0, min(next_resync, next_check) - loop.time())
            try:
                topic, payload = await wait_for(self._queue.get(), timeout)
            except TimeoutError:
                pass
            else:
                await self._dispatch(topic, payload)
                self.heard += 1
                continue
            now = loop.time()
            if now >= next_check:
                next_check = now + CHECK_S
                if not await self._alive():
                    await self._reconnect()
                    next_resync = 0.0
            if loop.time() >= next_resync:
                next_resync = loop.time() + self.resync_s
                for topic in list(self.handlers):
                    await self._dispatch(topic, {"resync": True})

    async def _alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            await wait_for(self._conn.execute(text("SELECT 1")), CHECK_S)
            return True
        except Exception:
            return False

    async def _reconnect(self) -> None:
        await self._close()
        while self._conn is None:
            try:
                await self._listen()
                log.info("changes: listening again on %s", self.channel)
            except Exception as exc:
                log.warning("changes: cannot listen (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RECONNECT_S)

    async def _dispatch(self, topic: str, payload: dict[str, Any]) -> None:
        for handler in self.handlers.get(topic, ()):
            try:
                await handler(payload)
            except Exception as exc:
                log.warning("changes: %s not applied: %s", topic, type(exc).__name__)


async def announce(services: Services, topic: str, payload: dict[str, Any] | None = None) -> None:
    """Publish a change made here to the other instances; never raises (the periodic
    resync catches up whatever a lost notification missed)."""
    bus = services.extras.get(EXTRAS_KEY)
    if bus is None:
        return
    try:
        await bus.publish(topic, payload)
    except Exception as exc:
        log.warning("changes: %s not announced: %s", topic, type(exc).__name__)


def announce_soon(services: Services, topic: str, payload: dict[str, Any] | None = None) -> None:
    """:func:`announce` from synchronous code (a task on the running loop)."""
    if services.extras.get(EXTRAS_KEY) is None:
        return
    task = asyncio.get_running_loop().create_task(announce(services, topic, payload))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task[None]] = set()
