"""What several benchmarks share: percentiles, a throwaway database, and timing a reply
inside an aiogram bot. The leading underscore keeps this module out of ``piyasa bench``'s
list (see :func:`piyasa.bench.available`)."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from piyasa.tasks import wait_for


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile by rank (no interpolation); None when nothing was measured."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.asynccontextmanager
async def throwaway_services(
    database_url: str, prefix: str, **overrides: Any
) -> AsyncIterator[Any]:
    """Services with every table created on a database the run may fill and forget.

    Without ``database_url``: a fresh SQLite file in a temporary data dir. With a
    PostgreSQL URL: a schema of its own (dropped afterwards), so a benchmark never touches
    the given database's own tables. ``overrides`` replace settings fields.
    """
    from piyasa.config import load_settings
    from piyasa.db import all_models  # noqa: F401
    from piyasa.db.base import Base
    from piyasa.services import Services

    schema = ""
    if database_url.startswith("postgres"):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        await _pg_schema(database_url, f'CREATE SCHEMA "{schema}"')
        database_url += ("&" if "?" in database_url else "?") + f"search_path={schema}"
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            env = {"PIYASA_DATA_DIR": tmp}
            if database_url:
                env["PIYASA_DATABASE_URL"] = database_url
            settings = dataclasses.replace(load_settings(env), **overrides)
            services = Services.build(settings)
            try:
                async with services.engine.begin() as conn:
                    await conn.run_sync(Base.metadata.create_all)
                yield services
            finally:
                await services.close()
    finally:
        if schema:
            await _pg_schema(database_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _pg_schema(db_url: str, statement: str) -> None:
    from sqlalchemy import text

    from piyasa.config import _db_url
    from piyasa.db.engine import create_engine

    engine = create_engine(_db_url("--database-url", db_url.split("?")[0]))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


# -- a reply's server-side latency, measured inside an aiogram bot ---------------------------

_received: contextvars.ContextVar[float | None] = contextvars.ContextVar("received", default=None)


def instrument(bot: Any, dp: Any, samples: list[float]) -> None:
    """Append to ``samples`` the ms from the dispatcher receiving an update (outermost
    update middleware) to its reply being handed to the HTTP session (a request
    middleware): the sandbox and long-polling delays stay out of the figure."""
    from aiogram.client.session.middlewares.base import BaseRequestMiddleware
    from aiogram.methods import EditMessageText, SendMessage

    class Stamp:
        async def __call__(self, handler: Any, event: Any, data: dict[str, Any]) -> Any:
            _received.set(time.perf_counter())
            return await handler(event, data)

    class Measure(BaseRequestMiddleware):
        async def __call__(self, make_request: Any, b: Any, method: Any) -> Any:
            t0 = _received.get()
            if t0 is not None and isinstance(method, SendMessage | EditMessageText):
                samples.append((time.perf_counter() - t0) * 1000)
            return await make_request(b, method)

    dp.update.outer_middleware(Stamp())
    bot.session.middleware(Measure())


async def drive(sb: Any, user_id: int, bot_id: int, texts: list[str], concurrency: int) -> float:
    """Send ``texts`` from ``user_id`` keeping ``concurrency`` unanswered; returns seconds
    for all replies. Only this bot may send meanwhile: the sandbox's sent log counts them."""
    log = sb.world.sent_log
    start = time.perf_counter()
    sent = 0
    base = len(log)
    while sent < len(texts):
        while sent < len(texts) and sent - (len(log) - base) < concurrency:
            await sb.send_private(user_id, bot_id, texts[sent])
            sent += 1
        waiter = sb.world.notifier.waiter()
        if len(log) - base < sent:
            await wait_for(waiter.wait(), 10)
    while len(log) - base < len(texts):
        waiter = sb.world.notifier.waiter()
        await wait_for(waiter.wait(), 10)
    return time.perf_counter() - start
