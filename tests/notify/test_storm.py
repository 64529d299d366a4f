"""An alert storm, on both databases: events stored in batches keep every count and every
rule (flapping, inhibition), a critical event is stored and told ahead of a backlog, and a
slow far end holds back neither the other destinations nor the storing of events.
(The figures under load are `piyasa bench alerts`'s, in docs/benchmarks.md.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from sqlalchemy import select

from piyasa.admin.notify import emit
from piyasa.admin.notify.delivering import critical_first
from piyasa.admin.notify.destinations import add_channel
from piyasa.admin.notify.service import INGEST_BATCH
from piyasa.db.notify_models import Notification
from tests.notify.conftest import ADMIN_CHAT, FakeChannel, critical, resolved, warning
from tests.waiting import until


async def _incidents(svc) -> dict[str, list[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    async with svc.services.sessions() as session:
        rows = await session.scalars(select(Notification).order_by(Notification.id))
        out: dict[str, list[tuple[int, str]]] = {}
        for r in rows:
            out.setdefault(r.fingerprint, []).append((r.count, r.state))
        return out


async def test_a_storm_stored_in_batches_keeps_counts_flapping_and_inhibition(notify) -> None:
    svc, _sender = notify
    flap = warning("redis")
    events = []
    for i in range(3 * INGEST_BATCH):  # several batches; the outage starts in the first
        events.append(warning(f"bot-{i % 7}", source="fleet", depends="database"))
        if i == 10:
            events.append(critical("database"))
        events.append(flap if i % 2 == 0 else resolved(flap))
    for e in events:
        assert emit(svc.services.extras, e)
    await svc.tick()
    assert not svc.inbox
    got = await _incidents(svc)
    # every firing event counted once, in one incident per fingerprint
    assert sum(c for rows in got.values() for c, _ in rows) == sum(
        1 for e in events if not e.resolved
    )
    assert got["health:redis"] == [(3 * INGEST_BATCH // 2, "resolved")]  # flapping: one
    assert got["health:database"] == [(1, "open")]
    for i in range(7):  # the outage, stored first (critical jumps the queue), mutes them
        assert got[f"fleet:bot-{i}"][0][1] == "silenced"


async def test_a_critical_event_is_stored_and_told_ahead_of_a_backlog(notify) -> None:
    svc, sender = notify
    for i in range(4 * INGEST_BATCH):
        emit(svc.services.extras, warning(f"bot-{i}", source="fleet"))
    emit(svc.services.extras, critical("database"))
    await svc.tick(wait=False)  # one tick of the background loop: a batch at most
    await until(lambda: sender.posts, "the critical notice")
    assert [[i.fingerprint for i in items] for _c, items, _l, _k in sender.posts] == [
        ["health:database"]
    ]
    assert len(svc.inbox) == 4 * INGEST_BATCH  # the warnings wait for the next ticks
    await svc.tick()
    assert not svc.inbox


async def test_one_incidents_events_keep_their_order(notify) -> None:
    svc, _sender = notify
    db = critical("database")
    for e in (db, resolved(db), db):  # the recovery is not overtaken by the new alert
        emit(svc.services.extras, e)
    await svc.drain()
    assert not svc.inbox
    assert (await _incidents(svc))["health:database"] == [(2, "open")]


async def test_a_slow_destination_holds_back_neither_others_nor_storing(notify) -> None:
    svc, sender = notify
    release = asyncio.Event()
    real = svc.senders["telegram"]

    async def slow(chat, items, lang, kind):  # type: ignore[no-untyped-def]
        await release.wait()  # Telegram answers retry_after, say
        await real(chat, items, lang, kind)

    svc.add_sender("telegram", slow)
    await add_channel(svc.services, "ops", "webhook", {"url": "http://x"}, FakeChannel)
    emit(svc.services.extras, critical("database"))
    await svc.tick(wait=False)
    await until(lambda: FakeChannel.sent.get("ops"), "the channel's notice")
    assert sender.posts == []  # Telegram still sending
    emit(svc.services.extras, warning("disk"))
    await svc.tick(wait=False)  # not held back by the send under way
    assert "health:disk" in await _incidents(svc)
    release.set()
    await until(lambda: sender.posts, "the Telegram notice")
    assert sender.posts[0][0] == str(ADMIN_CHAT)
    await until(lambda: not svc._sending, "the sends finished")


def test_critical_notices_go_first_but_never_past_their_own_incident() -> None:
    def row(i: int, ids: list[int]) -> SimpleNamespace:
        return SimpleNamespace(id=i, notification_ids=ids)

    def it(severity: str, state: str = "open") -> SimpleNamespace:
        return SimpleNamespace(severity=severity, state=state)

    items = {1: it("warning"), 2: it("critical"), 3: it("critical"), 4: it("critical", "resolved")}
    rows = [row(10, [1]), row(11, [2]), row(12, [1, 3]), row(13, [3]), row(14, [4])]
    ordered = critical_first(rows, items)  # type: ignore[arg-type]
    # 11 jumps ahead; 12 has a critical but 13 names 3 after 12 did: 13 stays behind
    assert [r.id for r in ordered] == [11, 10, 12, 13, 14]
