"""Every revision upgrades and downgrades, and the models match the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from piyasa.db import migrate
from piyasa.db.base import Base
from piyasa.db.engine import create_engine


async def _tables(engine) -> set[str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _diff(engine) -> list:  # type: ignore[no-untyped-def]
    def compare(conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
        )
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def test_upgrade_downgrade_upgrade_round_trip(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert set(Base.metadata.tables) <= await _tables(engine)
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
        assert await _tables(engine) <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_models_match_migrations(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        assert await _diff(engine) == []
    finally:
        await engine.dispose()


async def test_each_revision_steps_down_and_up(db_url: str) -> None:
    """Walk every revision one step at a time, so no downgrade is left untested."""
    engine = create_engine(db_url)
    try:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(migrate.alembic_config())
        revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
        for rev in revisions:
            await migrate.upgrade(engine, rev)
            assert await migrate.current_revision(engine) == rev
        for rev in reversed(revisions):
            await migrate.downgrade(engine, "-1")
            assert await migrate.current_revision(engine) != rev
    finally:
        await engine.dispose()


async def _triggers(engine) -> set[str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = "SELECT DISTINCT trigger_name FROM information_schema.triggers "
            sql += "WHERE trigger_schema = current_schema()"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return {row[0] for row in (await conn.execute(text(sql))).all()}


async def test_principal_triggers_are_the_same_from_migrations_and_from_models(
    db_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The principals version is moved by triggers, which autogenerate cannot compare:
    migrations and ``create_all`` must install the same ones, and a later revision that
    recreates users, identities or api_keys (SQLite batch mode) must not lose them."""
    import uuid

    from piyasa.db.principals import trigger_names
    from tests.conftest import _drop_pg_schema, _make_pg_schema, postgres_schema_url

    migrated = create_engine(db_url)
    schema = ""
    if migrated.dialect.name == "postgresql":
        schema = "t_" + uuid.uuid4().hex[:12]
        await _make_pg_schema(schema)
        modelled = create_engine(postgres_schema_url(schema))
    else:
        modelled = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'models.db'}")
    try:
        await migrate.upgrade(migrated)
        async with modelled.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        expected = trigger_names(migrated.dialect.name)
        assert await _triggers(migrated) == expected
        assert await _triggers(modelled) == expected
    finally:
        await migrated.dispose()
        await modelled.dispose()
        if schema:
            await _drop_pg_schema(schema)


class _Cut(Exception):
    pass


def _cut_after(count: int):  # type: ignore[no-untyped-def]
    applied: list[str] = []

    def on_version_apply(**kw) -> None:  # type: ignore[no-untyped-def]
        applied.append(kw["step"].up_revision_id)
        if len(applied) == count:
            raise _Cut(applied[-1])

    return on_version_apply


async def test_a_migration_cut_half_way_leaves_the_schema_as_it_was(db_url: str) -> None:
    """A migration stopped between revisions (a stop, a crash) changes nothing, so the next
    start applies it from where it was. Before: SQLite kept the first revisions' tables
    without a version row, and every later start failed on "table already exists"."""
    import pytest

    engine = create_engine(db_url)
    try:
        with pytest.raises(_Cut):
            await migrate.upgrade(engine, on_version_apply=_cut_after(3))
        assert await migrate.current_revision(engine) is None
        assert await _tables(engine) <= {"alembic_version"}
        await migrate.upgrade(engine, "0005")
        at_0005 = await _tables(engine)
        with pytest.raises(_Cut):
            await migrate.upgrade(engine, on_version_apply=_cut_after(4))
        assert await migrate.current_revision(engine) == "0005"
        assert await _tables(engine) == at_0005
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _diff(engine) == []
    finally:
        await engine.dispose()


_KILL_MID_MIGRATION = """
import asyncio, os, signal, sys
from piyasa.db import migrate
from piyasa.db.engine import create_engine

def on_version_apply(**kw):
    if kw["step"].up_revision_id == "0004":
        os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(migrate.upgrade(create_engine(sys.argv[1]), on_version_apply=on_version_apply))
"""


async def test_sigkill_mid_migration_leaves_no_half_schema(db_url: str) -> None:
    """A real process killed with SIGKILL after revision 0004 of a migration from empty."""
    import asyncio
    import signal
    import sys

    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _KILL_MID_MIGRATION, db_url)
    assert await proc.wait() == -signal.SIGKILL
    engine = create_engine(db_url)
    try:
        assert await migrate.current_revision(engine) is None
        assert await _tables(engine) <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
