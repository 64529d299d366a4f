from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from piyasa import app
from piyasa.admin.setup.codes import create_setup_code
from piyasa.admin.users import add_user
from piyasa.db.engine import create_engine
from piyasa.db.migrate import upgrade
from tests.conftest import (
    SKIP_POSTGRES,
    _drop_pg_schema,
    _make_pg_schema,
    postgres_available,
    postgres_schema_url,
    skip_or_fail,
)
from tests.setup.helpers import GROUP, Person, Sandbox, settings_for, start_sandbox, with_token

ADMIN_GROUP = -1007200000900


@dataclass
class World:
    box: Sandbox
    data_dir: Path
    running: Any = None
    database_url: str = ""  # empty: SQLite in the data dir
    admin_chat_ids: str = str(ADMIN_GROUP)  # PIYASA_ADMIN_CHAT_IDS ("": none configured)
    people: dict[int, Person] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.running.services

    async def start(self) -> None:
        """`piyasa up` in this process (a fresh Services: a restart loses the memory cache)."""
        extra = {"PIYASA_ADMIN_CHAT_IDS": self.admin_chat_ids} if self.admin_chat_ids else {}
        if self.database_url:
            extra["PIYASA_DATABASE_URL"] = self.database_url
        settings = with_token(settings_for(self.data_dir, self.box.url, **extra))
        self.running = await app.start(settings, printer=lambda _line: None)
        await self.box.sb.wait_for_poller(self.box.admin_bot_id)

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def admin_with_code(self, username: str, **kw: Any) -> str:
        info = await add_user(self.services, username, "admin", **kw)
        return await create_setup_code(self.services, info.id)

    def person(self, user_id: int) -> Person:
        return self.people.setdefault(user_id, Person(self.box.sb, user_id, self.box.admin_bot_id))


@contextlib.asynccontextmanager
async def open_world(
    data_dir: Path, database_url: str = "", admin_chat_ids: str = str(ADMIN_GROUP)
) -> AsyncIterator[World]:
    """The sandbox, an admin group where the admin bot may delete, and `piyasa up`
    (``admin_chat_ids=""``: no admin chat configured, and the bot is in no group)."""
    box = await start_sandbox()
    if admin_chat_ids:
        box.sb.add_group(ADMIN_GROUP, "Yönetim", members=[box.admin_bot_id, 720001, 720002])
        box.sb.set_admin(ADMIN_GROUP, box.admin_bot_id)  # so it may delete what others typed
    w = World(box, data_dir, database_url=database_url, admin_chat_ids=admin_chat_ids)
    try:
        if database_url:  # `piyasa migrate` first, as an operator would for PostgreSQL
            engine = create_engine(database_url)
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
        await w.start()
        yield w
    finally:
        await w.stop()
        await box.stop()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema (as a URL with ``search_path``), dropped afterwards."""
    if not postgres_available():
        skip_or_fail(SKIP_POSTGRES)
    schema = "t_copy_" + uuid.uuid4().hex[:10]
    await _make_pg_schema(schema)
    try:
        yield postgres_schema_url(schema)
    finally:
        await _drop_pg_schema(schema)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path / "data") as w:
        yield w


@pytest.fixture
async def world_on_both(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    """The same world on SQLite and on PostgreSQL (``piyasa up`` migrates the empty one)."""
    async with open_world(tmp_path / "data", db_url) as w:
        yield w


__all__ = ["GROUP", "World"]
