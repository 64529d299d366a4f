"""The fleet against the Telegram sandbox and the fake OpenAI server: faults included."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from piyasa.db.models import Message
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OpenAIProvider, price_of
from piyasa.sandbox.llm_server import FakeOpenAIServer
from tests.runtime.helpers import (
    drive,
    gate_passes,
    namespace,
    outbox_states,
    seed,
    until,
    with_sandbox,
)


def fleet_for(services, url, limiter_url, provider=None, clock=None, **overrides) -> Fleet:
    with_sandbox(services, url, limiter_url)
    return Fleet(
        services,
        receive="off",
        provider=provider,
        settings_overrides={"max_msgs_per_min": 6000, **overrides},
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall if clock is not None else None,
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
            await until(lambda: len(sandbox.sent()) >= 3, "3 messages")
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


async def test_llm_errors_are_classified_and_the_provider_breaker_opens(services, sandbox, clock):
    llm = FakeOpenAIServer(api_keys=["sk-t"], latency=(0, 0))
    url = await llm.start("127.0.0.1", 0)
    try:
        await seed(services, sandbox, bots=2, chats=1)
        llm.set_failing(500)
        fleet = fleet_for(
            services, sandbox.base_url, "", OpenAIProvider("sk-t", url, "gpt-4o-mini"), clock
        )
        clock.hold()  # the cool-down left is read below: only the test moves time
        await fleet.start()
        try:
            # calls sent before the breaker opened (a generation, the health probe) may still be
            # on their way: wait them out
            gen = fleet.generator
            opened = lambda: (  # noqa: E731
                gen.breaker.state == "open" and not gen.in_flight and not gen.outcomes._probing
            )
            await drive(clock, fleet, opened, 0.5, "open")
            # generations ask for 300 tokens; the fleet's health probes for 1
            generations = len([r for r in llm.requests if r.get("max_tokens") != 1])
            calls = len(llm.requests)
            failed = await fleet.store.counts()
            assert failed == {}  # nothing was decided into the outbox
            await gate_passes(fleet)
            assert len(llm.requests) == calls  # open: no call while the cool-down runs
            llm.set_failing(None)
            clock.advance(4.0)  # not yet: the cool-down is 5 s
            assert fleet.generator.breaker.wait() > 0, "the LLM breaker closed before 5 s"
            await drive(clock, fleet, lambda: len(sandbox.sent()) >= 1, 0.5, "recovery")
            assert fleet.generator.breaker.state == "closed"
            assert generations <= 6  # the breaker stopped the hammering
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
    services, sandbox, limiter_url, clock
):
    bots, _chats = await seed(services, sandbox, bots=1, chats=1)
    token = sandbox.world.bots[bots[0].telegram_id].token
    sandbox.inject_error(token=token, method="sendMessage", error_code=429, retry_after=2, count=1)
    fleet = fleet_for(services, sandbox.base_url, limiter_url, clock=clock, max_msgs_per_min=60)
    clock.hold()  # 1.2 s after the 429 must mean 1.2 s, however slow this machine is
    await fleet.start()
    try:
        refused = lambda: [c for c in sandbox.calls("sendMessage") if c["error_code"] == 429]  # noqa: E731
        await drive(clock, fleet, refused, 0.1, "the 429")
        clock.advance(1.2)  # the bucket is full again, but Telegram said 2 s
        await gate_passes(fleet)
        assert not sandbox.sent(), (
            [(c["time"], c["error_code"]) for c in sandbox.calls("sendMessage")],
            clock.now(),
        )
        await drive(clock, fleet, lambda: sandbox.sent(), 0.1, "the refused message")
    finally:
        await fleet.stop()
    calls = sandbox.calls("sendMessage")
    refused = [c for c in calls if c["error_code"] == 429]
    ok = [c for c in calls if c["ok"]]
    assert len(refused) == 1 and ok
    assert ok[0]["time"] - refused[0]["time"] >= 2.0  # not one moment before retry_after
    assert ok[0]["params"]["text"] == refused[0]["params"]["text"]  # the same message, not dropped


async def test_a_429_storm_loses_nothing(services, sandbox, limiter_url, clock):
    await seed(services, sandbox, bots=3, chats=2)
    sandbox.inject_error(method="sendMessage", error_code=429, retry_after=1, count=25)
    fleet = fleet_for(services, sandbox.base_url, limiter_url, clock=clock)
    await fleet.start()
    try:
        await drive(clock, fleet, lambda: len(sandbox.sent()) >= 10, 0.5, "after the storm")
        assert len([c for c in sandbox.calls("sendMessage") if c["error_code"] == 429]) == 25
        await fleet.control.pause()
        await until(lambda: not fleet.gate.inflight, "no send in flight")
    finally:
        await fleet.stop()
    states = await outbox_states(services)
    assert states.get("failed", 0) == 0
    texts = [m["text"] for m in sandbox.sent()]
    async with services.sessions() as session:
        sent = (await session.scalars(select(Message.text).where(Message.status == "sent"))).all()
    assert sorted(texts) == sorted(sent)  # each delivered once, each delivery recorded
    assert sum(states.values()) == len(sent) + states.get("queued", 0) + states.get("sending", 0)


async def test_bot_breaker_opens_on_server_errors_and_closes_on_success(services, sandbox, clock):
    bots, _ = await seed(services, sandbox, bots=2, chats=1)
    token = sandbox.world.bots[bots[0].telegram_id].token
    sandbox.inject_error(
        token=token, method="sendMessage", error_code=500, retry_after=None, count=5
    )
    fleet = fleet_for(services, sandbox.base_url, "", clock=clock)
    clock.hold()  # the cool-down left is read below: only the test moves time
    await fleet.start()
    try:
        breaker = fleet.bot_breakers.get(bots[0].id)
        await drive(clock, fleet, lambda: breaker.opened_count >= 1, 0.5, "breaker opened")
        assert breaker.state == "open" and breaker.wait() > 4  # 5 s cool-down
        calls = len(sandbox.calls("sendMessage", bot_id=bots[0].telegram_id))
        await gate_passes(fleet)
        assert len(sandbox.calls("sendMessage", bot_id=bots[0].telegram_id)) == calls
        await drive(
            clock,
            fleet,
            lambda: any(m["from"]["id"] == bots[0].telegram_id for m in sandbox.sent()),
            0.5,
            "bot back",
        )
        await until(lambda: fleet.bot_breakers.get(bots[0].id).state == "closed", "breaker closed")
        snap = fleet.snapshot()
        assert snap["workers"]["total"] >= snap["workers"]["active"] > 0
        assert any("breaker" in e["error"] for e in snap["recent_errors"])
    finally:
        await fleet.stop()
    assert (await outbox_states(services)).get("failed", 0) == 0
