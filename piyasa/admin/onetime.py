"""Single-use codes in the database: issue, then consume exactly once.

One mechanism for every "type this code in chat" flow (link codes, the setup code), so
they share hashing, expiry and the compare-and-delete that makes redemption single use
even when two chats race.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select

from piyasa.db.models import OneTimeCode
from piyasa.services import Services

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones


def normalize_code(code: str) -> str:
    """'abcd efgh', 'ABCDEFGH', 'abcd-efgh' -> 'ABCD-EFGH'."""
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else raw


def _digest(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Consumed:
    ok: bool
    reason: str = ""  # "invalid" | "expired"
    user_id: int = 0


async def issue(
    services: Services,
    purpose: str,
    user_id: int,
    ttl_s: float,
    *,
    replace: bool = False,
    now: float | None = None,
) -> str:
    """A fresh ``XXXX-XXXX`` code for ``user_id``; ``replace`` voids earlier codes of ``purpose``."""
    moment = time.time() if now is None else now
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    code = f"{raw[:4]}-{raw[4:]}"
    async with services.sessions() as session, session.begin():
        if replace:
            await session.execute(delete(OneTimeCode).where(OneTimeCode.purpose == purpose))
        await session.execute(
            delete(OneTimeCode).where(OneTimeCode.expires_at < _at(moment))
        )  # housekeeping: expired codes are useless
        session.add(
            OneTimeCode(
                code_hash=_digest(code),
                purpose=purpose,
                user_id=user_id,
                expires_at=_at(moment + ttl_s),
                created_at=_at(moment),
            )
        )
    return code


async def consume(
    services: Services, purpose: str, code: str, *, now: float | None = None
) -> Consumed:
    """Use the code up; only one of several concurrent callers can succeed."""
    moment = time.time() if now is None else now
    digest = _digest(code)
    async with services.sessions() as session, session.begin():
        row = await session.scalar(
            select(OneTimeCode).where(
                OneTimeCode.code_hash == digest, OneTimeCode.purpose == purpose
            )
        )
        if row is None:
            return Consumed(False, "invalid")
        gone = await session.execute(
            delete(OneTimeCode).where(
                OneTimeCode.code_hash == digest, OneTimeCode.purpose == purpose
            )
        )
        if gone.rowcount != 1:
            return Consumed(False, "invalid")
        if row.expires_at < _at(moment):
            return Consumed(False, "expired")
        return Consumed(True, user_id=row.user_id)


async def pending(services: Services, purpose: str, *, now: float | None = None) -> bool:
    """Is an unexpired code of ``purpose`` waiting?"""
    moment = time.time() if now is None else now
    async with services.sessions() as session:
        found = await session.scalar(
            select(OneTimeCode.code_hash).where(
                OneTimeCode.purpose == purpose, OneTimeCode.expires_at >= _at(moment)
            )
        )
    return found is not None


async def void(services: Services, purpose: str, code: str | None = None) -> None:
    """Void one code (it was seen where others could read it), or all of ``purpose``."""
    stmt = delete(OneTimeCode).where(OneTimeCode.purpose == purpose)
    if code is not None:
        stmt = stmt.where(OneTimeCode.code_hash == _digest(code))
    async with services.sessions() as session, session.begin():
        await session.execute(stmt)
