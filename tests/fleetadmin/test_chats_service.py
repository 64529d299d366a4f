"""The fleet's chats as a service (both databases): add checked with Telegram, edits with
their bad inputs refused, remove that never drops an undelivered message, and the planner
honouring a chat's own budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from piyasa.db.models import AuditEntry, Chat
from piyasa.db.runtime_models import BotChat
from piyasa.fleetadmin import chat_changes as changes
from piyasa.fleetadmin import chats as svc
from piyasa.fleetadmin.chat_add import add_chat
from piyasa.runtime.planner import Planner
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster
from tests.runtime.conftest import clock, sandbox  # noqa: F401  (fixtures)
from tests.runtime.helpers import seed, with_sandbox

NEW_GROUP = -1005999000001


async def count(services, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_add_checks_membership_with_telegram(services, sandbox) -> None:  # noqa: F811
    bots, _chats = await seed(services, sandbox, bots=3, chats=1)
    with_sandbox(services, sandbox.base_url)
    sandbox.add_group(
        NEW_GROUP, "Kripto Sohbet", members=[bots[0].telegram_id, bots[2].telegram_id]
    )
    row = await add_chat(services, str(NEW_GROUP), actor="ayse")
    assert (row.title, row.telegram_id, row.bots, row.topics) == (
        "Kripto Sohbet",
        NEW_GROUP,
        2,
        ["bist", "fx", "crypto", "macro"],
    )
    async with services.sessions() as session:
        members = set(
            await session.scalars(select(BotChat.bot_id).where(BotChat.chat_id == row.id))
        )
    assert members == {bots[0].id, bots[2].id}
    card = await svc.card(services, row.id)
    assert {b.id for b in card.bots} == {bots[0].id, bots[2].id}
    assert await count(services, AuditEntry, AuditEntry.action == "chats.add") == 1
    with pytest.raises(svc.ChatError) as err:
        await add_chat(services, str(NEW_GROUP), actor="ayse")
    assert err.value.key == "chats.err.exists"


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("-1005999000077", "chats.err.not_member"),  # a group none of the bots is in
        ("not a chat", "chats.err.bad_ref"),
        ("0", "chats.err.bad_ref"),
    ],
)
async def test_add_refuses_a_chat_the_bots_are_not_in(services, sandbox, ref, error) -> None:  # noqa: F811
    await seed(services, sandbox, bots=2, chats=1)
    with_sandbox(services, sandbox.base_url)
    sandbox.add_group(-1005999000077, "Elsewhere", members=[])
    before = await count(services, Chat)
    with pytest.raises(svc.ChatError) as err:
        await add_chat(services, ref, actor="ayse")
    assert err.value.key == error
    assert await count(services, Chat) == before


async def test_add_refuses_when_the_bot_was_kicked(services, sandbox) -> None:  # noqa: F811
    bots, _ = await seed(services, sandbox, bots=1, chats=1)
    with_sandbox(services, sandbox.base_url)
    sandbox.add_group(NEW_GROUP, "Kicked", members=[bots[0].telegram_id])
    sandbox.remove_member(NEW_GROUP, bots[0].telegram_id)
    with pytest.raises(svc.ChatError) as err:
        await add_chat(services, str(NEW_GROUP), actor="ayse")
    assert err.value.key == "chats.err.not_member"
    assert await count(services, Chat, Chat.telegram_id == NEW_GROUP) == 0


async def test_edits_and_their_refusals(services, sandbox) -> None:  # noqa: F811
    _, chats = await seed(services, sandbox, bots=2, chats=2)
    cid = chats[0].id
    await changes.set_title(services, cid, "  BIST   Sabah ", actor="ayse")
    await changes.set_topics(services, cid, "BIST, altin, #fx", actor="ayse")
    await changes.toggle_topic(services, cid, "crypto", actor="ayse")
    await changes.set_budget(services, cid, "40", actor="ayse")
    await changes.set_enabled(services, cid, False, actor="ayse")
    page = await svc.query_chats(services, search="sabah")
    (row,) = page.rows
    assert (row.title, row.topics, row.msg_budget, row.enabled) == (
        "BIST Sabah",
        ["bist", "altin", "fx", "crypto"],
        40,
        False,
    )
    assert [r.id for r in (await svc.query_chats(services, status="enabled")).rows] == [chats[1].id]
    for call, error in (
        (changes.set_topics(services, cid, " , ", actor="a"), "chats.err.topics_empty"),
        (changes.set_topics(services, cid, [], actor="a"), "chats.err.topics_empty"),
        (changes.set_topics(services, cid, "döviz/kur", actor="a"), "chats.err.topic_bad"),
        (changes.set_budget(services, cid, "0", actor="a"), "chats.err.budget"),
        (changes.set_budget(services, cid, "1201", actor="a"), "chats.err.budget"),
        (changes.set_budget(services, cid, "çok", actor="a"), "chats.err.budget"),
        (changes.set_title(services, cid, "   ", actor="a"), "chats.err.title_empty"),
        (changes.set_enabled(services, 99999, True, actor="a"), "chats.err.no_chat"),
    ):
        with pytest.raises(svc.ChatError) as err:
            await call
        assert err.value.key == error
    (same,) = (await svc.query_chats(services, search="sabah")).rows
    assert same == row  # nothing changed
    for topic in ("bist", "altin", "fx"):
        await changes.toggle_topic(services, cid, topic, actor="a")
    with pytest.raises(svc.ChatError) as err:
        await changes.toggle_topic(services, cid, "crypto", actor="a")  # the last one stays
    assert err.value.key == "chats.err.topics_empty"


async def test_remove_needs_a_disabled_chat(services, sandbox) -> None:  # noqa: F811
    _, chats = await seed(services, sandbox, bots=1, chats=1)
    with pytest.raises(svc.ChatError) as err:
        await changes.remove_chat(services, chats[0].id, actor="a")
    assert err.value.key == "chats.err.remove_enabled"
    await changes.set_enabled(services, chats[0].id, False, actor="a")
    assert await changes.remove_chat(services, chats[0].id, actor="a") == "Group 0"
    assert await count(services, Chat) == 0


def test_planner_keeps_a_chat_within_its_budget() -> None:
    now = [1000.0]
    r = Roster()
    for i in (1, 2, 3):
        r.bots[i] = BotInfo(
            i, 100 + i, f"b{i}", f"B{i}", {"name": f"B{i}"}, "00:00-24:00", "UTC", 1000, True
        )
    r.chats[1] = ChatInfo(1, -101, "budgeted", "supergroup", ["fx"], True, msg_budget=4)
    r.chats[2] = ChatInfo(2, -102, "free", "supergroup", ["fx"], True)
    r.members = {1: [1, 2, 3], 2: [1, 2, 3]}
    p = Planner(
        r,
        clock=lambda: now[0],
        wall=lambda: datetime(2026, 1, 5, 12, tzinfo=UTC),
        max_pending_per_chat=10**6,
    )
    per_chat = {1: 0, 2: 0}
    for _ in range(600):  # ten simulated minutes
        for d in p.plan(1e6, 1.0, 50):
            per_chat[d.chat.id] += 1
            p.settle(d.chat.id)
        now[0] += 1.0
    assert per_chat[1] == 4 and per_chat[2] > 100
    now[0] += 3600
    assert any(d.chat.id == 1 for d in p.plan(1e6, 1.0, 50))  # a new hour, a new budget
