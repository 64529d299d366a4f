from __future__ import annotations

import itertools

from piyasa.runtime.fleet import Fleet
from tests.runtime.helpers import namespace, outbox_states, seed, until, with_sandbox


async def test_fleet_chats_in_order_without_429(services, sandbox, limiter_url):
    _bots, chats = await seed(services, sandbox, bots=3, chats=2)
    with_sandbox(services, sandbox.base_url, limiter_url)
    fleet = Fleet(
        services,
        receive="off",
        settings_overrides={"max_msgs_per_min": 6000},
        limiter_namespace=namespace(),
    )
    await fleet.start()
    try:
        await until(lambda: len(sandbox.sent()) >= 12, "12 messages delivered")
    finally:
        await fleet.stop()
    for chat in chats:
        senders = [m["from"]["id"] for m in sandbox.sent(chat_id=chat.telegram_id)]
        assert all(a != b for a, b in itertools.pairwise(senders)), senders
    assert not [c for c in sandbox.calls("sendMessage") if c["error_code"] == 429]
    states = await outbox_states(services)
    assert states.get("sent", 0) == len(sandbox.sent())
    assert set(states) <= {"sent", "queued"}
