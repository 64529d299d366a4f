"""The /setup wizard's "Admin chat" step: an admin adds the admin bot to a new group with
the wizard's link, is asked in private, and Yes makes the group the admin chat — stored, so
alerts go there now and after a restart. A real `piyasa up` (in this process) against the
sandbox Telegram, with no PIYASA_ADMIN_CHAT_IDS, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from piyasa.admin import admin_chats
from piyasa.admin.health.model import HealthEvent, Reading, State
from piyasa.admin.setup.checks import connection_checks
from piyasa.db.models import AdminChat
from tests.chatops.harness import wait_answer
from tests.setup.conftest import World, open_world
from tests.setup.helpers import NEWCOMER, TURKISH, Person, buttons
from tests.waiting import until

pytestmark = pytest.mark.e2e

OPS = -1007200000500  # the group the admins make for alerts
QUESTION = "Use “Ops Room” as the admin chat?"


@pytest.fixture
async def bare(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    """No admin chat configured; a new group "Ops Room" without the admin bot in it."""
    async with open_world(tmp_path / "data", db_url, admin_chat_ids="") as w:
        w.box.sb.add_group(OPS, "Ops Room", members=[TURKISH], owner_id=NEWCOMER)
        yield w


async def at_admin_chat_step(world: World) -> Person:
    """The newcomer links with the setup code and goes to step 6, skipping the rest."""
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    for label in ("Next", "Later", "Later"):
        await me.tap(label)
    await me.tap("Keep as is" if me.has("Keep as is") else "Keep current database")
    await me.tap("Next")
    assert "Step 6/7" in me.last["text"] and "Admin chat" in me.last["text"]
    return me


async def stored(world: World) -> list[int]:
    async with world.services.sessions() as session:
        return list((await session.scalars(select(AdminChat.chat_id))).all())


async def question_after(world: World, mark: int, expect: str) -> dict:
    return await world.box.sb.wait_for_message(
        lambda m: expect in (m.get("text") or ""),
        chat_id=NEWCOMER,
        bot_id=world.box.admin_bot_id,
        after=mark,
    )


async def raise_test_alert(world: World, component: str) -> int:
    """A health component turns critical (as the health service reports it); returns a mark."""
    mark = world.box.sb.mark()
    now = datetime.now(UTC)
    reading = Reading(component, State.CRITICAL, "drill: 3 failures in a row")
    event = HealthEvent(
        component, State.HEALTHY, State.CRITICAL, now, "drill", State.CRITICAL, reading
    )
    world.services.extras["health.alerts"].on_event(event)
    return mark


async def test_an_admin_adopts_a_new_group_and_alerts_go_there_after_a_restart(
    bare: World,
) -> None:
    sb, bot_id = bare.box.sb, bare.box.admin_bot_id
    me = await at_admin_chat_step(bare)
    text = me.last["text"]
    assert "alerts have nowhere to go" in text
    kb = (me.last.get("reply_markup") or {}).get("inline_keyboard", [])
    urls = [b.get("url") for row in kb for b in row if b.get("url")]
    assert "https://t.me/kurulum_admin_bot?startgroup=setup&admin=delete_messages" in urls
    assert me.has("Skip (no alerts)")

    mark = sb.mark()  # Telegram adds the bot as an administrator that may delete
    await sb.start_in_group(OPS, bot_id, NEWCOMER, start="setup", admin=True)
    me.last = await question_after(bare, mark, QUESTION)
    assert me.has("Yes") and me.has("No")
    assert (bot_id, OPS) not in sb.left_chats
    assert await stored(bare) == []  # asking stores nothing

    mark = sb.mark()
    reply = await me.tap("Yes", expect="is now the admin chat")
    assert "Step 6/7" in reply["text"]
    assert "Ops Room (-1007200000500)" in reply["text"] and me.has("Next")
    told = await sb.wait_for_message(chat_id=OPS, bot_id=bot_id, after=mark)
    assert "now Piyasa's admin chat" in told["text"]
    assert await stored(bare) == [OPS]

    mark = await raise_test_alert(bare, "drill")
    alert = await sb.wait_for_message(
        lambda m: "drill" in (m.get("text") or ""), chat_id=OPS, bot_id=bot_id, after=mark
    )
    assert "3 failures" in alert["text"]
    await me.tap("Next")
    assert "Step 7/7" in me.last["text"] and "Admin chat: ✅ Ops Room" in me.last["text"]

    await bare.stop()  # nothing in the environment names the group: only the database
    await bare.start()
    assert OPS in bare.services.settings.admin_chat_ids
    mark = await raise_test_alert(bare, "drill_again")
    await sb.wait_for_message(
        lambda m: "drill_again" in (m.get("text") or ""), chat_id=OPS, bot_id=bot_id, after=mark
    )
    # `piyasa check` counts it too: the environment names no admin chat, the database does
    checks = await connection_checks(dataclasses.replace(bare.services.settings, admin_chat_ids=()))
    alerts = next(c for c in checks if c.name == "alerts")
    assert alerts.state == State.HEALTHY and f"telegram:{OPS}" in alerts.summary, alerts
    mark = sb.mark()  # and it is home: commands there are answered, not left
    await sb.send_user_message(NEWCOMER, OPS, "/whoami")
    reply = await sb.wait_for_message(chat_id=OPS, bot_id=bot_id, after=mark)
    assert "boss" in reply["text"]
    assert (bot_id, OPS) not in sb.left_chats


async def test_without_the_delete_right_it_says_which_right_and_stores_nothing(
    bare: World,
) -> None:
    sb, bot_id = bare.box.sb, bare.box.admin_bot_id
    me = await at_admin_chat_step(bare)
    mark = sb.mark()
    await sb.start_in_group(
        OPS, bot_id, NEWCOMER, start="setup", admin=True, rights={"can_delete_messages": False}
    )
    told = await question_after(bare, mark, "Ops Room")
    assert "without the “Delete messages” right" in told["text"]
    assert not buttons(told)  # no Yes to press
    assert await stored(bare) == [] and bare.services.settings.admin_chat_ids == ()
    assert (bot_id, OPS) not in sb.left_chats  # it waits to be given the right

    mark = sb.mark()  # the group's owner grants it: now the question comes
    sb.set_admin(OPS, bot_id, by=NEWCOMER, rights={"can_delete_messages": True})
    me.last = await question_after(bare, mark, QUESTION)
    await me.tap("Yes", expect="is now the admin chat")
    assert await stored(bare) == [OPS]


async def test_a_plain_member_bot_is_told_to_become_an_administrator(bare: World) -> None:
    sb, bot_id = bare.box.sb, bare.box.admin_bot_id
    await at_admin_chat_step(bare)
    mark = sb.mark()
    await sb.start_in_group(OPS, bot_id, NEWCOMER, start="setup", admin=False)
    told = await question_after(bare, mark, "Ops Room")
    assert "plain member" in told["text"] and "“Delete messages”" in told["text"]
    assert await stored(bare) == []


async def test_a_group_added_by_someone_else_is_told_why_and_left(bare: World) -> None:
    sb, bot_id = bare.box.sb, bare.box.admin_bot_id
    await at_admin_chat_step(bare)  # a wizard runs, but TURKISH is no Piyasa admin
    mark = sb.mark()
    await sb.start_in_group(OPS, bot_id, TURKISH, start="setup", admin=True)
    told = await sb.wait_for_message(chat_id=OPS, bot_id=bot_id, after=mark)
    assert "yalnızca bir Piyasa yöneticisi" in told["text"]  # in the adder's language
    await until(lambda: (bot_id, OPS) in sb.left_chats, "the bot to leave the group")
    assert await stored(bare) == [] and bare.services.settings.admin_chat_ids == ()
    assert not [
        e
        for e in sb.events[mark:]
        if e.get("chat_id") == NEWCOMER and e.get("from_bot") and e["type"] == "message"
    ]  # nobody was asked


async def test_forged_and_stale_yes_store_nothing(bare: World) -> None:
    sb, bot_id = bare.box.sb, bare.box.admin_bot_id
    me = await at_admin_chat_step(bare)
    mark = sb.mark()
    await sb.start_in_group(OPS, bot_id, NEWCOMER, start="setup", admin=True)
    question = await question_after(bare, mark, QUESTION)

    qid = await sb.press_button(
        NEWCOMER, NEWCOMER, question["message_id"], "forged-yes", forge=True, bot_id=bot_id
    )
    answer = await wait_answer(sb, qid)
    assert "expired or is not yours" in answer["text"]
    assert await stored(bare) == []

    sb.remove_member(OPS, bot_id)  # the group removes the bot before the admin answers
    await until_withdrawn(bare)
    reply = await me.tap("Yes", message=question, expect="no longer valid")
    assert "Add me to the group again" in reply["text"]
    assert await stored(bare) == [] and bare.services.settings.admin_chat_ids == ()


async def until_withdrawn(world: World) -> None:
    async def gone() -> bool:
        return await admin_chats.proposal(world.services, OPS) is None

    await until(gone, "the candidate to be withdrawn")
