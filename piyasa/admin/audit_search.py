"""Reading the audit log back: filters (user, action, period), pages and CSV export.

"user" matches the actor or the target, so one filter shows what someone did and what was
done to them; "action" is a prefix (``user.`` finds every user change, ``users`` every
/users screen). Parameters are stored masked, so an export can never carry a secret.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from piyasa.db.models import AuditEntry
from piyasa.services import Services

PERIODS: dict[str, float | None] = {
    "1h": 3600,
    "24h": 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
    "all": None,
}
EXPORT_LIMIT = 100_000


@dataclass(frozen=True)
class AuditFilter:
    user: str = ""
    action: str = ""
    period: str = "7d"

    def as_params(self) -> dict[str, str]:
        return {"user": self.user, "action": self.action, "period": self.period}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AuditFilter:
        period = str(params.get("period") or "7d")
        return cls(
            user=str(params.get("user") or "")[:128],
            action=str(params.get("action") or "")[:64],
            period=period if period in PERIODS else "7d",
        )


def parse_filters(text: str) -> AuditFilter:
    """``user=ayse action=user. period=24h``; a bare word is a user, a bare period a period."""
    values: dict[str, str] = {}
    for token in (text or "").split():
        key, sep, value = token.partition("=")
        if sep and key.lower() in ("user", "action", "period"):
            values[key.lower()] = value
        elif token.lower() in PERIODS:
            values["period"] = token.lower()
        else:
            values.setdefault("user", token)
    return AuditFilter.from_params(values)


def _where(f: AuditFilter, now: datetime | None = None) -> list[Any]:
    where: list[Any] = []
    if f.user:
        where.append(or_(AuditEntry.actor == f.user, AuditEntry.target == f.user))
    if f.action:
        where.append(AuditEntry.action.startswith(f.action, autoescape=True))
    seconds = PERIODS.get(f.period)
    if seconds:
        where.append(AuditEntry.at >= (now or datetime.now(UTC)) - timedelta(seconds=seconds))
    return where


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditEntry]
    total: int
    page: int
    pages: int


async def search(
    services: Services, f: AuditFilter, page: int = 1, per_page: int = 10
) -> AuditPage:
    where = _where(f)
    async with services.sessions() as session:
        total = int(await session.scalar(select(func.count(AuditEntry.id)).where(*where)) or 0)
        pages = max(1, math.ceil(total / per_page))
        page = min(max(1, page), pages)
        stmt = (
            select(AuditEntry)
            .where(*where)
            .order_by(AuditEntry.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = list((await session.scalars(stmt)).all())
    return AuditPage(rows, total, page, pages)


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ becomes text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def export_csv(services: Services, f: AuditFilter, limit: int = EXPORT_LIMIT) -> bytes:
    """Every matching row (newest first, at most ``limit``) as UTF-8 CSV."""
    stmt = select(AuditEntry).where(*_where(f)).order_by(AuditEntry.id.desc()).limit(limit)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(
        [
            "id",
            "at_utc",
            "actor",
            "actor_user_id",
            "surface",
            "action",
            "target",
            "result",
            "params",
            "detail",
        ]
    )
    async with services.sessions() as session:
        for row in (await session.scalars(stmt)).all():
            out.writerow(
                [
                    _cell(v)
                    for v in (
                        row.id,
                        row.at.astimezone(UTC).isoformat(timespec="seconds"),
                        row.actor,
                        row.actor_user_id if row.actor_user_id is not None else "",
                        row.surface,
                        row.action,
                        row.target or "",
                        row.result,
                        json.dumps(row.params or {}, ensure_ascii=False, sort_keys=True),
                        row.detail or "",
                    )
                ]
            )
    return buf.getvalue().encode("utf-8")
