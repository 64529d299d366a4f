"""One-time, expiring download links for backup archives (for admins, when an archive is
too big to send in chat).

A link's token is ``<secret>.<backup id>``: ``secret`` is ``secrets.token_urlsafe(32)``
(256 random bits); the backup id rides along in clear (it names the file the link serves
anyway). Only an HMAC-SHA256 of the whole token, keyed by the secret key
(``SecretBox.digests``), is stored, in the ``one_time_codes`` table with purpose
:data:`PURPOSE` and the admin's user id: a copy of the database cannot be turned back into
a link, and changing the id in a link breaks its digest, so a link is bound to its backup
and its admin. :func:`consume` deletes the row (compare-and-delete on the digest), so of
two concurrent uses only one succeeds; an expired row is deleted too and reported
``expired``. Tokens are never logged: callers log and audit the backup id only.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from piyasa.db.models import OneTimeCode
from piyasa.services import Services

PURPOSE = "backup_link"
DEFAULT_TTL_S = 15 * 60
TTL_SETTING = "PIYASA_BACKUP_LINK_TTL"  # seconds
PUBLIC_URL_SETTING = "PIYASA_PUBLIC_URL"  # e.g. https://piyasa.example.com
PATH_PREFIX = "/backups/download/"
_SECRET_BYTES = 32  # token_urlsafe(32): 43 characters
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class Link:
    """A link just issued: ``url`` (the secret: show once, never log), ``token`` (its last
    path segment), ``expires_at`` (UTC)."""

    url: str
    token: str
    backup_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Use:
    """What :func:`consume` found: ``ok``; ``reason`` "malformed" | "invalid" | "expired";
    the backup id and the admin's user id when the token was a real one."""

    ok: bool
    reason: str = ""
    backup_id: str = ""
    user_id: int = 0


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _digests(services: Services, token: str) -> list[str]:
    return services.box.digests(f"backuplink:{token}")


def ttl_s(settings: Any) -> float:
    """``PIYASA_BACKUP_LINK_TTL`` in seconds (default 900); unparsable or ≤ 0 → default."""
    raw = (getattr(settings, "extra", None) or {}).get(TTL_SETTING, "")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_TTL_S
    return value if value > 0 else DEFAULT_TTL_S


def public_url(settings: Any) -> str:
    """``PIYASA_PUBLIC_URL`` without a trailing slash, or "" when it is unset or not an
    http(s) URL (then no link can be made)."""
    raw = str((getattr(settings, "extra", None) or {}).get(PUBLIC_URL_SETTING, "")).strip()
    if not re.match(r"https?://[^\s/]+", raw):
        return ""
    return raw.rstrip("/")


async def issue(
    services: Services, backup_id: str, user_id: int, *, base_url: str, now: float | None = None
) -> Link:
    """A fresh link to ``backup_id`` for admin ``user_id``, valid :func:`ttl_s` seconds.
    Raises ``ValueError`` for a backup id a link cannot carry (not ``[A-Za-z0-9._-]``)."""
    moment = time.time() if now is None else now
    token = f"{secrets.token_urlsafe(_SECRET_BYTES)}.{backup_id}"
    if not TOKEN_RE.fullmatch(token):
        raise ValueError("backup id cannot be carried in a link")
    expires = _at(moment + ttl_s(services.settings))
    async with services.sessions() as session, session.begin():
        await session.execute(delete(OneTimeCode).where(OneTimeCode.expires_at < _at(moment)))
        session.add(
            OneTimeCode(
                code_hash=_digests(services, token)[0],
                selector="",
                purpose=PURPOSE,
                user_id=user_id,
                attempts=0,
                expires_at=expires,
                created_at=_at(moment),
            )
        )
    return Link(f"{base_url}{PATH_PREFIX}{token}", token, backup_id, expires)


async def consume(services: Services, token: str, *, now: float | None = None) -> Use:
    """Use the link up: only one of several concurrent callers gets ``ok``. A malformed
    or unknown token changes nothing."""
    moment = time.time() if now is None else now
    if not TOKEN_RE.fullmatch(token or ""):
        return Use(False, "malformed")
    digests = _digests(services, token)
    backup_id = token.split(".", 1)[1]
    async with services.sessions() as session, session.begin():
        row = (
            await session.execute(
                select(OneTimeCode.code_hash, OneTimeCode.user_id, OneTimeCode.expires_at).where(
                    OneTimeCode.purpose == PURPOSE, OneTimeCode.code_hash.in_(digests)
                )
            )
        ).first()
        if row is None:
            return Use(False, "invalid")
        gone = await session.execute(
            delete(OneTimeCode).where(OneTimeCode.code_hash == row.code_hash)
        )
        if gone.rowcount != 1:  # another request used it a moment ago
            return Use(False, "invalid")
        if row.expires_at < _at(moment):
            return Use(False, "expired", backup_id, row.user_id)
        return Use(True, backup_id=backup_id, user_id=row.user_id)


async def void(services: Services, token: str) -> int:
    """Void one link (it could not be delivered); returns how many rows went (0 or 1)."""
    if not TOKEN_RE.fullmatch(token or ""):
        return 0
    async with services.sessions() as session, session.begin():
        result = await session.execute(
            delete(OneTimeCode).where(
                OneTimeCode.purpose == PURPOSE,
                OneTimeCode.code_hash.in_(_digests(services, token)),
            )
        )
    return int(result.rowcount or 0)
