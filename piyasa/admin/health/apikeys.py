"""API keys for machine readers (`/api/health` full view): sha256 of the key, never the key."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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


class KnownKeys:
    """API keys the database confirmed lately, for a database outage (degraded mode).

    `/api/health` with a key is what a monitor or an operator reads *because* something is
    down; when the database is what is down, a key it confirmed at most ``max_age_s`` ago
    (the principals' last-known-good age, ``piyasa.admin.identity.SNAPSHOT_MAX_AGE_S``)
    still opens the full view. Only the key's sha256 is held, never the key.
    """

    def __init__(self, max_age_s: float = 3600.0, clock: Any = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._known: dict[str, tuple[KeyOwner, float]] = {}

    def remember(self, key: str, owner: KeyOwner | None) -> None:
        """The database's answer for ``key``: its owner, or None (unknown or revoked)."""
        if owner is None:
            self._known.pop(hash_key(key), None)
        else:
            self._known[hash_key(key)] = (owner, self._clock())

    def recall(self, key: str) -> KeyOwner | None:
        """The owner the database last confirmed, if that was recent enough."""
        found = self._known.get(hash_key(key))
        if found is None or self._clock() - found[1] > self.max_age_s:
            return None
        return found[0]


KEY_CHECK_TIMEOUT_S = 3.0  # the longest /api/health waits for the database to know a key


async def check_api_key(services: Any, known: KnownKeys, key: str) -> KeyOwner | None:
    """``verify_api_key`` on ``services``' database; during an outage (already known, or
    found now: ``piyasa.db.availability``) the last-known-good answer from ``known``.
    Raises what the database raised when it is not an outage."""
    from piyasa.db.availability import availability, db_down, is_outage

    if not db_down(services):
        try:
            # a connection whose server died without closing it would wait forever: the
            # status page answers from the last-known-good keys instead
            async with asyncio.timeout(KEY_CHECK_TIMEOUT_S):
                owner = await verify_api_key(services.sessions, key)
        except Exception as exc:
            if not (is_outage(exc) or isinstance(exc, TimeoutError)):
                raise
            availability(services).failed(exc)
        else:
            known.remember(key, owner)
            return owner
    return known.recall(key)
