"""The user card: everything one user's screen shows, read in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from piyasa.admin import auth, passwords
from piyasa.admin.users.rules import _load
from piyasa.db.models import ApiKey
from piyasa.services import Services

# -- the card ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityInfo:
    id: int
    provider: str
    external_id: str
    display_name: str | None
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Card:
    id: int
    username: str
    role: str
    locked: bool
    must_change: bool
    has_password: bool
    mfa: str  # "on" | "pending" | "off"
    language: str | None
    created_at: datetime
    last_login_at: datetime | None
    ok_logins: int
    last_seen_at: datetime | None  # last chat use (piyasa.admin.activity)
    active_days: int  # UTC days with chat use
    failures: passwords.FailureStats
    identities: tuple[IdentityInfo, ...]
    api_keys: tuple[ApiKeyInfo, ...]
    elevated_until: datetime | None

    def as_json(self) -> dict:
        def ts(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "locked": self.locked,
            "must_change_password": self.must_change,
            "has_password": self.has_password,
            "mfa": self.mfa,
            "language": self.language,
            "created_at": ts(self.created_at),
            "last_login_at": ts(self.last_login_at),
            "login_count": self.ok_logins,
            "last_seen_at": ts(self.last_seen_at),
            "active_days": self.active_days,
            "failed_logins": {
                "streak": self.failures.streak,
                "last_hour": self.failures.last_hour,
                "last_failed_at": ts(self.failures.last_failed_at),
                "retry_after_s": self.failures.retry_after_s,
            },
            "identities": [
                {
                    "id": i.id,
                    "provider": i.provider,
                    "external_id": i.external_id,
                    "display_name": i.display_name,
                    "linked_at": ts(i.created_at),
                }
                for i in self.identities
            ],
            "api_keys": [
                {
                    "id": k.id,
                    "prefix": k.prefix,
                    "name": k.name,
                    "created_at": ts(k.created_at),
                    "last_used_at": ts(k.last_used_at),
                }
                for k in self.api_keys
            ],
            "elevated_until": ts(self.elevated_until),
        }


async def card(services: Services, ref: int | str) -> Card:
    """Everything the user card shows; ``ref`` is an id or a username."""
    async with services.sessions() as session:
        user = await _load(session, ref)
        keys = (
            await session.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.id)
            )
        ).all()
    elevated_until = await auth.elevated_until(services, user.id)
    mfa = "on" if user.totp_enabled else ("pending" if user.totp_secret_encrypted else "off")
    return Card(
        id=user.id,
        username=user.username,
        role=user.role,
        locked=user.locked,
        must_change=user.must_change_password,
        has_password=bool(user.password_hash),
        mfa=mfa,
        language=user.language,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        ok_logins=user.ok_logins,
        last_seen_at=user.last_seen_at,
        active_days=user.active_days or 0,
        failures=await passwords.failure_stats(services, user),
        identities=tuple(
            IdentityInfo(i.id, i.provider, i.external_id, i.display_name, i.created_at)
            for i in sorted(user.identities, key=lambda i: i.id)
        ),
        api_keys=tuple(
            ApiKeyInfo(k.id, k.prefix, k.name, k.created_at, k.last_used_at) for k in keys
        ),
        elevated_until=elevated_until,
    )
