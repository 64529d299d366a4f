"""The one-time setup code: `piyasa setup` prints it, the admin sends ``/setup CODE``.

It must outlive the CLI process that made it, so it is a database-backed one-time code
(`piyasa.admin.onetime`, purpose ``setup``): only its hash, the admin's user id and an
expiry are stored. Redeeming is single use and links the sender's Telegram account to
that admin, like a link code does (the command's audit row records the outcome, with the
code masked).

Only the code itself can void itself: a code typed where others can read it (a group) is
voided when it is the live one, and any other text changes nothing — so no one in a group
can burn the admin's code by typing ``/setup anything``. Wrong codes are counted per
Telegram user *and* per chat (``MAX_FAILURES`` in ``FAILURE_WINDOW_S``, in the shared
cache); past the limit every try is refused with the minutes left until the window ends
(OWASP ASVS 5.0: brute force limited per account, REFERENCE.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from piyasa.admin import onetime
from piyasa.admin.identity import attach_identity
from piyasa.db.models import User
from piyasa.services import Services

SETUP_PURPOSE = "setup"
CODE_TTL_S = 3600
MAX_FAILURES = 10  # wrong codes per user and per chat within the window
FAILURE_WINDOW_S = 3600


async def create_setup_code(services: Services, user_id: int, ttl_s: int = CODE_TTL_S) -> str:
    """A fresh code for ``user_id``; any earlier code stops working."""
    return await onetime.issue(services, SETUP_PURPOSE, user_id, ttl_s, replace=True)


@dataclass(frozen=True)
class Redeemed:
    """What came of a typed setup code.

    ``reason``: "" (linked) | invalid | expired | throttled | taken | burned (a live code
    typed in a group, now void); ``retry_in_s`` is set when throttled.
    """

    ok: bool
    reason: str = ""
    username: str = ""
    user_id: int = 0
    retry_in_s: int = 0

    @property
    def retry_in_min(self) -> int:
        """Whole minutes to wait, rounded up (at least 1 when throttled)."""
        return max(1, math.ceil(self.retry_in_s / 60)) if self.retry_in_s else 0


def _fail_keys(telegram_id: str | int, chat_id: str | int | None) -> list[str]:
    keys = [f"setup:fail:user:{telegram_id}"]
    if chat_id is not None and str(chat_id) != str(telegram_id):  # a private chat is the user
        keys.append(f"setup:fail:chat:{chat_id}")
    return keys


async def throttled_for(services: Services, keys: list[str], *, now: float | None = None) -> int:
    """Seconds until every one of ``keys`` may try again (0: it may try now)."""
    moment = time.time() if now is None else now
    wait = 0.0
    for key in keys:
        if int(await services.cache.get(key) or 0) < MAX_FAILURES:
            continue
        since = await services.cache.get(f"{key}:since")
        left = FAILURE_WINDOW_S - (moment - float(since)) if since else FAILURE_WINDOW_S
        wait = max(wait, left, 1.0)
    return math.ceil(wait)


async def _count_failure(services: Services, keys: list[str], *, now: float | None) -> None:
    moment = time.time() if now is None else now
    for key in keys:
        await services.cache.add(f"{key}:since", moment, ttl=FAILURE_WINDOW_S)
        await services.cache.incr(key, 1, ttl=FAILURE_WINDOW_S)


async def redeem_setup_code(
    services: Services,
    code: str,
    telegram_id: str | int,
    display_name: str = "",
    *,
    chat_id: str | int | None = None,
    now: float | None = None,
) -> Redeemed:
    """Link ``telegram_id`` to the code's admin; the code is used up on success.

    A wrong or expired code counts against the user and ``chat_id`` (default: the user's
    private chat); once either reached ``MAX_FAILURES`` nothing is tried and the result is
    ``throttled`` with ``retry_in_s``.
    """
    keys = _fail_keys(telegram_id, chat_id)
    wait = await throttled_for(services, keys, now=now)
    if wait:
        return Redeemed(False, "throttled", retry_in_s=wait)
    used = await onetime.consume(services, SETUP_PURPOSE, code)
    reason = used.reason
    user = None
    if used.ok:
        async with services.sessions() as session:
            user = await session.get(User, used.user_id)
        if user is None:
            reason = "invalid"
    if reason:
        await _count_failure(services, keys, now=now)
        return Redeemed(False, reason)
    assert user is not None
    try:
        async with services.sessions() as session, session.begin():
            if not await attach_identity(
                session, user.id, "telegram", str(telegram_id), display_name
            ):
                return Redeemed(False, "taken")
    except IntegrityError:
        return Redeemed(False, "taken")
    return Redeemed(True, username=user.username, user_id=user.id)


async def burn_seen_code(
    services: Services,
    code: str,
    telegram_id: str | int,
    chat_id: str | int,
    *,
    now: float | None = None,
) -> Redeemed:
    """A code typed where others could read it: void it if it is the live setup code.

    Returns reason ``burned`` (it was, and no longer works), ``invalid`` (nothing changed;
    counted as a wrong try for the sender and the chat) or ``throttled`` (too many wrong
    tries; the live code is still voided if this was it, so a leak is never left open).
    """
    keys = _fail_keys(telegram_id, chat_id)
    wait = await throttled_for(services, keys, now=now)
    if await onetime.void(services, SETUP_PURPOSE, code):
        return Redeemed(False, "burned")
    if wait:
        return Redeemed(False, "throttled", retry_in_s=wait)
    await _count_failure(services, keys, now=now)
    return Redeemed(False, "invalid")


async def pending_code(services: Services) -> bool:
    """Is an unexpired setup code waiting to be redeemed?"""
    return await onetime.pending(services, SETUP_PURPOSE)
