from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatops.commands import load_all
from chatops.telegram.surface import TelegramSurface
from piyasa.sandbox.telegram import TelegramSandbox
from piyasa.services import Services
from tests.chatops.harness import (
    ADMIN_BOT_TOKEN,
    ADMIN_GROUP,
    PEOPLE,
    STRANGER_GROUP,
    TelegramWorld,
    seed_people,
    with_admin_settings,
)


@pytest.fixture
async def people(services: Services) -> dict[str, int]:
    return await seed_people(services)


async def start_telegram(services: Services, registry=None) -> AsyncIterator[TelegramWorld]:  # type: ignore[no-untyped-def]
    sb = TelegramSandbox()
    bot = sb.add_bot(ADMIN_BOT_TOKEN, "piyasa_test_admin_bot", "Piyasa Admin")
    for role, (uid, _slack) in PEOPLE.items():
        sb.add_user(uid, f"{role.title()} Person", f"{role}_person", "en")
    sb.add_group(ADMIN_GROUP, "Admins", members=[bot.id, *(u for u, _ in PEOPLE.values())])
    sb.add_group(STRANGER_GROUP, "Strangers", members=[PEOPLE["unlinked"][0]])
    url = await sb.start("127.0.0.1", 0)
    with_admin_settings(services, url)
    surface = TelegramSurface(services, registry or load_all())
    await surface.start(polling=True)
    await sb.wait_for_poller(bot.id)
    try:
        yield TelegramWorld(sb=sb, surface=surface, services=services, bot_id=bot.id)
    finally:
        await surface.stop()
        await sb.stop()


@pytest.fixture
async def tg(services: Services, people: dict[str, int]) -> AsyncIterator[TelegramWorld]:
    async for world in start_telegram(services):
        world.user_ids = people
        yield world
