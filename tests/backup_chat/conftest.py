"""Chat worlds for the backup commands: a migrated database of the test's own (backups
and restores work on whole databases, so ``settings.database_url`` is that database),
one user per role, some rows, and the sandbox Telegram or the local Slack on top."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from piyasa.db.engine import create_engine
from piyasa.db.migrate import upgrade
from piyasa.services import Services
from tests.backup.conftest import (  # noqa: F401
    _drop_templates,
    add_rows,
    backup_db_url,
    make_services,
)
from tests.chatops.conftest import slack_server, start_slack, start_telegram  # noqa: F401
from tests.chatops.harness import TelegramWorld, seed_people, with_admin_settings

# written by every chat request after a restore too: who did it (audit) and when the
# user was last seen; everything else must equal the backup row by row
LIVE_TABLES = {"audit_log"}
LIVE_COLUMNS = {("users", "last_seen_at")}


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, copied by each test (migrating takes seconds)."""
    import asyncio

    path = tmp_path_factory.mktemp("backup_chat_template") / "template.db"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture
def world_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own (modules override this to run on
    PostgreSQL too)."""
    live = tmp_path / "live.db"
    shutil.copyfile(migrated_sqlite, live)
    return f"sqlite+aiosqlite:///{live}"


@pytest.fixture
async def bservices(world_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = make_services(world_url, tmp_path / "data")
    services.extras["people"] = await seed_people(services)
    await add_rows(services, "before", 25)
    yield services
    await services.close()


@pytest.fixture
async def btg(bservices: Services) -> AsyncIterator[TelegramWorld]:
    async for world in start_telegram(bservices):
        world.user_ids = bservices.extras["people"]
        yield world


@pytest.fixture
async def bslack(bservices: Services, slack_server) -> AsyncIterator[Any]:  # noqa: F811
    with_admin_settings(bservices, "http://127.0.0.1:9")
    async for client, _surface in start_slack(bservices, slack_server):
        yield client


async def table_rows(services: Services) -> dict[str, list[tuple[str, ...]]]:
    """Every table's rows, sorted, without what a chat request itself writes."""
    meta = MetaData()
    async with services.engine.connect() as conn:
        await conn.run_sync(meta.reflect)
        out = {}
        for table in meta.sorted_tables:
            if table.name in LIVE_TABLES:
                continue
            cols = [c for c in table.columns if (table.name, c.name) not in LIVE_COLUMNS]
            rows = (await conn.execute(select(*cols))).all()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out
