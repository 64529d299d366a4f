"""Leases: one holder per name at a time, renewed by the holder, taken over when it expires.

Three backends with one interface, ``await lease.try_hold(name, holder, ttl_s) -> bool``
(acquire or renew; True when ``holder`` holds ``name`` for ``ttl_s`` more seconds from the
moment of the call) and ``await lease.release(name, holder)``:

- :class:`SqlLease` — a row per name in the ``leases`` table (PostgreSQL), acquired or
  renewed by one ``INSERT … ON CONFLICT DO UPDATE … WHERE holder = me OR expires_at < now()``.
  The expiry is on the **database's clock**, so instances with skewed clocks agree.
  Chosen over session advisory locks: an advisory lock dies with its connection, which is
  right after a SIGKILL (the kernel closes the socket) but not after a network partition —
  PostgreSQL then keeps the dead session, and the lock, until TCP keepalive gives up
  (minutes by default), and the partitioned holder cannot tell it lost the lock without a
  query. A lease row expires after ``ttl_s`` whatever happened to the holder's connection.
- :class:`RedisLease` — keys per deployment (its database), ``SET key me NX PX ttl`` to acquire, a Lua compare-and-renew to
  renew and compare-and-delete to release (Redis runs a script atomically). Used when
  ``PIYASA_REDIS_URL`` is configured.
- :class:`LocalLease` — SQLite is one machine, one process: the lease is held by whoever
  asks (single-instance behaviour is unchanged, no extra writes).

A holder must stop the role's work before its lease can expire elsewhere; that deadline is
kept by :class:`piyasa.cluster.elector.Elector` on the local monotonic clock, measured from
*before* each successful renewal was sent.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

FREE_LEFT = "#free"  # hold_many's answer: free names left untaken (max_take reached)


class LeaseBackend(Protocol):
    kind: str

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool: ...

    async def release(self, name: str, holder: str) -> None: ...

    async def holders(self) -> dict[str, str]: ...

    async def hold_many(
        self, holder: str, keep: list[str], take: list[str], max_take: int, ttl_s: float
    ) -> dict[str, int]: ...

    async def release_many(self, holder: str, names: list[str]) -> None: ...


class LocalLease:
    """One process on one machine (SQLite): every ask is granted."""

    kind = "local"

    def __init__(self) -> None:
        self._held: dict[str, str] = {}

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool:
        self._held[name] = holder
        return True

    async def release(self, name: str, holder: str) -> None:
        if self._held.get(name) == holder:
            del self._held[name]

    async def holders(self) -> dict[str, str]:
        return dict(self._held)

    async def hold_many(
        self, holder: str, keep: list[str], take: list[str], max_take: int, ttl_s: float
    ) -> dict[str, int]:
        """Batched :meth:`try_hold` (see :class:`SqlLease.hold_many`): all granted."""
        free = [n for n in take if n not in self._held]
        names = [*keep, *free[: max(0, max_take)]]
        for name in names:
            self._held[name] = holder
        return {**dict.fromkeys(names, 1), FREE_LEFT: max(0, len(free) - max(0, max_take))}

    async def release_many(self, holder: str, names: list[str]) -> None:
        for name in names:
            await self.release(name, holder)


_PG_HOLD = text(
    """
    INSERT INTO leases (name, holder, expires_at, epoch)
    VALUES (:name, :holder, clock_timestamp() + make_interval(secs => :ttl), 1)
    ON CONFLICT (name) DO UPDATE
        SET holder = EXCLUDED.holder,
            expires_at = EXCLUDED.expires_at,
            epoch = CASE WHEN leases.holder = EXCLUDED.holder
                         THEN leases.epoch ELSE leases.epoch + 1 END
        WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp()
    RETURNING epoch
    """
)
_PG_RELEASE = text(
    "UPDATE leases SET expires_at = clock_timestamp() - interval '1 second' "
    "WHERE name = :name AND holder = :holder"
)
# Batched hold for many leases in one statement (fleet bots, piyasa.cluster.spread): renew
# or re-take every name of :keep this holder has (or that is free), and take at most
# :max_take of the free or expired names of :take, in the order given.
_PG_HOLD_MANY = text(
    """
    WITH free_all AS (
        SELECT t.n, t.i FROM unnest(CAST(:take AS text[])) WITH ORDINALITY AS t(n, i)
        WHERE NOT EXISTS (
            SELECT 1 FROM leases l WHERE l.name = t.n AND l.expires_at >= clock_timestamp()
        )
    ), free AS (
        SELECT n FROM free_all ORDER BY i LIMIT :max_take
    ), wanted AS (
        SELECT k.n FROM unnest(CAST(:keep AS text[])) AS k(n) UNION SELECT n FROM free
    ), held AS (
        INSERT INTO leases (name, holder, expires_at, epoch)
        SELECT n, :holder, clock_timestamp() + make_interval(secs => :ttl), 1
        FROM wanted ORDER BY n
        ON CONFLICT (name) DO UPDATE
            SET holder = EXCLUDED.holder,
                expires_at = EXCLUDED.expires_at,
                epoch = CASE WHEN leases.holder = EXCLUDED.holder
                             THEN leases.epoch ELSE leases.epoch + 1 END
            WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < clock_timestamp()
        RETURNING name, epoch
    )
    SELECT name, epoch FROM held
    UNION ALL SELECT '#free', count(*) - LEAST(count(*), :max_take) FROM free_all
    """
)
_PG_RELEASE_MANY = text(
    "UPDATE leases SET expires_at = clock_timestamp() - interval '1 second' "
    "WHERE name = ANY(CAST(:names AS text[])) AND holder = :holder"
)
_PG_HOLDERS = text("SELECT name, holder FROM leases WHERE expires_at >= clock_timestamp()")


class SqlLease:
    """Leases as rows of ``leases`` on PostgreSQL (see the module docstring for why)."""

    kind = "postgresql"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.epochs: dict[str, int] = {}

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(_PG_HOLD, {"name": name, "holder": holder, "ttl": ttl_s})
            ).first()
        if row is None:
            return False
        self.epochs[name] = int(row[0])
        return True

    async def release(self, name: str, holder: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_PG_RELEASE, {"name": name, "holder": holder})

    async def holders(self) -> dict[str, str]:
        async with self.engine.connect() as conn:
            return {r[0]: r[1] for r in (await conn.execute(_PG_HOLDERS)).all()}

    async def hold_many(
        self, holder: str, keep: list[str], take: list[str], max_take: int, ttl_s: float
    ) -> dict[str, int]:
        """Renew ``keep`` and take up to ``max_take`` free names of ``take``, in one
        statement; returns {name: epoch} of every name ``holder`` holds afterwards for
        ``ttl_s`` seconds (a name of ``keep`` missing from it was lost), and under
        :data:`FREE_LEFT` how many free names of ``take`` were left to others."""
        params = {
            "keep": list(keep),
            "take": [n for n in take if n not in set(keep)],
            "max_take": max(0, int(max_take)),
            "holder": holder,
            "ttl": ttl_s,
        }
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_PG_HOLD_MANY, params)).all()
        return {str(r[0]): int(r[1]) for r in rows}

    async def release_many(self, holder: str, names: list[str]) -> None:
        """Expire ``names`` held by ``holder`` (one statement): others take them at once."""
        if names:
            async with self.engine.begin() as conn:
                await conn.execute(_PG_RELEASE_MANY, {"names": list(names), "holder": holder})


# KEYS[1] lease key, KEYS[2] epoch key; ARGV[1] holder, ARGV[2] ttl in ms.
# Returns the epoch when held (renewed or acquired), 0 when another holds it.
_REDIS_HOLD = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '1')
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
return 0
"""
# Batched hold (see SqlLease.hold_many). KEYS: the keep keys, then the take keys; ARGV[1]
# holder, ARGV[2] ttl in ms, ARGV[3] how many KEYS are keep keys, ARGV[4] max to take.
# Returns a flat list: key index (1-based), epoch, ... for every key held afterwards, then
# 0, the number of free take keys left untaken.
_REDIS_HOLD_MANY = """
local out, taken, left = {}, 0, 0
local nkeep, maxt = tonumber(ARGV[3]), tonumber(ARGV[4])
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  local epoch = 0
  if v == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    epoch = tonumber(redis.call('GET', k .. ':epoch') or '1')
  elseif (not v) and (i <= nkeep or taken < maxt) then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    epoch = redis.call('INCR', k .. ':epoch')
    if i > nkeep then taken = taken + 1 end
  elseif not v then
    left = left + 1
  end
  if epoch > 0 then
    out[#out + 1] = i
    out[#out + 1] = epoch
  end
end
out[#out + 1] = 0
out[#out + 1] = left
return out
"""
_REDIS_RELEASE_MANY = """
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n
"""
_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """Leases as Redis keys ``{namespace}lease:{name}`` holding the holder's id."""

    kind = "redis"

    def __init__(self, client: Any, namespace: str = "piyasa:", scope: str = "") -> None:
        """``client``: a ``redis.asyncio.Redis`` (the cache's, ``RedisCache.client``);
        ``scope``: the deployment (a hash of its database URL), so two deployments sharing
        one Redis never hold each other's roles."""
        self.client = client
        self.prefix = f"{namespace}lease:{scope + ':' if scope else ''}"
        self._hold = client.register_script(_REDIS_HOLD)
        self._release = client.register_script(_REDIS_RELEASE)
        self._hold_many = client.register_script(_REDIS_HOLD_MANY)
        self._release_many = client.register_script(_REDIS_RELEASE_MANY)
        self.epochs: dict[str, int] = {}

    async def try_hold(self, name: str, holder: str, ttl_s: float) -> bool:
        key = self.prefix + name
        epoch = int(
            await self._hold(keys=[key, key + ":epoch"], args=[holder, max(1, int(ttl_s * 1000))])
        )
        if epoch:
            self.epochs[name] = epoch
        return bool(epoch)

    async def release(self, name: str, holder: str) -> None:
        await self._release(keys=[self.prefix + name], args=[holder])

    async def hold_many(
        self, holder: str, keep: list[str], take: list[str], max_take: int, ttl_s: float
    ) -> dict[str, int]:
        """Renew ``keep`` and take up to ``max_take`` free names of ``take``: one script
        (atomic); returns {name: epoch} of every name held afterwards."""
        keep_set = set(keep)
        names = [*keep, *[n for n in take if n not in keep_set]]
        if not names:
            return {}
        flat = await self._hold_many(
            keys=[self.prefix + n for n in names],
            args=[holder, max(1, int(ttl_s * 1000)), len(keep), max(0, int(max_take))],
        )
        return {
            (names[int(flat[i]) - 1] if int(flat[i]) else FREE_LEFT): int(flat[i + 1])
            for i in range(0, len(flat), 2)
        }

    async def release_many(self, holder: str, names: list[str]) -> None:
        if names:
            await self._release_many(keys=[self.prefix + n for n in names], args=[holder])

    async def holders(self) -> dict[str, str]:
        out: dict[str, str] = {}
        async for key in self.client.scan_iter(match=self.prefix + "*"):
            name = (key.decode() if isinstance(key, bytes) else key)[len(self.prefix) :]
            if name.endswith(":epoch"):
                continue
            value = await self.client.get(self.prefix + name)
            if value is not None:
                out[name] = value.decode() if isinstance(value, bytes) else value
        return out


def make_lease(settings: Any, engine: AsyncEngine, cache: Any) -> LeaseBackend:
    """SQLite → :class:`LocalLease`; Redis configured → :class:`RedisLease` on the cache's
    client; else :class:`SqlLease` on the database."""
    if settings.sqlite_default:
        return LocalLease()
    client = getattr(cache, "client", None)
    if settings.redis_url and client is not None:
        from piyasa.cluster.ledger import scope_of

        scope = scope_of(settings.database_url)
        return RedisLease(client, getattr(cache, "namespace", "piyasa:"), scope)
    return SqlLease(engine)
