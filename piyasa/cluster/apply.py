"""What a change announced by another instance does here (piyasa.cluster.changes).

- ``settings`` (a setting, pause/resume, scale): re-read the settings table, apply.
- ``roster`` (a bot or chat added, edited, enabled, disabled): reload the roster.
- ``breaker`` ``{"bot": id|None}``: close that breaker here too (not on a resync: a
  periodic resync must never reset anything).
- ``notify-test`` ``{"where", "lang"}`` and ``digests`` ``{"user"}``: a ``/alerts`` test or a
  ``/notify digest`` change made on a standby instance, done by the instance that runs the
  notification service (the admin role); the others have none and ignore it.
- ``backup-schedule``: a ``/backup schedule`` saved on a standby; the holder of the
  ``backups`` role re-reads it (on a resync too: re-reading is harmless).

User, role, lock, link and API-key changes need nothing here: every process checks the
principals version (piyasa/db/principals.py) on each request. The fleet is looked up at
each call: the setup wizard's database switch replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from piyasa.cluster.changes import ChangeBus
    from piyasa.services import Services


def register(bus: ChangeBus, services: Services) -> None:
    def fleet() -> Any:
        f = services.extras.get("fleet")
        return f if f is not None and getattr(f, "started", False) else None

    async def settings(_payload: dict[str, Any]) -> None:
        f = fleet()
        if f is not None and await f.settings_store.refresh():
            f.apply_settings()

    async def roster(_payload: dict[str, Any]) -> None:
        f = fleet()
        if f is not None:
            await f.reload_roster()

    async def breaker(payload: dict[str, Any]) -> None:
        f = fleet()
        if f is not None and not payload.get("resync"):
            bot = payload.get("bot")
            f.control.reset_breaker(None if bot is None else int(bot), broadcast=False)

    async def notify_test(payload: dict[str, Any]) -> None:
        svc = services.extras.get("notify")
        if svc is not None and not payload.get("resync") and payload.get("where"):
            await svc.send_test(str(payload["where"]), str(payload.get("lang") or "en"))

    async def digests(payload: dict[str, Any]) -> None:
        jobs = services.extras.get("notify.digests")
        if jobs is not None and not payload.get("resync") and payload.get("user") is not None:
            await jobs.reschedule(int(payload["user"]))

    async def backup_schedule(_payload: dict[str, Any]) -> None:
        sched = getattr(services.extras.get("backup"), "scheduler", None)
        if sched is not None and sched.scheduler is not None:
            await sched.load()
            sched._add_jobs()

    bus.on("settings", settings)
    bus.on("backup-schedule", backup_schedule)
    bus.on("notify-test", notify_test)
    bus.on("digests", digests)
    bus.on("roster", roster)
    bus.on("breaker", breaker)
