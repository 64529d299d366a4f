"""Open the configured database with errors an operator can act on."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from piyasa.config import Settings, mask_url
from piyasa.db import migrate
from piyasa.db.engine import ping
from piyasa.errors import UserFacingError
from piyasa.tasks import wait_for


class DatabaseUnavailable(UserFacingError):
    """The database cannot be reached; the message says where and what to try."""


async def check_reachable(
    engine: AsyncEngine, settings: Settings, deadline_s: float = 10.0
) -> float:
    try:
        return await wait_for(ping(engine), deadline_s)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach the database at {mask_url(settings.database_url)} ({reason}); "
            "check PIYASA_DATABASE_URL and that the server is running"
        ) from None


async def prepare_schema(engine: AsyncEngine, settings: Settings) -> str:
    """Bring the embedded SQLite schema up to date; on PostgreSQL only verify it.

    Returns a line that says what happened, for the start-up banner.
    """
    before = await migrate.current_revision(engine)
    head = migrate.head_revision()
    if before == head:
        return f"schema up to date ({head})"
    if before is not None and not migrate.known_revision(before):
        raise DatabaseUnavailable(
            f"the database schema is at {before}, newer than this version of Piyasa knows "
            f"(its newest is {head}): another instance of a newer version migrated it. "
            "Run the same version on every instance (upgrade this one); do not downgrade "
            "the database from here"
        )
    if settings.sqlite_default:
        await migrate.upgrade(engine)
        return f"applied migrations {before or 'empty'} -> {head}"
    raise DatabaseUnavailable(
        f"the database schema is at {before or 'empty'}, this version needs {head}; "
        "run `piyasa migrate` first"
    )
