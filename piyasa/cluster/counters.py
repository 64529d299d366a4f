"""Shared state rows on PostgreSQL: lock some keys, change their JSON, write them back.

Fleet-wide limits without Redis (the planner's ledger, the gate's token buckets) keep
their state in ``shared_counters`` rows. One call of :meth:`SqlState.update`:

1. ``INSERT … VALUES (k1), (k2) … ON CONFLICT (key) DO UPDATE … RETURNING`` — creates the
   missing rows and **locks** every row (keys sorted, so two callers never deadlock),
   returning their data and the database's clock (``clock_timestamp()``, epoch seconds:
   every instance reads the same time);
2. the caller's function changes the data in Python (the same code as the in-memory
   limits, so the rules cannot drift apart);
3. one ``UPDATE`` per changed row (executemany), then COMMIT releases the locks —
   with ``synchronous_commit`` off for this transaction: limit state is not a record,
   and waiting for the WAL flush cost ~10 ms a call on a loaded machine.

Concurrent callers on the same keys are serialised by the row locks, so the check and the
consume are atomic. Rows untouched for ``stale_s`` are deleted now and then, with
``FOR UPDATE SKIP LOCKED`` so cleanup never waits behind a hot row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

State = dict[str, dict[str, Any]]

_WRITE = text("UPDATE shared_counters SET data = :data, updated_at = :now WHERE key = :key")
_CLEAN = text(
    "DELETE FROM shared_counters WHERE key IN (SELECT key FROM shared_counters "
    "WHERE updated_at < :cut LIMIT 500 FOR UPDATE SKIP LOCKED)"
)
_READ = text(
    "SELECT key, data, extract(epoch from clock_timestamp()) FROM shared_counters "
    "WHERE key = ANY(:keys)"
)
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
_NOW = text("SELECT extract(epoch from clock_timestamp())")


def _lock_sql(n: int) -> Any:
    values = ", ".join(f"(:k{i}, '{{}}', 0)" for i in range(n))
    return text(
        f"INSERT INTO shared_counters (key, data, updated_at) VALUES {values} "
        "ON CONFLICT (key) DO UPDATE SET updated_at = shared_counters.updated_at "
        "RETURNING key, data, extract(epoch from clock_timestamp())"
    )


class SqlState:
    """Rows of ``shared_counters`` under ``prefix`` (one deployment's database)."""

    def __init__(self, engine: AsyncEngine, prefix: str = "", stale_s: float = 7200.0) -> None:
        self.engine = engine
        self.prefix = prefix
        self.stale_s = stale_s
        self._next_clean = 0.0

    async def update(
        self, keys: Sequence[str], change: Callable[[float, State], Sequence[str]]
    ) -> float:
        """Lock ``keys``, call ``change(now_s, state)`` (state: key -> its dict, ``{}`` when
        new; the function changes it in place and returns the keys it changed), write
        those back and commit. Returns the database time used (epoch seconds)."""
        wanted = sorted({self.prefix + k for k in keys})
        params = {f"k{i}": k for i, k in enumerate(wanted)}
        n = len(self.prefix)
        async with self.engine.begin() as conn:
            # limit state, not records: no wait for the WAL flush (a crash may forget the
            # last few milliseconds of counts; the row locks still serialise every caller)
            await conn.execute(_ASYNC_COMMIT)
            rows = (await conn.execute(_lock_sql(len(wanted)), params)).all()
            # the clock read after the last lock was taken (rows lock in key order)
            now = max(float(r[2]) for r in rows)
            state: State = {r[0][n:]: json.loads(r[1] or "{}") for r in rows}
            changed = change(now, state)
            if changed:
                await conn.execute(
                    _WRITE,
                    [
                        {"key": self.prefix + k, "data": json.dumps(state[k]), "now": now}
                        for k in sorted(set(changed))
                    ],
                )
        if time.monotonic() >= self._next_clean:
            self._next_clean = time.monotonic() + 60.0
            await self.clean(now)
        return now

    async def read(self, keys: Sequence[str]) -> tuple[float, State]:
        """The rows' data without locking (a look, never a decision) and the db time."""
        n = len(self.prefix)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_READ, {"keys": [self.prefix + k for k in set(keys)]})).all()
            now = float(rows[0][2]) if rows else float((await conn.execute(_NOW)).scalar_one())
        return now, {r[0][n:]: json.loads(r[1] or "{}") for r in rows}

    async def clean(self, now: float) -> None:
        """Delete rows untouched for ``stale_s`` (skipping rows someone holds)."""
        async with self.engine.begin() as conn:
            await conn.execute(_CLEAN, {"cut": now - self.stale_s})

    async def clear(self) -> None:
        """Delete every row of this prefix (tests, benchmarks)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM shared_counters WHERE key LIKE :p"), {"p": self.prefix + "%"}
            )
