"""The fleet's producers end to end into the notification store (both databases): a real
fleet in-process against the Telegram sandbox (and the local OpenAI-compatible server),
its events on the bus of a real notification service.

Each fault comes from the far end as the real service words it: the sandbox answers 403
"bot was kicked", 401 for a revoked token, 400 with ``migrate_to_chat_id``; the LLM
server 401 ``invalid_api_key`` and 429 ``insufficient_quota``. The fleet runs on the
sandbox's timeline (``FleetClock``): nothing waits out a cool-down, every wait is a
condition with a ceiling that only catches hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatops import i18n
from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.events import bus_of
from piyasa.admin.notify.store import Item
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OfflineProvider, OpenAIProvider
from piyasa.sandbox.llm_server import FakeOpenAIServer
from tests.runtime.helpers import FleetClock, drive, namespace, seed, with_sandbox
from tests.waiting import PatientSandbox, until

QUOTA = "You exceeded your current quota, please check your plan and billing details."


@pytest.fixture
def timeline() -> FleetClock:
    return FleetClock()


@pytest.fixture
async def sandbox(timeline: FleetClock) -> AsyncIterator[PatientSandbox]:
    sb = PatientSandbox(clock=timeline)
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeOpenAIServer, str]]:
    server = FakeOpenAIServer(api_keys=["sk-t"], latency=(0, 0))
    url = await server.start("127.0.0.1", 0)
    yield server, url
    await server.stop()


def fleet_on(services: Any, sandbox: Any, timeline: FleetClock, **kw: Any) -> Fleet:
    with_sandbox(services, sandbox.base_url)
    return Fleet(
        services,
        receive="off",
        provider=kw.pop("provider", None) or OfflineProvider(seed=3),
        settings_overrides={"max_msgs_per_min": kw.pop("per_min", 6000)},
        limiter_namespace=namespace(),
        clock=timeline,
        wall=timeline.wall,
        **kw,
    )


async def incident(
    svc: Any, fingerprint: str, state: str = "open", fleet: Fleet | None = None
) -> Item:
    """The notification of ``fingerprint`` once it is in ``state`` (the service stores
    what the bus handed it on each tick); with ``fleet``, its clock moves half a second a
    round meanwhile (``drive``), so Telegram's limits let the chatter go on."""

    async def found() -> Item | None:
        await svc.tick()
        center = await notify_store.center(svc.services, None, svc.now(), state="all", limit=100)
        hits = [i for i in center.items if i.fingerprint == fingerprint and i.state == state]
        return hits[0] if hits else None

    what = f"{fingerprint} {state} in the store"
    if fleet is not None:
        return await drive(fleet.clock, fleet, found, 0.5, what)
    return await until(found, what)


def title(item: Item, lang: str = "en") -> str:
    return i18n.t(lang, item.title_key, **item.params)


async def test_a_kicked_bot_is_a_critical_incident_its_re_enable_resolves(
    notify, services, sandbox, timeline
) -> None:
    svc, _sender = notify
    bots, chats = await seed(services, sandbox, bots=2, chats=1)
    fleet = fleet_on(services, sandbox, timeline)
    await fleet.start()
    try:
        group = chats[0].telegram_id
        await until(lambda: sandbox.sent(chat_id=group, bot_id=bots[0].telegram_id), "chatter")
        sandbox.remove_member(group, bots[0].telegram_id)  # the next send: 403 kicked
        fp = f"fleet:disabled:bot-{bots[0].id}/chat-{chats[0].id}"
        item = await incident(svc, fp)
        assert (item.severity, item.labels.get("bot")) == ("critical", str(bots[0].id))
        assert "kicked" in item.params["detail"] and "Re-enable it" in item.params["detail"]
        assert title(item).startswith("Bot stopped: bot @fleet0_bot disabled in chat")
        # Telegram's refusals are failed messages; those held back by the disable are not
        refused = lambda: sum(  # noqa: E731
            1 for c in sandbox.calls("sendMessage") if c["error_code"] == 403
        )
        await until(lambda: refused() and fleet.error_rate.counts()[0] == refused(), "403s counted")
        sandbox.add_member(group, bots[0].telegram_id)
        assert await fleet.control.enable(bots[0].id, chats[0].id, actor="ayse")
        await incident(svc, fp, "resolved")
    finally:
        await fleet.stop()


async def test_a_revoked_token_is_a_critical_incident_of_the_whole_bot(
    notify, services, sandbox, timeline
) -> None:
    svc, _sender = notify
    bots, _chats = await seed(services, sandbox, bots=2, chats=1)
    fleet = fleet_on(services, sandbox, timeline)
    await fleet.start()
    try:
        await until(lambda: sandbox.sent(bot_id=bots[0].telegram_id), "chatter")
        sandbox.revoke_token(sandbox.world.bots[bots[0].telegram_id].token)  # 401
        item = await incident(svc, f"fleet:disabled:bot-{bots[0].id}")
        assert (item.severity, item.labels["bot"]) == ("critical", str(bots[0].id))
        assert "401 Unauthorized" in item.params["detail"]
    finally:
        await fleet.stop()


async def test_a_chat_migrated_to_a_supergroup_is_an_info_notification(
    notify, services, sandbox, timeline
) -> None:
    from piyasa.db.models import Chat

    svc, _sender = notify
    old, human = -5100000001, 910001
    bots, _ = await seed(services, sandbox, bots=2, chats=0)
    sandbox.add_user(human, "Ayşe", "ayse")
    sandbox.add_group(old, "Borsa Sohbet", members=[b.telegram_id for b in bots], supergroup=False)
    sandbox.add_member(old, human)
    async with services.sessions() as session, session.begin():
        chat = Chat(telegram_id=old, title="Borsa Sohbet", kind="group", topics=["bist"])
        session.add(chat)
    new = sandbox.migrate_group(old, human)  # a send to the old id: 400 migrate_to_chat_id
    fleet = fleet_on(services, sandbox, timeline)
    await fleet.start()
    try:
        item = await incident(svc, f"fleet:migrated:chat-{chat.id}")
        assert item.severity == "info"
        assert f"became supergroup {new} (was {old}" in item.params["detail"]
        await until(lambda: sandbox.sent(chat_id=new), "the fleet follows it")
    finally:
        await fleet.stop()


async def test_llm_auth_error_is_critical(notify, services, sandbox, timeline, llm) -> None:
    svc, _sender = notify
    _server, url = llm
    await seed(services, sandbox, bots=1, chats=1)
    provider = OpenAIProvider("sk-wrong", url, "gpt-4o-mini", timeout=5.0)  # 401
    fleet = fleet_on(services, sandbox, timeline, provider=provider)
    await fleet.start()
    try:
        item = await incident(svc, "llm:provider")
        assert (item.severity, item.params["kind"]) == ("critical", "auth")
        assert (
            "invalid_api_key" in item.params["error"]
            or "Incorrect API key" in (item.params["error"])
        )
        assert "sk-wrong" not in item.params["error"]  # never the whole secret
        assert title(item, "tr") == "LLM auth hatası"
    finally:
        await fleet.stop()


async def test_llm_quota_error_is_critical_until_a_call_succeeds(
    notify, services, sandbox, timeline, llm
) -> None:
    svc, _sender = notify
    server, url = llm
    await seed(services, sandbox, bots=1, chats=1)
    server.set_failing(429, code="insufficient_quota", message=QUOTA)
    provider = OpenAIProvider("sk-t", url, "gpt-4o-mini", timeout=5.0)
    fleet = fleet_on(services, sandbox, timeline, provider=provider)
    await fleet.start()
    try:
        item = await incident(svc, "llm:provider")
        assert (item.severity, item.params["kind"]) == ("critical", "quota")
        assert "quota" in item.params["error"]
        server.set_failing(None)  # billing fixed: the next call (a generation or the
        # fleet's own probe, once the breaker's cool-down is over) succeeds
        timeline.advance(10.0)
        await incident(svc, "llm:provider", "resolved")
    finally:
        await fleet.stop()


async def test_first_totp_enrolment_is_an_info_security_event(notify, services) -> None:
    import pyotp

    from piyasa.admin import users
    from piyasa.admin.users import Actor

    svc, _sender = notify
    info = await users.add_user(services, "mert", "operator")
    seed_, _uri = await users.mfa_begin(services, info.id)
    assert not await users.mfa_confirm(services, Actor("mert"), info.id, "000000")
    assert await users.mfa_confirm(services, Actor("mert"), info.id, pyotp.TOTP(seed_).now())
    item = await incident(svc, "security:totp_enrolled:mert")
    assert (item.severity, item.labels["user"], item.count) == ("info", "mert", 1)
    assert item.params == {"user": "mert", "actor": "mert"}
    assert title(item) == "mert enrolled two-factor authentication"


async def test_a_crash_loop_is_one_incident_resolved_once_the_worker_runs_stably(
    notify, services, sandbox, timeline
) -> None:
    """A supervised fleet worker crashes three times in a row (one incident, count 3),
    then runs: after the supervisor's ``stable_s`` the incident resolves."""
    svc, _sender = notify
    fleet = fleet_on(
        services, sandbox, timeline, supervisor_backoff=(0.01, 0.02), supervisor_stable_s=0.2
    )
    told: list[tuple[str, bool]] = []
    bus_of(services.extras).subscribe(lambda e: told.append((e.fingerprint, e.resolved)))
    crashes = 0

    async def flaky() -> None:
        nonlocal crashes
        if crashes < 3:
            crashes += 1
            raise ConnectionError(f"feed dropped ({crashes})")
        await asyncio.Event().wait()  # runs until stopped

    fleet.supervisor.add("feed", flaky)
    try:
        item = await incident(svc, "fleet:crash:feed", "resolved")
        assert (item.severity, item.count) == ("warning", 3)
        assert title(item) == "Worker feed crashed"
        assert "ConnectionError: feed dropped (3)" in item.params["detail"]
        crash = ("fleet:crash:feed", False)
        assert told == [crash, crash, crash, ("fleet:crash:feed", True)]
    finally:
        await fleet.supervisor.stop()


async def test_error_rate_over_five_percent_warns_and_resolves_back_under_four(
    notify, services, sandbox, timeline, llm
) -> None:
    """LLM errors are failed messages: with 20+ attempts in the window and more than 5 %
    of them failed the fleet warns; successes bring it under 4 % and it resolves."""
    svc, _sender = notify
    server, url = llm
    await seed(services, sandbox, bots=2, chats=10)
    provider = OpenAIProvider("sk-t", url, "gpt-4o-mini", timeout=5.0)
    fleet = fleet_on(services, sandbox, timeline, provider=provider)
    await fleet.start()
    try:
        # four calls fail (one may be the fleet's own probe, not a message): at least
        # three failed messages, 15 % of the first 20, fewer than the breaker's five
        server.inject(500, count=4)
        item = await incident(svc, "fleet:error_rate", fleet=fleet)
        failed, attempts = item.params["failed"], item.params["attempts"]
        assert item.severity == "warning" and attempts >= 20 and failed / attempts > 0.05
        assert item.params["minutes"] == "10"
        assert "messages failed over 10 min" in title(item)
        item = await incident(svc, "fleet:error_rate", "resolved", fleet)
        assert item.count == 1  # hysteresis: one incident while it hovered
        assert fleet.snapshot()["error_rate"]["firing"] is False
    finally:
        await fleet.stop()
