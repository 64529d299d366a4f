"""The fleet against the Telegram sandbox and the fake OpenAI server: faults included."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from piyasa.db.models import Message
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OpenAIProvider, price_of
from piyasa.sandbox.llm_server import FakeOpenAIServer
from tests.runtime.helpers import namespace, outbox_states, seed, until, with_sandbox


def fleet_for(services, url, limiter_url, provider=None, **overrides) -> Fleet:
    with_sandbox(services, url, limiter_url)
    return Fleet(
        services,
        receive="off",
        provider=provider,
        settings_overrides={"max_msgs_per_min": 6000, **overrides},
        limiter_namespace=namespace(),
    )


async def test_topic_reaches_the_prompt_and_usage_and_cost_are_recorded(services, sandbox):
    llm = FakeOpenAIServer(api_keys=["sk-t"], latency=(0, 0.01))
    url = await llm.start("127.0.0.1", 0)
    try:
        await seed(services, sandbox, bots=2, chats=1, topics=["crypto"])
        fleet = fleet_for(
            services, sandbox.base_url, "", OpenAIProvider("sk-t", url, "gpt-4o-mini")
        )
        await fleet.start()
        try:
            await until(lambda: len(sandbox.sent()) >= 3, 10, "3 messages")
        finally:
            await fleet.stop()
        system = [
            m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "system"
        ]
        assert system and all("Topic: crypto" in s for s in system)
        assert all("not a human" in s for s in system)
        async with services.sessions() as session:
            rows = (await session.scalars(select(Message).where(Message.status == "sent"))).all()
        assert rows
        for m in rows:
            assert m.topic == "crypto" and m.model == "gpt-4o-mini"
            assert m.tokens_in > 0 and m.tokens_out > 0 and m.latency_ms is not None
            assert m.cost_usd == price_of(
                "gpt-4o-mini", m.tokens_in, m.tokens_cached or 0, m.tokens_out, {}
            )
            assert m.cost_usd > Decimal(0)
    finally:
        await llm.stop()


async def test_llm_errors_are_classified_and_the_provider_breaker_opens(services, sandbox):
    llm = FakeOpenAIServer(api_keys=["sk-t"], latency=(0, 0))
    url = await llm.start("127.0.0.1", 0)
    try:
        await seed(services, sandbox, bots=2, chats=1)
        llm.set_failing(500)
        fleet = fleet_for(
            services, sandbox.base_url, "", OpenAIProvider("sk-t", url, "gpt-4o-mini")
        )
        await fleet.start()
        try:
            await until(lambda: fleet.generator.breaker.state == "open", 10, "LLM breaker open")
            calls = len(llm.requests)
            failed = await fleet.store.counts()
            assert failed == {}  # nothing was decided into the outbox
            llm.set_failing(None)
            await until(lambda: len(sandbox.sent()) >= 1, 15, "recovery after the outage")
            assert fleet.generator.breaker.state == "closed"
            assert calls <= 6  # the breaker stopped the hammering
        finally:
            await fleet.stop()
        async with services.sessions() as session:
            kinds = (
                await session.scalars(select(Message.error_class).where(Message.status == "failed"))
            ).all()
        assert kinds and set(kinds) == {"server"}
    finally:
        await llm.stop()


async def test_retry_after_is_honoured_exactly_and_nothing_is_dropped(
    services, sandbox, limiter_url
):
    bots, _chats = await seed(services, sandbox, bots=1, chats=1)
    token = sandbox.world.bots[bots[0].telegram_id].token
    sandbox.inject_error(token=token, method="sendMessage", error_code=429, retry_after=2, count=1)
    fleet = fleet_for(services, sandbox.base_url, limiter_url, max_msgs_per_min=60)
    await fleet.start()
    try:
        await until(lambda: len(sandbox.sent()) >= 1, 10, "the refused message, sent later")
    finally:
        await fleet.stop()
    calls = sandbox.calls("sendMessage")
    refused = [c for c in calls if c["error_code"] == 429]
    ok = [c for c in calls if c["ok"]]
    assert len(refused) == 1 and ok
    assert ok[0]["time"] - refused[0]["time"] >= 2.0  # not one moment before retry_after
    assert ok[0]["params"]["text"] == refused[0]["params"]["text"]  # the same message, not dropped


async def test_a_429_storm_loses_nothing(services, sandbox, limiter_url):
    await seed(services, sandbox, bots=3, chats=2)
    sandbox.inject_error(method="sendMessage", error_code=429, retry_after=1, count=25)
    fleet = fleet_for(services, sandbox.base_url, limiter_url)
    await fleet.start()
    try:
        await until(lambda: len(sandbox.sent()) >= 10, 20, "delivery after the storm")
        await fleet.control.pause()
        await until(lambda: not fleet.gate.inflight, 5, "no send in flight")
    finally:
        await fleet.stop()
    states = await outbox_states(services)
    assert states.get("failed", 0) == 0
    texts = [m["text"] for m in sandbox.sent()]
    async with services.sessions() as session:
        sent = (await session.scalars(select(Message.text).where(Message.status == "sent"))).all()
    assert sorted(texts) == sorted(sent)  # each delivered once, each delivery recorded
    assert sum(states.values()) == len(sent) + states.get("queued", 0) + states.get("sending", 0)


async def test_bot_breaker_opens_on_server_errors_and_closes_on_success(services, sandbox):
    bots, _ = await seed(services, sandbox, bots=2, chats=1)
    token = sandbox.world.bots[bots[0].telegram_id].token
    sandbox.inject_error(
        token=token, method="sendMessage", error_code=500, retry_after=None, count=5
    )
    fleet = fleet_for(services, sandbox.base_url, "")
    fleet.bot_breakers.defaults["reset_timeout"] = 0.5
    await fleet.start()
    try:
        await until(
            lambda: fleet.bot_breakers.get(bots[0].id).opened_count >= 1, 15, "breaker opened"
        )
        await until(
            lambda: any(m["from"]["id"] == bots[0].telegram_id for m in sandbox.sent()),
            20,
            "bot back",
        )
        await until(
            lambda: fleet.bot_breakers.get(bots[0].id).state == "closed", 5, "breaker closed"
        )
        snap = fleet.snapshot()
        assert snap["workers"]["total"] >= snap["workers"]["active"] > 0
        assert any("breaker" in e["error"] for e in snap["recent_errors"])
    finally:
        await fleet.stop()
    assert (await outbox_states(services)).get("failed", 0) == 0
