"""Which limit store a fleet uses: memory (one process), Redis, or PostgreSQL.

* SQLite (one process, one machine): in-process memory — the planner's own counters and
  :class:`~piyasa.runtime.buckets.MemoryLimiter`; behaviour and speed as before.
* ``PIYASA_REDIS_URL`` set: the gate's buckets in Redis
  (:class:`~piyasa.runtime.buckets.RedisLimiter`) and the planner's ledger in Redis
  (:class:`~piyasa.cluster.ledger.RedisLedger`), each one atomic script per batch.
* PostgreSQL without Redis: both in ``shared_counters`` rows
  (:class:`~piyasa.runtime.sql_limiter.SqlLimiter`, :class:`~piyasa.cluster.ledger.SqlLedger`).

A fleet driven by an injected clock (tests that move time) keeps memory limits: shared
stores run on their server's clock, which an injected clock cannot move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from piyasa.cluster.ledger import Ledger, make_ledger
from piyasa.runtime.buckets import DeliveryLimits, Limiter, make_limiter
from piyasa.runtime.planner import Decision, Planner
from piyasa.runtime.planner_shared import confirm
from piyasa.services import Services

log = logging.getLogger(__name__)


def _shared_db(services: Services) -> bool:
    return not services.settings.sqlite_default and services.engine.dialect.name == "postgresql"


def fleet_limiter(
    services: Services,
    limits: DeliveryLimits,
    namespace: str,
    clock: Callable[[], float] | None,
) -> Limiter:
    """The gate's buckets: Redis when configured, else PostgreSQL rows when the database
    is shared (and time is real), else memory. Redis keys are ``namespace`` + the
    deployment's scope (``scope_of`` its database URL), like the ledger's and the leases':
    before, every deployment on one Redis shared bot 1's buckets and the fleet-wide window."""
    url = services.settings.redis_url
    if not url and clock is None and _shared_db(services):
        from piyasa.runtime.sql_limiter import SqlLimiter

        return SqlLimiter(services.engine, limits)
    if url:  # one deployment's buckets: two deployments may share one Redis
        from piyasa.cluster.ledger import scope_of

        namespace = f"{namespace}{scope_of(services.settings.database_url)}:"
    return make_limiter(url, limits, namespace, clock)


def fleet_ledger(services: Services, clock_injected: bool) -> Ledger | None:
    """The planner's shared ledger, or None (memory: SQLite, or an injected clock)."""
    if clock_injected:
        return None
    return make_ledger(services.settings, services.engine, services.cache)


async def confirm_or_hold(
    planner: Planner, ledger: Ledger | None, decisions: list[Decision], per_min: float
) -> list[Decision]:
    """The decisions the fleet-wide ledger admits. When it cannot be asked (Redis or the
    database away) nothing is admitted — over the cap is worse than a pause — and every
    decision is handed back to the planner (replies stay pending)."""
    if ledger is None or not decisions:
        return decisions
    try:
        return await confirm(planner, ledger, decisions, per_min)
    except Exception as exc:  # confirm() handed every decision back already
        log.warning("fleet ledger (%s) unreachable: %s", ledger.kind, type(exc).__name__)
        return []


async def note_human(ledger: Ledger | None, chat_id: int) -> None:
    """A person spoke in the chat: any bot may speak next, on every instance."""
    if ledger is None:
        return
    try:
        await ledger.note_human(chat_id)
    except Exception as exc:
        log.debug("fleet ledger: human note not written: %s", type(exc).__name__)
