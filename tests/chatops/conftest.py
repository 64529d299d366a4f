from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatops.commands import load_all
from chatops.telegram.surface import TelegramSurface
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
from tests.waiting import PatientSandbox


@pytest.fixture
async def people(services: Services) -> dict[str, int]:
    return await seed_people(services)


async def start_telegram(services: Services, registry=None) -> AsyncIterator[TelegramWorld]:  # type: ignore[no-untyped-def]
    sb = PatientSandbox(enforce_limits=False)
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


@pytest.fixture
async def slack_server() -> AsyncIterator:  # type: ignore[type-arg]
    from tests.chatops.slack_server import SlackServer

    server = SlackServer()
    await server.start()
    yield server
    await server.stop()


async def start_slack(services: Services, server, registry=None):  # type: ignore[no-untyped-def]
    from chatops.slack.surface import SlackSurface
    from chatops.web.server import make_web_app, start_web
    from tests.chatops.slack_server import BOT_TOKEN, SIGNING_SECRET, SlackClient

    surface = SlackSurface(
        services,
        registry or load_all(),
        token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=server.base + "/api/",
    )
    app = make_web_app(services)
    surface.mount(app)
    await surface.start()
    runner, port = await start_web(app, "127.0.0.1", 0)
    client = SlackClient(server, f"http://127.0.0.1:{port}/slack/events")
    client.surface_tokens = surface.tokens  # type: ignore[attr-defined]
    client.services = services  # type: ignore[attr-defined]
    try:
        yield client, surface
    finally:
        await runner.cleanup()
        await surface.stop()


@pytest.fixture
async def slack(services: Services, people: dict[str, int], slack_server):  # type: ignore[no-untyped-def]
    with_admin_settings(services, "http://127.0.0.1:9")
    async for client, _surface in start_slack(services, slack_server):
        yield client
