"""Passwords, TOTP step-up and short elevations.

Passwords use argon2id at the OWASP ASVS baseline (m = 19 MiB, t = 2, p = 1). TOTP follows
RFC 6238 with 30 s steps, at most one step of drift, and a code is accepted only once: the
last accepted step is stored on the user and any code at or before it is refused, so a
code read over someone's shoulder cannot be replayed. Elevations and failure counters live
in the cache, so they are shared across processes when Redis is configured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from argon2 import PasswordHasher
from argon2 import exceptions as argon2_exc
from argon2.low_level import Type
from sqlalchemy import select

from piyasa.db.models import User
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
    from piyasa.admin.identity import users_changed

    await users_changed(services)
    return secret


@dataclass(frozen=True)
class StepUpResult:
    """Outcome of a step-up attempt; ``reason`` is a catalog key suffix when refused."""

    ok: bool
    reason: str = ""  # "not_enrolled" | "throttled" | "invalid" | "replayed"
    retry_after_s: int = 0


def _fail_key(user_id: int) -> str:
    return f"stepup:fail:{user_id}"


def _elevation_key(user_id: int) -> str:
    return f"stepup:elevated:{user_id}"


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
    if reason:
        await services.cache.incr(_fail_key(user_id), 1, ttl=STEPUP_FAILURE_WINDOW_S)
        return StepUpResult(False, reason)
    await services.cache.delete(_fail_key(user_id))
    await grant_elevation(services, user_id)
    return StepUpResult(True)


async def grant_elevation(services: Services, user_id: int, ttl: float = ELEVATION_TTL_S) -> None:
    until = datetime.now(UTC).timestamp() + ttl
    await services.cache.set(_elevation_key(user_id), {"until": until}, ttl=ttl)


async def is_elevated(services: Services, user_id: int) -> bool:
    return await services.cache.get(_elevation_key(user_id)) is not None


async def revoke_elevation(services: Services, user_id: int) -> bool:
    return await services.cache.delete(_elevation_key(user_id))


async def user_has_totp(services: Services, user_id: int) -> bool:
    async with services.sessions() as session:
        return bool(await session.scalar(select(User.totp_enabled).where(User.id == user_id)))
