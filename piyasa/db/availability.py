"""Is the database there? One answer per process, learned from the request path.

The first request that finds the database unreachable marks it down; from then on the
request path does not wait on it (degraded mode: read-only chat from the last-known-good
principals, writes refused with "try after recovery", audit rows spooled). A background
check tries again every :data:`RECHECK_S` seconds and, once the database answers, marks it
up and runs the recovery hooks (e.g. replaying the audit spool).

What counts as "unreachable" is :func:`is_outage`: connection refused or reset, a connect
or query timeout, a connection the driver invalidated. A constraint violation or a bad
query is a bug, not an outage, and passes through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

if TYPE_CHECKING:
    from piyasa.services import Services

log = logging.getLogger(__name__)
RECHECK_S = 1.0
"""While down, how often the background check tries the database again."""
_KEY = "db.availability"

RecoveryHook = Callable[[], Awaitable[Any]]


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (not that a query was wrong)."""
    if isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or isinstance(
            exc.orig, OSError
        )
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    # asyncpg errors a pool raises before SQLAlchemy wraps them (a connection lost mid-way)
    return type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__


@dataclass
class Availability:
    """The database's state as this process last saw it."""

    services: Services
    down_since: float | None = None  # time.time() of the first failure
    hooks: dict[str, RecoveryHook] = field(default_factory=dict)
    _checker: asyncio.Task[None] | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """The database did not answer: go degraded and start checking for recovery."""
        if self.down_since is None:
            self.down_since = time.time()
            log.warning(
                "database unreachable (%s): chat answers read-only until it is back",
                type(exc).__name__,
            )
        if self._checker is None or self._checker.done():
            self._checker = asyncio.ensure_future(self._check_until_up())

    def on_recovery(self, name: str, hook: RecoveryHook) -> None:
        """Run ``hook`` (no arguments) each time the database answers again; one per name."""
        self.hooks[name] = hook

    async def recovered(self) -> None:
        """The database answered: leave degraded mode and run the recovery hooks."""
        if self.down_since is None:
            return
        outage = time.time() - self.down_since
        self.down_since = None
        log.warning("database answers again after %.0f s", outage)
        for name, hook in list(self.hooks.items()):
            try:
                await hook()
            except Exception as exc:  # a hook must not stop the others
                log.warning("database recovery step %s failed: %s", name, type(exc).__name__)

    async def _check_until_up(self) -> None:
        while self.down:
            await asyncio.sleep(RECHECK_S)
            try:
                async with self.services.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:
                if not is_outage(exc):
                    log.warning("database check failed: %s", type(exc).__name__)
                continue
            await self.recovered()

    async def stop(self) -> None:
        task, self._checker = self._checker, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def availability(services: Services) -> Availability:
    """This process's view of the database (one per Services)."""
    found = services.extras.get(_KEY)
    if found is None:
        found = services.extras[_KEY] = Availability(services)
    return found


def db_down(services: Services) -> bool:
    """True while this process knows the database to be unreachable."""
    found = services.extras.get(_KEY)
    return bool(found is not None and found.down)
