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


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _run(engine: AsyncEngine, fn, *args) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config()

    def work(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        fn(cfg, *args)

    async with engine.begin() as conn:
        await conn.run_sync(work)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, command.downgrade, revision)


async def pending(engine: AsyncEngine) -> bool:
    """True when the database is behind the newest revision."""
    return (await current_revision(engine)) != head_revision()
