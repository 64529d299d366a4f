"""A fleet group upgraded to a supergroup: the fleet follows it, nothing lost, nothing twice.

Telegram's side is the sandbox's: the old chat gets a ``migrate_to_chat_id`` service
message, the new ``-100…`` chat one with ``migrate_from_chat_id``, and a send to the old
id is answered 400 "Bad Request: group chat was upgraded to a supergroup chat" with
``parameters.migrate_to_chat_id``.
"""

from __future__ import annotations

from sqlalchemy import select

from piyasa.db.models import Chat, ChatMigration
from piyasa.db.runtime_models import OutboxItem, WorkerEvent
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.outbox import Draft
from tests.runtime.helpers import namespace, seed, until, with_sandbox

OLD = -5100000001  # a basic group: no -100 prefix
HUMAN = 910001
N = 6


async def basic_group(services, sandbox) -> tuple[list, Chat]:  # type: ignore[no-untyped-def]
    """Two fleet bots and a human in a basic group the fleet talks in."""
    bots, _ = await seed(services, sandbox, bots=2, chats=0)
    sandbox.add_user(HUMAN, "Ayşe", "ayse")
    sandbox.add_group(
        OLD, "Borsa Sohbet", members=[*(b.telegram_id for b in bots)], supergroup=False
    )
    sandbox.add_member(OLD, HUMAN)
    async with services.sessions() as session, session.begin():
        chat = Chat(telegram_id=OLD, title="Borsa Sohbet", kind="group", topics=["bist"])
        session.add(chat)
    return bots, chat


def fleet_on(services, sandbox, receive: str) -> Fleet:  # type: ignore[no-untyped-def]
    with_sandbox(services, sandbox.base_url)
    return Fleet(
        services,
        receive=receive,
        settings_overrides={"max_msgs_per_min": 0},  # no chatter: only the drafts below
        limiter_namespace=namespace(),
    )


async def decide(fleet: Fleet, bots, chat: Chat) -> list[str]:  # type: ignore[no-untyped-def]
    """``N`` decided messages for the old chat id, queued in the outbox."""
    texts = [f"mesaj {i}: BIST bugün sakin" for i in range(N)]
    await fleet.store.enqueue(
        [
            Draft(
                idempotency_key=f"migration-test-{i}",
                bot_id=bots[i % 2].id,
                chat_id=chat.id,
                tg_chat_id=OLD,
                is_group=True,
                text=text,
            )
            for i, text in enumerate(texts)
        ]
    )
    return texts


async def rows(services) -> list[OutboxItem]:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return list((await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())


async def settled(services) -> bool:  # type: ignore[no-untyped-def]
    return all(r.state == "sent" for r in await rows(services))


async def telegram_id(services, chat: Chat) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(Chat.telegram_id).where(Chat.id == chat.id)))


async def assert_delivered_once_in(services, sandbox, new: int, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Every decided message is in the supergroup exactly once, none failed or left over."""
    delivered = [m["text"] for m in sandbox.sent(chat_id=new)]
    assert sorted(delivered) == sorted(texts)  # nothing lost, nothing twice
    assert sandbox.sent(chat_id=OLD) == []
    for row in await rows(services):
        assert (row.state, row.tg_chat_id) == ("sent", new), (row.state, row.last_error)
    async with services.sessions() as session:
        move = await session.get(ChatMigration, OLD)
        kinds = (await session.scalars(select(WorkerEvent.kind))).all()
    assert move is not None and move.new_chat_id == new
    assert "migrated" in kinds  # operators see it in the fleet's events


async def test_a_send_to_the_old_id_is_followed_to_the_supergroup(services, sandbox) -> None:
    """The fleet was not listening when the group was upgraded: its first send to the old
    id meets the 400, and every queued message goes to the supergroup instead."""
    bots, chat = await basic_group(services, sandbox)
    new = sandbox.migrate_group(OLD, HUMAN)
    fleet = fleet_on(services, sandbox, receive="off")
    texts = await decide(fleet, bots, chat)
    await fleet.start()
    try:
        await until(lambda: len(sandbox.sent(chat_id=new)) >= N, f"{N} messages in {new}")
        await until(lambda: settled(services), "every outbox row marked sent")
    finally:
        await fleet.stop()
    refused = [c for c in sandbox.calls("sendMessage") if c["error_code"] == 400]
    assert refused and all("upgraded to a supergroup" in c["description"] for c in refused)
    assert await telegram_id(services, chat) == new
    await assert_delivered_once_in(services, sandbox, new, texts)


async def test_the_upgrade_notice_moves_pending_rows_before_any_send(services, sandbox) -> None:
    """The fleet is listening: the service messages move the chat and its pending outbox
    rows to the new id while the gate is paused, and no send ever names the old id."""
    bots, chat = await basic_group(services, sandbox)
    fleet = fleet_on(services, sandbox, receive="polling")
    await fleet.start()
    try:
        for bot in bots:
            await sandbox.wait_for_poller(bot.telegram_id)
        fleet.gate.pause()
        await fleet.gate.quiesce()
        texts = await decide(fleet, bots, chat)
        new = sandbox.migrate_group(OLD, HUMAN)

        async def moved() -> bool:
            pending = await rows(services)
            return len(pending) == N and all(r.tg_chat_id == new for r in pending)

        await until(moved, "pending outbox rows moved to the supergroup")
        assert all(r.state == "queued" for r in await rows(services))
        assert await telegram_id(services, chat) == new
        fleet.gate.resume()
        await until(lambda: len(sandbox.sent(chat_id=new)) >= N, f"{N} messages in {new}")
        await until(lambda: settled(services), "every outbox row marked sent")
    finally:
        await fleet.stop()
    sends = [c for c in sandbox.calls("sendMessage") if str(c["params"].get("chat_id")) == str(OLD)]
    assert sends == []  # nothing was tried on the old id
    await assert_delivered_once_in(services, sandbox, new, texts)


async def test_a_row_sent_before_its_move_is_stored_records_the_chat_it_reached(
    services, sandbox
) -> None:
    """The gate follows a move in memory at once and stores it a moment later (a task of
    its own). A row delivered to the supergroup in between is no longer "undelivered",
    so the stored move passes it by: the row must name the chat it reached by itself
    (CI, loaded: a row marked sent with the old id)."""
    from datetime import UTC, datetime

    from piyasa.runtime.migration import move_chat

    bots, chat = await basic_group(services, sandbox)
    new = sandbox.migrate_group(OLD, HUMAN)
    fleet = fleet_on(services, sandbox, receive="off")
    await decide(fleet, bots, chat)
    held = await fleet.store.claim("test-instance", limit=N)
    assert len(held) == N
    for item in held:
        item.tg_chat_id = new  # what Gate.follow does to the items it holds
    await fleet.store.complete(sent=[(it, 100 + it.id, datetime.now(UTC)) for it in held])
    moved = await move_chat(services.sessions, OLD, new)  # the stored move, late
    assert moved.outbox_rows == 0
    assert [(r.state, r.tg_chat_id) for r in await rows(services)] == [("sent", new)] * N
