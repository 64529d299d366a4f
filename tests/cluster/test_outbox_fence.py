"""The outbox across instances: a gate claims only the rows of the bots its instance
owns, and on PostgreSQL claimed -> sending is fenced by the bot's lease on the database's
clock, so an owner whose lease went to another instance cannot send, whatever it still
believes locally. Rows of a bot handed over go back to the queue for the next owner."""

from __future__ import annotations

import pytest

from piyasa.cluster.lease import SqlLease
from piyasa.cluster.spread import lease_name
from piyasa.db.models import Bot, Chat
from piyasa.runtime.outbox import Draft, OutboxStore


def _draft(key: str, bot_id: int) -> Draft:
    return Draft(
        idempotency_key=key, bot_id=bot_id, chat_id=1, tg_chat_id=-1001, is_group=True, text="m"
    )


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # bot leases as rows: PG only
async def test_claim_is_per_owned_bot_and_sending_is_fenced(services) -> None:  # type: ignore[no-untyped-def]
    async with services.sessions() as s, s.begin():
        s.add(Bot(id=1, token_encrypted="x", token_fingerprint="f1", display_name="one"))
        s.add(Bot(id=2, token_encrypted="y", token_fingerprint="f2", display_name="two"))
        s.add(Chat(id=1, telegram_id=-1001, title="g"))
    lease = SqlLease(services.engine)
    a = OutboxStore(services.sessions, "postgresql")
    b = OutboxStore(services.sessions, "postgresql")
    a.owned, a.fence = (lambda: {1}), "A"
    b.owned, b.fence = (lambda: {2}), "B"
    assert set(await lease.hold_many("A", [], [lease_name(1)], 1, 30.0)) >= {lease_name(1)}
    assert set(await lease.hold_many("B", [], [lease_name(2)], 1, 30.0)) >= {lease_name(2)}
    await a.enqueue([_draft("k1", 1), _draft("k2", 2), _draft("k3", 1)])

    mine = await a.claim("A", 10)
    assert sorted(i.bot_id for i in mine) == [1, 1]  # never bot 2's row
    theirs = await b.claim("B", 10)
    assert [i.bot_id for i in theirs] == [2]
    assert await a.mark_sending("A", [mine[0].id]) == {mine[0].id}

    # A's bot 1 lease goes to B (A stalled past its expiry); A still thinks it owns bot 1
    await lease.release_many("A", [lease_name(1)])
    assert lease_name(1) in await lease.hold_many("B", [], [lease_name(1)], 1, 30.0)
    assert await a.mark_sending("A", [mine[1].id]) == set()  # a stale owner is refused

    # A hands its claimed rows of bot 1 back; B (the owner now) claims and may send them
    assert await a.release_bots("A", [1]) == 1
    b.owned = lambda: {1, 2}
    again = await b.claim("B", 10, exclude=[i.id for i in theirs])
    assert [i.id for i in again] == [mine[1].id]
    assert await b.mark_sending("B", [mine[1].id]) == {mine[1].id}


async def test_one_instance_claims_every_bot(services) -> None:  # type: ignore[no-untyped-def]
    """No spreading (SQLite, or a local lease): ``owned`` is None and nothing changes."""
    async with services.sessions() as s, s.begin():
        s.add(Bot(id=1, token_encrypted="x", token_fingerprint="f1", display_name="one"))
        s.add(Bot(id=2, token_encrypted="y", token_fingerprint="f2", display_name="two"))
        s.add(Chat(id=1, telegram_id=-1001, title="g"))
    store = OutboxStore(services.sessions, services.engine.dialect.name)
    await store.enqueue([_draft("k1", 1), _draft("k2", 2)])
    items = await store.claim("me", 10)
    assert sorted(i.bot_id for i in items) == [1, 2]
    assert await store.mark_sending("me", [i.id for i in items]) == {i.id for i in items}
