"""The one-time setup code: `piyasa setup` prints it, the admin sends ``/setup CODE``.

It must outlive the CLI process that made it, so it is a database-backed one-time code
(`piyasa.admin.onetime`, purpose ``setup``): only its hash, the admin's user id and an
expiry are stored. Redeeming is single use and links the sender's Telegram account to
that admin, like a link code does (the command's audit row records the outcome, with the
code masked).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from piyasa.admin import onetime
from piyasa.admin.identity import attach_identity
from piyasa.db.models import User
from piyasa.services import Services

SETUP_PURPOSE = "setup"
CODE_TTL_S = 3600
MAX_FAILURES = 10
FAILURE_WINDOW_S = 3600


async def create_setup_code(services: Services, user_id: int, ttl_s: int = CODE_TTL_S) -> str:
    """A fresh code for ``user_id``; any earlier code stops working."""
    return await onetime.issue(services, SETUP_PURPOSE, user_id, ttl_s, replace=True)


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
    used = await onetime.consume(services, SETUP_PURPOSE, code)
    reason = used.reason
    user = None
    if used.ok:
        async with services.sessions() as session:
            user = await session.get(User, used.user_id)
        if user is None:
            reason = "invalid"
    if reason:
        await services.cache.incr(fail_key, 1, ttl=FAILURE_WINDOW_S)
        return Redeemed(False, reason)
    assert user is not None
    try:
        async with services.sessions() as session, session.begin():
            if not await attach_identity(session, user.id, "telegram", telegram_id, display_name):
                return Redeemed(False, "taken")
    except IntegrityError:
        return Redeemed(False, "taken")
    return Redeemed(True, username=user.username, user_id=user.id)


async def pending_code(services: Services) -> bool:
    """Is an unexpired setup code waiting to be redeemed?"""
    return await onetime.pending(services, SETUP_PURPOSE)


async def burn_setup_code(services: Services) -> None:
    """Void the pending code (it was seen where others could read it)."""
    await onetime.void(services, SETUP_PURPOSE)
