"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the web server read while the fleet writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_private_file(url: str) -> None:
    """Create a missing SQLite database file as 0600 before SQLite does (it would use 0644).
    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so those are
    private too, whatever the process umask."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir() and not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


CONNECT_TIMEOUT_S = 2.0
"""PostgreSQL connect timeout (TCP + start-up). Chat answers are due within about 2 s; the
first request that meets a dead server waits this long at most, and later ones not at all
(``piyasa.db.availability`` marks the database down). Queries keep their own 30 s."""


BULK_CONNECT_TIMEOUT_S = 15.0
"""Connect timeout for one-off bulk work (copying a database, a restore): nobody waits on a
chat answer, and a busy server may take longer than 2 s to accept a connection (seen in CI
under load: a copy refused as "cannot prepare the target" while the server was up)."""


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> AsyncEngine:
    """Make an engine with sane pool settings for the backend; ``connect_timeout_s`` (s)
    applies to PostgreSQL (``CONNECT_TIMEOUT_S`` for serving, ``BULK_CONNECT_TIMEOUT_S``
    for one-off bulk work)."""
    if url.startswith("sqlite"):
        _create_private_file(url)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    parsed = make_url(url)
    connect_args: dict[str, object] = {"timeout": connect_timeout_s, "command_timeout": 30}
    search_path = parsed.query.get("search_path")
    if search_path:  # asyncpg takes server settings as arguments, not URL options
        connect_args["server_settings"] = {"search_path": str(search_path)}
        parsed = parsed.difference_update_query(["search_path"])
    return create_async_engine(
        parsed,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args=connect_args,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction: commit on success, roll back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def ping(engine: AsyncEngine) -> float:
    """Round-trip a trivial query; returns latency in ms (raises when unreachable)."""
    start = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return (time.perf_counter() - start) * 1000
