"""Alembic environment: async engines, batch mode on SQLite, URL from Piyasa settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from piyasa.db import all_models  # noqa: F401  (registers every table on Base.metadata)
from piyasa.db.base import Base, UTCDateTime
from piyasa.db.engine import create_engine

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context) -> str | bool:  # type: ignore[no-untyped-def]
    """Render app-side type decorators as plain SQLAlchemy types in revisions."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
        render_item=_render_item,
        on_version_apply=config.attributes.get("on_version_apply") or (),
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_sync)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # called from piyasa.db.migrate with a live sync connection
        _run_sync(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from piyasa.config import load_settings

        url = load_settings().database_url
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `piyasa migrate`")
run_migrations_online()
