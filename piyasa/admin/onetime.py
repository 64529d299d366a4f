"""Single-use codes in the database: issue, then consume exactly once.

One mechanism for every "type this code in chat" flow (link codes, the setup code), so
they share the format, hashing, expiry, the attempt limit and the compare-and-delete that
makes redemption single use even when two chats race.

A code is 16 Crockford base32 characters, ``XXXX-XXXX-XXXX-XXXX`` (80 random bits). The
first group is a selector, stored in clear to find the code's row; the other 60 bits are
the secret. Only an HMAC-SHA256 of the code keyed by the secret key (``SecretBox.digest``)
is stored, so a copy of the database cannot be searched offline. A wrong code whose
selector names a live code counts against that code, and ``MAX_ATTEMPTS`` wrong tries burn
it. Typing is forgiving: case, spaces and dashes do not matter, O reads as 0, I and L as 1.

Codes issued before migration 0006 (8 characters, unsalted SHA-256) no longer work; they
expired within the hour anyway.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.db.models import OneTimeCode
from piyasa.services import Services

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: read aloud, typed on phones
GROUP_LEN = 4
CODE_LEN = 16  # 16 x 5 bits = 80 bits, of which 60 are secret (the selector is 20)
MAX_ATTEMPTS = 5
_MISTYPED = str.maketrans("OIL", "011")


def _canonical(code: str) -> str | None:
    """The code's 16 characters (no separators), or None when it cannot be a code."""
    raw = "".join(ch for ch in (code or "").upper() if ch.isalnum()).translate(_MISTYPED)
    if len(raw) != CODE_LEN or any(ch not in CROCKFORD for ch in raw):
        return None
    return raw


def _grouped(raw: str) -> str:
    return "-".join(raw[i : i + GROUP_LEN] for i in range(0, len(raw), GROUP_LEN))


def normalize_code(code: str) -> str:
    """'abcd efgh ijkm npqr', 'ABCDEFGHIJKMNPQR' -> 'ABCD-EFGH-1JKM-NPQR'; text that cannot
    be a code comes back upper-cased without separators."""
    raw = _canonical(code)
    return _grouped(raw) if raw else "".join(ch for ch in code.upper() if ch.isalnum())


def _digests(services: Services, raw: str) -> list[str]:
    return services.box.digests(f"onetime:{raw}")


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
    """A fresh ``XXXX-XXXX-XXXX-XXXX`` code for ``user_id``, valid ``ttl_s`` seconds;
    ``replace`` voids earlier codes of ``purpose``."""
    moment = time.time() if now is None else now
    raw = "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LEN))
    async with services.sessions() as session, session.begin():
        if replace:
            await session.execute(delete(OneTimeCode).where(OneTimeCode.purpose == purpose))
        await session.execute(
            delete(OneTimeCode).where(OneTimeCode.expires_at < _at(moment))
        )  # housekeeping: expired codes are useless
        session.add(
            OneTimeCode(
                code_hash=_digests(services, raw)[0],
                selector=raw[:GROUP_LEN],
                purpose=purpose,
                user_id=user_id,
                attempts=0,
                expires_at=_at(moment + ttl_s),
                created_at=_at(moment),
            )
        )
    return _grouped(raw)


async def _count_wrong_try(session: AsyncSession, hashes: Sequence[str]) -> None:
    """One more wrong try against each of these codes; burn those that reached the limit."""
    await session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.code_hash.in_(hashes))
        .values(attempts=OneTimeCode.attempts + 1)
    )
    await session.execute(
        delete(OneTimeCode).where(
            OneTimeCode.code_hash.in_(hashes), OneTimeCode.attempts >= MAX_ATTEMPTS
        )
    )


async def consume(
    services: Services, purpose: str, code: str, *, now: float | None = None
) -> Consumed:
    """Use the code up; only one of several concurrent callers can succeed. A wrong code
    whose first group names a live code of ``purpose`` counts as a wrong try against it."""
    moment = time.time() if now is None else now
    raw = _canonical(code)
    if raw is None:
        return Consumed(False, "invalid")
    digests = _digests(services, raw)
    async with services.sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(OneTimeCode.code_hash, OneTimeCode.user_id, OneTimeCode.expires_at).where(
                    OneTimeCode.purpose == purpose, OneTimeCode.selector == raw[:GROUP_LEN]
                )
            )
        ).all()
        match = next(
            (r for r in rows if any(hmac.compare_digest(r.code_hash, d) for d in digests)), None
        )
        if match is None:
            if rows:
                await _count_wrong_try(session, [r.code_hash for r in rows])
            return Consumed(False, "invalid")
        gone = await session.execute(
            delete(OneTimeCode).where(OneTimeCode.code_hash == match.code_hash)
        )
        if gone.rowcount != 1:
            return Consumed(False, "invalid")
        if match.expires_at < _at(moment):
            return Consumed(False, "expired")
        return Consumed(True, user_id=match.user_id)


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


async def void(services: Services, purpose: str, code: str | None = None) -> int:
    """Void one code (it was seen where others could read it), or all of ``purpose``.

    Returns how many codes were voided: 0 when ``code`` names no live code of ``purpose``
    (text that cannot be a code included), so a wrong code never voids the right one.
    """
    stmt = delete(OneTimeCode).where(OneTimeCode.purpose == purpose)
    if code is not None:
        raw = _canonical(code)
        if raw is None:
            return 0
        stmt = stmt.where(OneTimeCode.code_hash.in_(_digests(services, raw)))
    async with services.sessions() as session, session.begin():
        result = await session.execute(stmt)
    return int(result.rowcount or 0)
