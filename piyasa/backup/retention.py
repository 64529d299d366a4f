"""Grandfather-father-son retention.

Among the scheduled backups (kinds daily, weekly, monthly), the ``daily`` rule keeps the
newest backup of each of the last N days that have one, ``weekly`` the newest of each of
the last N ISO weeks, ``monthly`` the newest of each of the last N months (days, weeks and
months in the schedule's timezone). A backup kept by any rule survives. Manual and safety
backups are never pruned automatically: they are kept by their own kind until deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

RULES = ("daily", "weekly", "monthly")
SCHEDULED = frozenset(RULES)

_PERIOD: dict[str, Callable[[datetime], Any]] = {
    "daily": lambda t: t.date(),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
}


def kept_by(
    backups: Iterable[tuple[str, datetime, str]],
    retention: Mapping[str, int],
    timezone: str = "UTC",
) -> dict[str, tuple[str, ...]]:
    """``backups`` as (id, created_at UTC, kind); returns id -> the rules keeping it
    (empty tuple: prune it)."""
    tz = ZoneInfo(timezone)
    items = sorted(backups, key=lambda b: b[1], reverse=True)
    out: dict[str, list[str]] = {b[0]: [] for b in items}
    for backup_id, _, kind in items:
        if kind not in SCHEDULED:
            out[backup_id].append(kind)
    scheduled = [b for b in items if b[2] in SCHEDULED]
    for rule in RULES:
        keep = max(0, int(retention.get(rule, 0)))
        seen: set[Any] = set()
        for backup_id, created, _ in scheduled:
            if len(seen) >= keep:
                break
            period = _PERIOD[rule](created.astimezone(tz))
            if period not in seen:
                seen.add(period)
                out[backup_id].append(rule)
    return {k: tuple(v) for k, v in out.items()}
