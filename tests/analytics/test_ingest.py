"""Messages decided, sent and failed through the runtime's own outbox reach the analytics
within a round of the background job, each counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from piyasa.analytics.background import start_rollups
from piyasa.analytics.queries import Analytics, Period
from piyasa.db.models import Bot, Chat
from piyasa.runtime.llm import price_of
from piyasa.runtime.outbox import Draft, OutboxStore
from tests.waiting import until


async def test_outbox_outcomes_reach_analytics(services) -> None:  # type: ignore[no-untyped-def]
    async with services.sessions() as s, s.begin():
        s.add(Bot(id=1, token_encrypted="x", token_fingerprint="f1", display_name="Ayşe"))
        s.add(Chat(id=1, telegram_id=-1001, title="BIST sohbet"))
    store = OutboxStore(services.sessions, services.engine.dialect.name)
    stop = await start_rollups(services, every_s=0.05)
    analytics = Analytics(services.sessions)
    try:
        cost = price_of("gpt-4o-mini", 1000, 400, 100, {})
        drafts = [
            Draft(
                idempotency_key=f"d{i}",
                bot_id=1,
                chat_id=1,
                tg_chat_id=-1001,
                is_group=True,
                text="Merhaba",
                topic="bist",
                model="gpt-4o-mini",
                latency_ms=1000 + 100 * i,
                tokens_in=1000,
                tokens_out=100,
                tokens_cached=400,
                cost_usd=cost,
            )
            for i in range(4)
        ]
        items = await store.enqueue(drafts)
        await store.enqueue(drafts)  # a retried decision inserts nothing

        async def figures():  # type: ignore[no-untyped-def]
            return (await analytics.overview(Period.parse("24h", datetime.now(UTC)))).figures

        assert (await until(lambda: _when(figures, 4), "4 decided messages")).sent == 0
        now = datetime.now(UTC)
        await store.complete(
            sent=[(items[0], 11, now), (items[1], 12, now)], failed=[(items[2], "403 Forbidden")]
        )
        await store.record_failed_generation(1, 1, "fx", "gpt-4o-mini", "quota", "429")
        f = await until(lambda: _when(figures, 5, sent=2), "outcomes counted")
        assert (f.messages, f.sent, f.failed, f.rate_limited) == (5, 2, 2, 1)
        assert f.success_rate == 0.5
        assert f.cost_usd == 4 * cost and cost < price_of("gpt-4o-mini", 1000, 0, 100, {})
        assert (f.tokens_in, f.tokens_cached, f.tokens_out) == (4000, 1600, 400)
        assert f.min_ms == 1000 and f.avg_ms == 1150
        detail = await analytics.bot_detail(1, Period.parse("24h", datetime.now(UTC)))
        assert {e.error_class: e.count for e in detail.errors} == {"telegram": 1, "quota": 1}
        assert [(t.name, t.messages) for t in detail.topics] == [("bist", 4), ("fx", 1)]
        assert detail.chats[0].name == "BIST sohbet" and detail.row.name == "Ayşe"
        assert detail.cost_per_message == (4 * cost / 5).quantize(Decimal("0.000001"))
    finally:
        await stop()


async def _when(figures, messages: int, sent: int = 0):  # type: ignore[no-untyped-def]
    f = await figures()
    return f if f.messages == messages and f.sent == sent else None
