from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from piyasa import app
from piyasa.admin.setup.codes import create_setup_code
from piyasa.admin.users import add_user
from tests.setup.helpers import GROUP, Person, Sandbox, settings_for, start_sandbox, with_token

ADMIN_GROUP = -1007200000900


@dataclass
class World:
    box: Sandbox
    data_dir: Path
    running: Any = None
    people: dict[int, Person] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.running.services

    async def start(self) -> None:
        """`piyasa up` in this process (a fresh Services: a restart loses the memory cache)."""
        settings = with_token(
            settings_for(self.data_dir, self.box.url, PIYASA_ADMIN_CHAT_IDS=str(ADMIN_GROUP))
        )
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


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    box = await start_sandbox()
    box.sb.add_group(ADMIN_GROUP, "Yönetim", members=[box.admin_bot_id, 720001, 720002])
    box.sb.set_admin(ADMIN_GROUP, box.admin_bot_id)  # so it may delete what others typed
    w = World(box, tmp_path / "data")
    await w.start()
    try:
        yield w
    finally:
        await w.stop()
        await box.stop()


__all__ = ["GROUP", "World"]
