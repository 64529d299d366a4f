"""The audit log: who did what, when (UTC), where, with which masked parameters, and how
it ended. Every command, button press, refusal and step-up lands here — during a database
outage too: rows are then kept in a local spool and written on recovery
(:mod:`piyasa.admin.audit_spool`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from piyasa.admin import audit_spool
from piyasa.db.availability import availability, is_outage
from piyasa.db.models import AuditEntry
from piyasa.services import Services

SECRET_KEY_RE = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|totp|otp|code|seed|credential|private", re.I
)
MASK = "***"
# What no database column may hold: NUL (PostgreSQL text and JSONB refuse it) and lone
# surrogates (not encodable as UTF-8). Such characters are stored as visible escapes.
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` (a string, or a JSON-like structure of them) safe for every database."""
    if isinstance(value, str):
        return UNSTORABLE_RE.sub(lambda m: ascii(m.group())[1:-1], value)
    if isinstance(value, Mapping):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def mask_params(params: Mapping[str, Any] | None, secret_names: set[str] | None = None) -> dict:
    """Copy of ``params`` with anything secret-looking replaced by ``***``."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if (secret_names and key in secret_names) or SECRET_KEY_RE.search(str(key)):
            out[key] = MASK if value not in (None, "") else value
        elif isinstance(value, Mapping):
            out[key] = mask_params(value, secret_names)
        elif isinstance(value, str) and len(value) > 200:
            out[key] = value[:200] + "…"
        else:
            out[key] = value
    return out


async def record(
    services: Services,
    *,
    actor: str,
    surface: str,
    action: str,
    result: str,
    actor_user_id: int | None = None,
    target: str | None = None,
    params: Mapping[str, Any] | None = None,
    detail: str | None = None,
    secret_names: set[str] | None = None,
) -> None:
    """Append one row. ``params`` are masked here, so callers cannot forget to; text no
    database can hold (a NUL byte) is escaped, so a refusal of such input is recorded too.
    While the database is unreachable the row goes to the spool (written on recovery);
    errors that are not an outage propagate."""
    entry = AuditEntry(
        at=datetime.now(UTC),
        actor=storable(actor)[:128],
        actor_user_id=actor_user_id,
        surface=surface[:16],
        action=storable(action)[:64],
        target=(target or None) and storable(str(target))[:255],
        params=storable(mask_params(params, secret_names)),
        result=result[:32],
        detail=detail and storable(detail),
    )
    gate = availability(services)
    if not gate.down:
        try:
            if audit_spool.pending(services):
                await audit_spool.replay(services)  # older rows first
            async with services.sessions() as session, session.begin():
                session.add(entry)
            return
        except Exception as exc:
            if not is_outage(exc):
                raise
            gate.failed(exc)
    gate.on_recovery("audit.spool", lambda: audit_spool.replay(services))
    audit_spool.append(services, entry)


async def recent(services: Services, limit: int = 50, **filters: Any) -> list[AuditEntry]:
    """Newest first; ``filters`` are equality filters on AuditEntry columns."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    for name, value in filters.items():
        stmt = stmt.where(getattr(AuditEntry, name) == value)
    async with services.sessions() as session:
        return list((await session.scalars(stmt)).all())
