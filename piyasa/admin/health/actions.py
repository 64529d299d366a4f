"""Quick fixes an operator runs from `/health` (or an alert): plain async functions.

Each takes the service container, acts through the fleet's control surface or the health
service, and returns what it did, so every surface (chat, CLI, tests) renders the same
facts. Authorization, confirmation and the audit row are the pipeline's job, not these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piyasa.admin import identity
from piyasa.logs import REDACTOR, RING
from piyasa.services import Services

LOG_LINES = 1000
# The one cache namespace that only holds recomputable data: what "clear cache" drops.
# Button tokens, link codes, step-up elevations, brute-force counters and dialog state
# are state, not cache, and are never touched (clearing them would sign people out or
# reset a lockout).
DERIVED_PREFIX = "cache:"


class NotRunning(Exception):
    """The part this action needs (fleet, health monitor) is not running here."""

    def __init__(self, part: str) -> None:
        super().__init__(part)
        self.part = part


def fleet_of(services: Services) -> Any:
    fleet = services.extras.get("fleet")
    if fleet is None or not getattr(fleet, "started", False):
        raise NotRunning("fleet")
    return fleet


def health_of(services: Services) -> Any:
    health = services.extras.get("health")
    if health is None:
        raise NotRunning("health")
    return health


async def restart_workers(services: Services) -> int:
    """Restart the generation workers and the planner; returns how many."""
    return int(await fleet_of(services).control.restart_workers())


def reset_breakers(services: Services, bot_id: int | None = None) -> int:
    """Close one bot's circuit breaker, or (None) every bot's and the LLM's.

    This lets calls through again; it does not make anything healthy. The LLM component
    stays as it was until a real call (a generation, or the fleet's probe, started at
    once) gets an answer, so a reset on a still-dead endpoint posts no "Resolved".
    """
    return int(fleet_of(services).control.reset_breaker(bot_id))


async def pause_fleet(services: Services, actor: str) -> None:
    """Stop deciding and sending; queued messages stay queued."""
    await fleet_of(services).control.pause(actor)


async def resume_fleet(services: Services, actor: str) -> None:
    await fleet_of(services).control.resume(actor)


@dataclass(frozen=True)
class Cleared:
    principals: int
    cache_entries: int
    fleet_reloaded: bool


async def clear_cache(services: Services) -> Cleared:
    """Drop what is cached and can be recomputed: resolved principals (in every process,
    through the shared generation counter), entries under ``cache:``, and the fleet's
    copies of settings and roster (read again from the database)."""
    memo = services.extras.get("identity.principals") or {}
    principals = len(memo)
    memo.clear()
    await identity.users_changed(services)
    entries = await services.cache.clear(DERIVED_PREFIX)
    fleet = services.extras.get("fleet")
    reloaded = False
    if fleet is not None and getattr(fleet, "started", False):
        await fleet.settings_store.refresh()
        fleet.apply_settings()
        await fleet.reload_roster()
        reloaded = True
    return Cleared(principals, entries, reloaded)


async def run_checks(services: Services) -> Any:
    """Run every probe now and return the fresh snapshot."""
    return await health_of(services).run_all_now()


def recent_logs(services: Services, limit: int = LOG_LINES) -> tuple[str, bytes, int]:
    """The last ``limit`` log lines as a text file: (filename, data, line count).

    Lines were redacted when logged; they are redacted again here, against this process's
    configured secrets too, so a line that slipped in before a secret was known (or from a
    handler without the filter) still never leaves the machine with it.
    """
    lines = list(RING.lines)[-limit:]
    clean = REDACTOR.with_secrets(*services.settings.secret_values())

    now = datetime.now(UTC)
    header = f"# Piyasa log, last {len(lines)} lines, secrets redacted, {now:%Y-%m-%d %H:%M:%S} UTC"
    body = "\n".join([header, *(clean(line) for line in lines)]) + "\n"
    return f"piyasa-log-{now:%Y%m%d-%H%M%S}.txt", body.encode("utf-8"), len(lines)
