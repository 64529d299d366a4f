"""Passwords, TOTP step-up and short elevations.

Passwords use argon2id at the OWASP ASVS baseline (m = 19 MiB, t = 2, p = 1). TOTP follows
RFC 6238 with 30 s steps, at most one step of drift, and a code is accepted only once: the
last accepted step is stored on the user and any code at or before it is refused, so a
code read over someone's shoulder cannot be replayed. Elevations are rows in the database
(``elevations``), read on every check, so ending one (a revoke, a lock, an MFA reset) from any
process — `piyasa user revoke NAME --elevation` included — ends it everywhere at once. The
step-up failure counters live in the cache (shared across processes when Redis is set).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2 import exceptions as argon2_exc
from argon2.low_level import Type
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.db.models import User
from piyasa.db.principals import Elevation
from piyasa.services import Services

PASSWORD_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
TOTP_STEP_S = 30
TOTP_DRIFT_STEPS = 1
ELEVATION_TTL_S = 300
STEPUP_MAX_FAILURES = 5
STEPUP_FAILURE_WINDOW_S = 900


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password``."""
    return PASSWORD_HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or malformed hash."""
    if not password_hash:
        return False
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (argon2_exc.VerificationError, argon2_exc.InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str, issuer: str = "Piyasa") -> str:
    return pyotp.TOTP(secret, interval=TOTP_STEP_S).provisioning_uri(
        name=username, issuer_name=issuer
    )


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (within ±1 of now) whose code equals ``code``, latest first."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_S)
    current = int((time.time() if now is None else now) // TOTP_STEP_S)
    for step in range(current + TOTP_DRIFT_STEPS, current - TOTP_DRIFT_STEPS - 1, -1):
        if pyotp.utils.strings_equal(totp.at(step * TOTP_STEP_S), code):
            return step
    return None


async def enroll_totp(services: Services, user_id: int, *, enabled: bool = True) -> str:
    """Store a new encrypted TOTP seed for the user and return it (shown to them once)."""
    secret = new_totp_secret()
    async with services.sessions() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None:
            raise LookupError(user_id)
        user.totp_secret_encrypted = services.box.encrypt(secret)
        user.totp_enabled = enabled
        user.totp_last_step = None
    return secret


@dataclass(frozen=True)
class StepUpResult:
    """Outcome of a step-up attempt; ``reason`` is a catalog key suffix when refused."""

    ok: bool
    reason: str = ""  # "not_enrolled" | "throttled" | "invalid" | "replayed"
    retry_after_s: int = 0


def _fail_key(user_id: int) -> str:
    return f"stepup:fail:{user_id}"


async def verify_step_up(
    services: Services, user_id: int, code: str, *, now: float | None = None
) -> StepUpResult:
    """Check a TOTP code for ``user_id``; on success grant an elevation.

    The accepted step is written with a compare-and-set on ``totp_last_step`` so two
    concurrent submissions of the same code cannot both succeed.
    """
    failures = int(await services.cache.get(_fail_key(user_id)) or 0)
    if failures >= STEPUP_MAX_FAILURES:
        return StepUpResult(False, "throttled", STEPUP_FAILURE_WINDOW_S)
    async with services.sessions() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None or not user.totp_enabled or not user.totp_secret_encrypted:
            return StepUpResult(False, "not_enrolled")
        secret = services.box.decrypt(user.totp_secret_encrypted)
        step = matching_step(secret, code, now)
        if step is None:
            reason = "invalid"
        elif user.totp_last_step is not None and step <= user.totp_last_step:
            reason = "replayed"
        else:
            previous = user.totp_last_step
            stmt = (
                User.__table__.update()
                .where(User.id == user_id)
                .where(
                    User.totp_last_step.is_(None)
                    if previous is None
                    else User.totp_last_step == previous
                )
                .values(totp_last_step=step)
            )
            result = await session.execute(stmt)
            reason = "" if result.rowcount == 1 else "replayed"
            if not reason:
                await _elevate(session, user_id, ELEVATION_TTL_S)
    if reason:
        await services.cache.incr(_fail_key(user_id), 1, ttl=STEPUP_FAILURE_WINDOW_S)
        return StepUpResult(False, reason)
    await services.cache.delete(_fail_key(user_id))
    return StepUpResult(True)


async def _elevate(session: AsyncSession, user_id: int, ttl: float) -> None:
    until = datetime.now(UTC) + timedelta(seconds=ttl)
    row = await session.get(Elevation, user_id)
    if row is None:
        session.add(Elevation(user_id=user_id, until=until))
    else:
        row.until = until


async def grant_elevation(services: Services, user_id: int, ttl: float = ELEVATION_TTL_S) -> None:
    """Elevate ``user_id`` for ``ttl`` seconds from now (replacing any earlier elevation)."""
    async with services.sessions() as session, session.begin():
        await _elevate(session, user_id, ttl)


async def elevated_until(services: Services, user_id: int) -> datetime | None:
    """When the user's elevation ends (UTC), or None when they are not elevated now."""
    async with services.sessions() as session:
        until = await session.scalar(select(Elevation.until).where(Elevation.user_id == user_id))
    return until if until is not None and until > datetime.now(UTC) else None


async def is_elevated(services: Services, user_id: int) -> bool:
    """Read from the database on every call: a revoke by any process counts at once."""
    return await elevated_until(services, user_id) is not None


async def end_elevation(session: AsyncSession, user_id: int) -> bool:
    """End the elevation inside the caller's transaction (a lock, an MFA reset, a revoke);
    True when one was active."""
    until = await session.scalar(
        delete(Elevation).where(Elevation.user_id == user_id).returning(Elevation.until)
    )
    return until is not None and until > datetime.now(UTC)


async def revoke_elevation(services: Services, user_id: int) -> bool:
    """End the user's elevation; True when one was active."""
    async with services.sessions() as session, session.begin():
        return await end_elevation(session, user_id)


async def user_has_totp(services: Services, user_id: int) -> bool:
    async with services.sessions() as session:
        return bool(await session.scalar(select(User.totp_enabled).where(User.id == user_id)))
