"""API keys for machine readers (`/api/health` full view): sha256 of the key, never the key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.models import ApiKey, User

TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyOwner:
    key_id: int
    user_id: int
    username: str
    role: str
    prefix: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def verify_api_key(
    sessions: async_sessionmaker[AsyncSession], key: str, *, now: datetime | None = None
) -> KeyOwner | None:
    """The key's owner, or None for unknown, revoked keys and locked users.

    ``last_used_at`` is written at most once a minute per key, so a monitor polling every
    few seconds does not turn every read into a write.
    """
    if not key or len(key) > 512:
        return None
    now = now or datetime.now(UTC)
    q = (
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(key))
    )
    async with sessions() as session:
        row = (await session.execute(q)).first()
        if row is None:
            return None
        api_key, user = row
        if api_key.revoked_at is not None or user.locked:
            return None
        if api_key.last_used_at is None or now - api_key.last_used_at >= TOUCH_EVERY:
            await session.execute(
                update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
            )
            await session.commit()
        return KeyOwner(api_key.id, user.id, user.username, user.role, api_key.prefix)
