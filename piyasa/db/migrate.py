"""Apply and inspect Alembic migrations from Python (CLI, `piyasa up`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine


def _migrations_dir() -> Path:
    """The Alembic scripts: beside the source in a checkout, or the installed package."""
    beside = Path(__file__).resolve().parent.parent.parent / "migrations"
    if (beside / "env.py").is_file():
        return beside
    import migrations

    return Path(migrations.__file__).resolve().parent


MIGRATIONS_DIR = _migrations_dir()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def known_revision(revision: str) -> bool:
    """True when ``revision`` is one of this code's migrations (False: a newer version's)."""
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except (CommandError, KeyError):
        return False


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _run(engine: AsyncEngine, fn, *args, on_version_apply=None) -> None:  # type: ignore[no-untyped-def]
    """Run an Alembic command in one transaction: all revisions apply, or none does.

    SQLite's Python driver does not open a transaction before DDL (CREATE/ALTER/DROP run in
    autocommit; Python ``sqlite3`` docs, "Transaction control"), so a migration cut by a stop,
    a crash or SIGKILL used to leave some tables created and no ``alembic_version`` row, and
    the next start failed on "table already exists". An explicit ``BEGIN IMMEDIATE`` makes
    SQLite's DDL transactional (SQLAlchemy docs, "Serializable isolation / Savepoints /
    Transactional DDL"); PostgreSQL's DDL is transactional already.
    ``on_version_apply``: Alembic's per-revision callback (tests cut a migration there).
    """
    cfg = alembic_config()

    def work(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        cfg.attributes["on_version_apply"] = on_version_apply
        fn(cfg, *args)

    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        await conn.run_sync(work)


async def upgrade(
    engine: AsyncEngine,
    revision: str = "head",
    *,
    on_version_apply=None,  # type: ignore[no-untyped-def]
) -> None:
    """Upgrade to ``revision`` atomically (see ``_run``)."""
    await _run(engine, command.upgrade, revision, on_version_apply=on_version_apply)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, command.downgrade, revision)


async def pending(engine: AsyncEngine) -> bool:
    """True when the database is behind the newest revision."""
    return (await current_revision(engine)) != head_revision()
