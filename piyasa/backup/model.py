"""What the backup service returns and raises (re-exported by :mod:`piyasa.backup.service`).

Reach it with :func:`backup_service` (``services.extras["backup"]``, built on first use).
Every method returns plain data (:class:`BackupInfo`, :class:`ScheduleStatus`) or raises
:class:`BackupError` whose ``key`` is a catalogue key (``backup.*``) and ``params`` its
parameters, so a surface shows the reason in the reader's language and nothing secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXTRAS_KEY = "backup"  # services.extras key
KINDS = ("daily", "weekly", "monthly", "manual", "safety")
DEFAULT_RETENTION = {"daily": 7, "weekly": 4, "monthly": 12}

Progress = Callable[[float, str], Awaitable[None]]  # fraction 0..1, catalogue key of the step


@dataclass(frozen=True)
class BackupInfo:
    """One complete archive (never a partial one)."""

    id: str  # archive name, e.g. "piyasa-20261130T220000Z-daily.pbk"
    created_at: datetime  # UTC
    kind: str  # "daily" | "weekly" | "monthly" | "manual" | "safety"
    size_bytes: int
    db_kind: str  # "sqlite" | "postgresql"
    schema_revision: str
    piyasa_version: str
    storage: str  # "local" | "s3"
    rows: dict[str, int]  # per table, from the manifest
    verified_at: datetime | None
    test_restored_at: datetime | None
    kept_by: tuple[str, ...]  # GFS rules keeping it: ("daily",), ("weekly", "monthly"), ...


@dataclass(frozen=True)
class ScheduleStatus:
    enabled: bool
    timezone: str
    next_runs: dict[str, datetime]  # kind -> next UTC run
    last_run: datetime | None
    last_result: str | None  # "ok" | error text (no secrets)
    retention: dict[str, int]  # {"daily": 7, "weekly": 4, "monthly": 12}
    times: dict[str, str] = field(default_factory=dict)  # kind -> "HH:MM" / "mon HH:MM" / "1 HH:MM"


class BackupError(Exception):
    """A refusal or failure with a catalogue key (``backup.unknown``, ``backup.corrupt``,
    ``backup.wrong_key``, ``backup.newer_schema``, ``backup.busy``, ``backup.storage``,
    ``backup.tools_missing``, ``backup.bad_time``, ``backup.bad_timezone``,
    ``backup.bad_retention``, ``backup.disk_full``, ``backup.rows_mismatch``)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(f"{key} {params}" if params else key)
        self.key = key
        self.params = params


def now_s() -> datetime:
    """UTC now, whole seconds (what manifests store)."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_ts(value: str | None) -> datetime | None:
    """An ISO time from a manifest, or None."""
    return datetime.fromisoformat(value) if value else None


def sub_progress(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` squeezed into ``lo..hi``."""
    if progress is None:
        return None

    async def inner(fraction: float, step: str) -> None:
        await progress(lo + (hi - lo) * fraction, step)

    return inner
