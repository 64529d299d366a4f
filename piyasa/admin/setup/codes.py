"""The one-time setup code: `piyasa setup` prints it, the admin sends ``/setup CODE``.

It must outlive the CLI process that made it, so it is kept in the database (settings
table, key ``setup.code``), never in the in-process cache: only its SHA-256, the admin's
user id and an expiry. Redeeming is single use (compare-and-delete) and links the sender's
Telegram account to that admin, like a link code does (the command's audit row records
the outcome, with the code masked).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from piyasa.admin.identity import normalize_code, users_changed
from piyasa.db.models import Identity, Setting, User
from piyasa.services import Services

CODE_KEY = "setup.code"
CODE_TTL_S = 3600
MAX_FAILURES = 10
FAILURE_WINDOW_S = 3600
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _digest(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


async def create_setup_code(services: Services, user_id: int, ttl_s: int = CODE_TTL_S) -> str:
    """A fresh code for ``user_id``; any earlier code stops working."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    code = f"{raw[:4]}-{raw[4:]}"
    value = {"sha256": _digest(code), "user_id": user_id, "expires": time.time() + ttl_s}
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, CODE_KEY)
        if row is None:
            session.add(Setting(key=CODE_KEY, value=value, updated_by="setup"))
        else:
            row.value = value
            row.version += 1
    return code


@dataclass(frozen=True)
class Redeemed:
    ok: bool
    reason: str = ""  # invalid | expired | throttled | taken
    username: str = ""
    user_id: int = 0


async def redeem_setup_code(
    services: Services, code: str, telegram_id: str, display_name: str = ""
) -> Redeemed:
    """Link ``telegram_id`` to the code's admin; the code is used up on success."""
    fail_key = f"setup:fail:{telegram_id}"
    if int(await services.cache.get(fail_key) or 0) >= MAX_FAILURES:
        return Redeemed(False, "throttled")
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, CODE_KEY)
        value = dict(row.value or {}) if row is not None else {}
        if not value or not hmac.compare_digest(value.get("sha256", ""), _digest(code)):
            reason = "invalid"
        elif float(value.get("expires", 0)) < time.time():
            reason = "expired"
        else:
            # compare-and-delete: two concurrent redemptions cannot both win
            gone = await session.execute(
                delete(Setting).where(Setting.key == CODE_KEY, Setting.version == row.version)
            )
            reason = "" if gone.rowcount == 1 else "invalid"
        if not reason:
            user = await session.get(User, int(value["user_id"]))
            if user is None:
                reason = "invalid"
    if reason:
        await services.cache.incr(fail_key, 1, ttl=FAILURE_WINDOW_S)
        return Redeemed(False, reason)
    try:
        async with services.sessions() as session, session.begin():
            existing = await session.scalar(
                select(Identity).where(
                    Identity.provider == "telegram", Identity.external_id == str(telegram_id)
                )
            )
            if existing is not None and existing.user_id != user.id:
                return Redeemed(False, "taken")
            if existing is None:
                session.add(
                    Identity(
                        user_id=user.id,
                        provider="telegram",
                        external_id=str(telegram_id),
                        display_name=display_name[:128] or None,
                    )
                )
    except IntegrityError:
        return Redeemed(False, "taken")
    await users_changed(services)
    return Redeemed(True, username=user.username, user_id=user.id)


async def pending_code(services: Services) -> bool:
    """Is an unexpired setup code waiting to be redeemed?"""
    async with services.sessions() as session:
        value = await session.scalar(select(Setting.value).where(Setting.key == CODE_KEY))
    return bool(value) and float(value.get("expires", 0)) >= time.time()


async def burn_setup_code(services: Services) -> None:
    """Void the pending code (it was seen where others could read it)."""
    async with services.sessions() as session, session.begin():
        await session.execute(delete(Setting).where(Setting.key == CODE_KEY))
