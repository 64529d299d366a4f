"""The admin bot's group changes shape: upgraded to a supergroup, or split into forum topics.

The sandbox plays Telegram (Bot API, Message and ResponseParameters): an upgraded group
sends ``migrate_to_chat_id`` in the old chat and ``migrate_from_chat_id`` in the new
``-100…`` one, and a call to the old id gets 400 with ``parameters.migrate_to_chat_id``.
In a forum, messages from a topic carry ``message_thread_id`` and ``is_topic_message``,
and a send without ``message_thread_id`` lands in General.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatops import i18n
from chatops.telegram.surface import TelegramSurface
from chatops.views import File, Text, View
from piyasa.db.models import ChatMigration
from piyasa.sandbox.telegram import SandboxClock
from piyasa.services import Services
from tests.chatops.harness import (
    ADMIN_BOT_TOKEN,
    PEOPLE,
    buttons,
    registry_for_tests,
    with_admin_settings,
)
from tests.waiting import PatientSandbox

BASIC_GROUP = -7100000005  # a basic group: no -100 prefix
FORUM = -1007100000042
TOPIC = 42
UPDATE_RETENTION_S = 24 * 3600  # Telegram keeps undelivered updates for 24 hours


@dataclasses.dataclass
class World:
    sb: PatientSandbox
    services: Services
    bot_id: int
    surface: TelegramSurface | None = None

    async def start(self, registry: Any = None) -> TelegramSurface:
        self.surface = TelegramSurface(self.services, registry or registry_for_tests())
        await self.surface.start(polling=True)
        await self.sb.wait_for_poller(self.bot_id)
        return self.surface

    async def stop(self) -> None:
        if self.surface is not None:
            await self.surface.stop()
            self.surface = None

    async def say(
        self, role: str, chat: int, text: str, thread: int | None = None
    ) -> dict[str, Any]:
        """``role`` writes in group ``chat`` (in topic ``thread``); the bot's next message."""
        mark = self.sb.mark()
        await self.sb.send_user_message(PEOPLE[role][0], chat, text, message_thread_id=thread)
        return await self.sb.wait_for_message(chat_id=chat, bot_id=self.bot_id, after=mark)


async def make_world(
    services: Services, chat_id: int, *, forum: bool = False, clock: Any = None
) -> World:
    """The admin bot and every role's person in one group, the only admin chat."""
    sb = PatientSandbox(enforce_limits=False, clock=clock)
    bot = sb.add_bot(ADMIN_BOT_TOKEN, "piyasa_test_admin_bot", "Piyasa Admin")
    for role, (uid, _slack) in PEOPLE.items():
        sb.add_user(uid, f"{role.title()} Person", f"{role}_person", "en")
    members = [bot.id, *(uid for uid, _ in PEOPLE.values())]
    sb.add_group(chat_id, "Admins", members=members, supergroup=chat_id < -(10**12), forum=forum)
    url = await sb.start("127.0.0.1", 0)
    with_admin_settings(services, url)
    services.settings = dataclasses.replace(services.settings, admin_chat_ids=(chat_id,))
    return World(sb, services, bot.id)


@pytest.fixture
async def basic(services: Services, people: dict[str, int]) -> AsyncIterator[World]:
    world = await make_world(services, BASIC_GROUP, clock=SandboxClock(start=1_800_000_000.0))
    try:
        yield world
    finally:
        await world.stop()
        await world.sb.stop()


async def stored_move(services: Services) -> int | None:
    async with services.sessions() as session:
        row = await session.get(ChatMigration, BASIC_GROUP)
    return row.new_chat_id if row is not None else None


def left(world: World) -> list[dict[str, Any]]:
    return world.sb.calls("leaveChat")


async def test_an_upgraded_admin_group_is_followed_and_stays_followed(basic: World) -> None:
    await basic.start()
    mark = basic.sb.mark()
    new = basic.sb.migrate_group(BASIC_GROUP, PEOPLE["admin"][0])

    notice = await basic.sb.wait_for_message(chat_id=new, bot_id=basic.bot_id, after=mark)
    assert notice["text"] == i18n.t("en", "chat.migrated", old=BASIC_GROUP, new=new)
    assert await stored_move(basic.services) == new
    reply = await basic.say("viewer", new, "/help")
    assert reply["text"].startswith(i18n.t("en", "help.title"))
    assert left(basic) == []  # the bot stayed in its group

    # After a restart the environment still names the old id; the database overrides it.
    await basic.stop()
    basic.services.settings = dataclasses.replace(
        basic.services.settings, admin_chat_ids=(BASIC_GROUP,)
    )
    surface = await basic.start()
    assert surface.admin_chat_ids == (new,)
    reply = await basic.say("operator", new, "/help")
    assert reply["text"].startswith(i18n.t("en", "help.title"))
    assert left(basic) == []


async def test_a_call_to_the_old_id_is_retried_on_the_new_one_and_stored(basic: World) -> None:
    """The bot was away for longer than Telegram keeps updates, so it never saw the
    upgrade: its first message to the old id (an announcement to the admins) meets the
    400, and the bot follows it there and then: the announcement arrives in the new chat."""
    from chatops import announce

    new = basic.sb.migrate_group(BASIC_GROUP, PEOPLE["admin"][0])
    basic.sb.clock.advance(UPDATE_RETENTION_S + 60)  # type: ignore[attr-defined]
    surface = await basic.start()
    assert surface.admin_chat_ids == (BASIC_GROUP,)  # nothing told it yet
    posted = await announce.to_admins(basic.services, lambda _l, _s: View.message("yedek tamam"))

    assert posted == 1
    texts = [m["text"] for m in basic.sb.sent(new)]
    assert texts == [i18n.t("en", "chat.migrated", old=BASIC_GROUP, new=new), "yedek tamam"]
    to_old = [
        c
        for c in basic.sb.calls("sendMessage")
        if str(c["params"].get("chat_id")) == str(BASIC_GROUP)
    ]
    assert [c["error_code"] for c in to_old] == [400]  # once, then never again
    assert surface.admin_chat_ids == (new,)
    assert await stored_move(basic.services) == new
    reply = await basic.say("viewer", new, "/help")
    assert reply["text"].startswith(i18n.t("en", "help.title"))
    assert left(basic) == []


# -- forum topics ---------------------------------------------------------------------------


def forum_registry() -> Any:
    reg = registry_for_tests()

    @reg.command("export", role="viewer", capability="testing")
    async def export(ctx):  # type: ignore[no-untyped-def]
        data = b"symbol,price\nTHYAO,312.5\n"
        return View(blocks=[Text("export ready")], files=[File("prices.csv", data, "prices")])

    return reg


@pytest.fixture
async def forum(services: Services, people: dict[str, int]) -> AsyncIterator[World]:
    world = await make_world(services, FORUM, forum=True)
    world.sb.create_topic(FORUM, PEOPLE["admin"][0], "Operasyon", thread_id=TOPIC)
    await world.start(forum_registry())
    try:
        yield world
    finally:
        await world.stop()
        await world.sb.stop()


def in_topic(message: dict[str, Any]) -> bool:
    return message.get("message_thread_id") == TOPIC and message.get("is_topic_message") is True


async def test_help_from_a_topic_is_answered_in_that_topic(forum: World) -> None:
    reply = await forum.say("viewer", FORUM, "/help", thread=TOPIC)
    assert reply["text"].startswith(i18n.t("en", "help.title"))
    assert in_topic(reply)
    general = await forum.say("viewer", FORUM, "/help")
    assert "message_thread_id" not in general  # asked in General, answered in General


async def test_a_press_in_a_topic_edits_in_place(forum: World) -> None:
    first = await forum.say("viewer", FORUM, "/pages", thread=TOPIC)
    assert in_topic(first)
    nxt = next(data for label, data in buttons(first) if label == i18n.t("en", "pager.next"))
    mark = forum.sb.mark()
    await forum.sb.press_button(PEOPLE["viewer"][0], FORUM, first["message_id"], nxt)
    edited = await forum.sb.wait_for_message(
        lambda m: m.get("edit_date") is not None, chat_id=FORUM, edits=True, after=mark
    )
    assert edited["message_id"] == first["message_id"] and in_topic(edited)
    assert edited["text"] == "page 2"


async def test_a_document_lands_in_the_topic(forum: World) -> None:
    mark = forum.sb.mark()
    await forum.sb.send_user_message(PEOPLE["viewer"][0], FORUM, "/export", message_thread_id=TOPIC)
    doc = await forum.sb.wait_for_message(lambda m: "document" in m, chat_id=FORUM, after=mark)
    assert doc["document"]["file_name"] == "prices.csv"
    assert in_topic(doc)
    assert all(in_topic(m) for m in forum.sb.sent(FORUM))


async def test_a_dialog_prompt_goes_to_the_topic(forum: World) -> None:
    prompt = await forum.say("admin", FORUM, "/adduser", thread=TOPIC)
    assert in_topic(prompt)
    nxt = await forum.say("admin", FORUM, "ayse_yilmaz", thread=TOPIC)
    assert in_topic(nxt) and nxt["message_id"] != prompt["message_id"]
    assert all(in_topic(m) for m in forum.sb.sent(FORUM))


async def test_the_sandbox_refuses_an_unknown_topic(forum: World) -> None:
    """Telegram's answer to a send naming a thread that does not exist."""
    from aiogram.exceptions import TelegramBadRequest

    assert forum.surface is not None
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await forum.surface.bot.send_message(FORUM, "x", message_thread_id=TOPIC + 1)
