"""Scheduled backups with APScheduler: daily / weekly / monthly at set times in a timezone.

The schedule lives in the settings table under ``backup_schedule`` (the key the setup
wizard writes): either the wizard's word (``"daily"`` → every day 03:00, ``"weekly"`` →
Sundays 03:00, ``"off"``) or a dict ``{"daily": "03:00", "weekly": "sun 04:00",
"monthly": "1 05:00", "timezone": "Europe/Istanbul", "retention": {...}, "since": iso}``.
Nothing stored = daily at 03:00 UTC.

After each run: prune by retention, a test restore when none is younger than 7 days,
and an event (``backup`` source): success, warning on a failed verify/test restore,
critical when no good backup is younger than 2 days. A run missed while the process was
down (the trigger's next fire after the newest backup of that kind, or after ``since``,
is already past) runs at start, after the leftovers of killed backups and restores are
swept (:mod:`piyasa.backup.leftovers`). Last run, next run and last result feed the health
"scheduler" component (:meth:`BackupScheduler.snapshot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from piyasa.backup.model import DEFAULT_RETENTION, BackupError, ScheduleStatus
from piyasa.backup.words import error_text

log = logging.getLogger(__name__)
SETTING_KEY = "backup_schedule"
RULES = ("daily", "weekly", "monthly")
LEGACY = {"daily": {"daily": "03:00"}, "weekly": {"weekly": "sun 03:00"}, "off": {}}
DEFAULT = {"daily": "03:00"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TEST_RESTORE_EVERY = timedelta(days=7)
STALE_AFTER = timedelta(days=2)
_HM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time(kind: str, text: str) -> dict[str, Any]:
    """CronTrigger fields for ``"HH:MM"`` (daily), ``"mon HH:MM"`` (weekly), ``"1 HH:MM"``
    (monthly, day 1..28); ``BackupError("backup.bad_time")`` otherwise."""
    parts = (text or "").strip().lower().split()
    bad = BackupError("backup.bad_time", kind=kind, value=(text or "")[:40])
    want = 1 if kind == "daily" else 2
    if len(parts) != want:
        raise bad
    m = _HM.match(parts[-1])
    if not m:
        raise bad
    fields: dict[str, Any] = {"hour": int(m.group(1)), "minute": int(m.group(2))}
    if kind == "weekly":
        if parts[0] not in DAYS:
            raise bad
        fields["day_of_week"] = parts[0]
    elif kind == "monthly":
        if not parts[0].isdigit() or not 1 <= int(parts[0]) <= 28:
            raise bad
        fields["day"] = int(parts[0])
    return fields


def normalize(raw: Any) -> dict[str, Any]:
    """The stored setting as a full dict (legacy words and absent values filled in)."""
    if isinstance(raw, str):
        out: dict[str, Any] = dict(LEGACY.get(raw, DEFAULT))
    elif isinstance(raw, dict):
        out = {k: raw[k] for k in RULES if raw.get(k)}
        out.update({k: raw[k] for k in ("timezone", "since") if raw.get(k)})
        if isinstance(raw.get("retention"), dict):
            out["retention"] = raw["retention"]
    else:
        out = dict(DEFAULT)
    out.setdefault("timezone", "UTC")
    out["retention"] = {**DEFAULT_RETENTION, **(out.get("retention") or {})}
    return out


def _trigger(kind: str, text: str, tz: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(timezone=ZoneInfo(tz), **parse_time(kind, text))


class BackupScheduler:
    """The backup jobs on an ``AsyncIOScheduler`` in the running loop."""

    def __init__(self, svc: Any) -> None:
        self.svc = svc
        self.config: dict[str, Any] = normalize(None)
        self.scheduler: Any = None
        self.last_run: datetime | None = None
        self.last_result: str | None = None
        self.failed = 0
        self.tasks: set[asyncio.Task] = set()

    @property
    def retention(self) -> dict[str, int]:
        return dict(self.config["retention"])

    @property
    def timezone(self) -> str:
        return str(self.config["timezone"])

    async def load(self) -> dict[str, Any]:
        from piyasa.db.models import Setting

        async with self.svc.services.sessions() as session:
            row = await session.get(Setting, SETTING_KEY)
        self.config = normalize(row.value if row is not None else None)
        return self.config

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.svc.scheduler = self
        try:
            await self.load()
        except Exception as exc:  # database away: defaults until /backup schedule
            log.warning("backup schedule not read: %s", type(exc).__name__)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.start()
        self._add_jobs()
        self._spawn(self._catch_up())  # storage may be slow or away: never delay start-up

    async def _catch_up(self) -> None:
        """Sweep what killed backup operations left, then run each kind whose time passed
        while the process was down, once."""
        await self._tidy()
        try:
            missed = await self.missed()
        except Exception as exc:
            log.warning("missed backups not checked: %s", type(exc).__name__)
            return
        for kind in missed:
            await self.run(kind)

    async def _tidy(self) -> None:
        """At start: remove what a killed backup or restore left
        (:func:`piyasa.backup.leftovers.sweep`), unless an operation runs (it sweeps)."""
        from piyasa.backup import leftovers

        try:
            async with self.svc._exclusive():
                await leftovers.sweep(self.svc)
        except BackupError:  # busy: that operation sweeps before it starts
            return
        except Exception as exc:
            log.warning("leftovers of killed backups not swept: %s", type(exc).__name__)

    def _add_jobs(self) -> None:
        for job in self.scheduler.get_jobs():
            job.remove()
        for kind in RULES:
            if self.config.get(kind):
                self.scheduler.add_job(
                    self.run,
                    _trigger(kind, self.config[kind], self.timezone),
                    args=[kind],
                    id=f"backup-{kind}",
                    misfire_grace_time=3600,
                    coalesce=True,
                )
        if any(self.config.get(k) for k in RULES):  # "no good backup for 2 days" is critical
            self.scheduler.add_job(self._stale_check, "interval", hours=6, id="backup-stale")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        for task in list(self.tasks):
            task.cancel()
        if self.svc.scheduler is self:
            self.svc.scheduler = None

    async def missed(self) -> list[str]:
        """Kinds whose last fire time passed with no backup of that kind since."""
        newest: dict[str, datetime] = {}
        for b in await self.svc.list():
            newest.setdefault(b.kind, b.created_at)
        since = self.config.get("since")
        now = datetime.now(UTC)
        out = []
        for kind in RULES:
            if not self.config.get(kind):
                continue
            after = newest.get(kind) or (datetime.fromisoformat(since) if since else None)
            if after is None:
                continue
            nxt = _trigger(kind, self.config[kind], self.timezone).get_next_fire_time(
                None, after + timedelta(seconds=1)
            )
            if nxt is not None and nxt <= now:
                out.append(kind)
        return out

    def next_runs(self) -> dict[str, datetime]:
        now = datetime.now(UTC)
        out = {}
        for kind in RULES:
            if self.config.get(kind):
                nxt = _trigger(kind, self.config[kind], self.timezone).get_next_fire_time(None, now)
                if nxt is not None:
                    out[kind] = nxt.astimezone(UTC)
        return out

    async def run(self, kind: str) -> None:
        """One scheduled backup, then prune, maybe a test restore, and the events."""
        from piyasa.backup import events

        self.last_run = datetime.now(UTC)
        try:
            info = await self.svc.create(kind)
            self.last_result = "ok"
            events.done(self.svc.services, info)
        except BackupError as exc:
            self.failed += 1
            self.last_result = error_text(exc)
            events.failed(self.svc.services, kind, self.last_result)
            await self._stale_check()
            return
        except Exception as exc:
            self.failed += 1
            self.last_result = type(exc).__name__
            log.exception("scheduled %s backup failed", kind)
            events.failed(self.svc.services, kind, type(exc).__name__)
            await self._stale_check()
            return
        with contextlib.suppress(Exception):
            await self.svc.prune()
        await self._maybe_test_restore(info.id)

    async def _maybe_test_restore(self, backup_id: str) -> None:
        from piyasa.backup import events

        backups = await self.svc.list()
        latest = max((b.test_restored_at for b in backups if b.test_restored_at), default=None)
        if latest and datetime.now(UTC) - latest < TEST_RESTORE_EVERY:
            return
        try:
            await self.svc.test_restore(backup_id)
        except BackupError as exc:
            self.last_result = error_text(exc)
            events.verify_failed(self.svc.services, backup_id, self.last_result)

    async def _stale_check(self) -> None:
        from piyasa.backup import events

        try:  # storage unreachable: no good backup can be shown either
            good = [b for b in await self.svc.list() if b.verified_at]
        except Exception:
            good = []
        newest = max((b.created_at for b in good), default=None)
        if newest is None or datetime.now(UTC) - newest > STALE_AFTER:
            events.stale(self.svc.services, newest)

    def snapshot(self) -> dict[str, Any]:
        """For the health "scheduler" probe."""
        nxt = self.next_runs()
        return {
            "running": self.scheduler is not None and bool(self.scheduler.running),
            "jobs": len(nxt),
            "failed_jobs": 0 if self.last_result in (None, "ok") else 1,
            "missed_jobs": 0,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "next_run": min(nxt.values()).isoformat() if nxt else None,
            "last_result": self.last_result,
        }


def status_of(svc: Any) -> ScheduleStatus:
    sched: BackupScheduler | None = svc.scheduler
    config = sched.config if sched else (svc.schedule_config or normalize(None))
    probe = sched or BackupScheduler(svc)
    if not sched:
        probe.config = config
    return ScheduleStatus(
        enabled=any(config.get(k) for k in RULES),
        timezone=config["timezone"],
        next_runs=probe.next_runs(),
        last_run=sched.last_run if sched else None,
        last_result=sched.last_result if sched else None,
        retention=dict(config["retention"]),
        times={k: config[k] for k in RULES if config.get(k)},
    )


async def save_schedule(
    svc: Any,
    *,
    daily: str | None,
    weekly: str | None,
    monthly: str | None,
    timezone: str,
    retention: dict[str, int],
) -> ScheduleStatus:
    """Validate everything first, then store and re-schedule (nothing changes on error)."""
    from piyasa.db.models import Setting

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BackupError("backup.bad_timezone", timezone=(timezone or "")[:60]) from None
    times = {"daily": daily, "weekly": weekly, "monthly": monthly}
    for kind, value in times.items():
        if value:
            parse_time(kind, value)
    clean: dict[str, int] = {}
    for rule in RULES:
        value = retention.get(rule, DEFAULT_RETENTION[rule])
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
            raise BackupError("backup.bad_retention", rule=rule)
        clean[rule] = value
    if set(retention) - set(RULES):
        raise BackupError(
            "backup.bad_retention", rule=",".join(sorted(set(retention) - set(RULES)))
        )
    value: dict[str, Any] = {k: v.strip().lower() for k, v in times.items() if v}
    value.update(timezone=timezone, retention=clean, since=datetime.now(UTC).isoformat())
    async with svc.services.sessions() as session, session.begin():
        row = await session.get(Setting, SETTING_KEY)
        if row is None:
            session.add(Setting(key=SETTING_KEY, value=value, updated_by="backup"))
        else:
            row.value = value
            row.version += 1
    svc.schedule_config = normalize(value)
    sched: BackupScheduler | None = svc.scheduler
    if sched is not None:
        sched.config = normalize(value)
        if sched.scheduler is not None:
            sched._add_jobs()
    else:  # a standby instance: the holder of the "backups" role reschedules (cluster/apply)
        from piyasa.cluster.changes import announce

        await announce(svc.services, "backup-schedule")
    return status_of(svc)
