"""Backup events for the notification pipeline (source ``backup``).

Emitted straight as :class:`piyasa.admin.notify.events.Event` until the notify package
offers a ``backup_event`` producer. Title keys live in the alerts catalogue
(``alerts.backup.*``); parameters carry no secrets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from piyasa.admin.notify.events import Event, emit

FAILED = "alerts.backup.failed.title"
STALE = "alerts.backup.stale.title"


def _emit(services: Any, event: Event) -> bool:
    return emit(getattr(services, "extras", None), event)


def done(services: Any, info: Any) -> bool:
    """A verified backup was stored (success); ends open "failed" and "stale" incidents."""
    params = {"id": info.id, "kind": info.kind, "size": info.size_bytes}
    newest = {"newest": info.created_at.isoformat()}
    ok = {"kind": info.kind, "reason": "ok"}
    _emit(services, Event("backup", "stale", "critical", STALE, newest, resolved=True))
    _emit(services, Event("backup", "failed", "warning", FAILED, ok, resolved=True))
    return _emit(services, Event("backup", "done", "success", "alerts.backup.done.title", params))


def failed(services: Any, kind: str, reason: str) -> bool:
    return _emit(
        services,
        Event("backup", "failed", "warning", FAILED, {"kind": kind, "reason": reason}),
    )


def verify_failed(services: Any, backup_id: str, reason: str) -> bool:
    return _emit(
        services,
        Event(
            "backup",
            "verify",
            "warning",
            "alerts.backup.verify_failed.title",
            {"id": backup_id, "reason": reason},
        ),
    )


def stale(services: Any, newest: datetime | None) -> bool:
    """No good backup younger than 2 days (critical)."""
    return _emit(
        services,
        Event(
            "backup",
            "stale",
            "critical",
            STALE,
            {"newest": newest.isoformat() if newest else "—"},
        ),
    )
