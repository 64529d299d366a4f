"""Issue 11 item 10: only the setup code itself may void itself; wrong codes are throttled
per user and per chat, with the minutes to wait, and audited. Service tests run on both
databases (``services``); the chat tests drive `piyasa up` on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from piyasa.admin import audit
from piyasa.admin.setup import codes
from piyasa.admin.users import add_user
from piyasa.services import Services
from tests.setup.conftest import ADMIN_GROUP, World
from tests.setup.helpers import NEWCOMER, TURKISH
from tests.waiting import until

WRONG = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"  # the right shape, not the code
GROUP_ID = -1007200000777


async def _code(services: Services) -> str:
    info = await add_user(services, "boss", "admin")
    return await codes.create_setup_code(services, info.id)


async def test_anything_else_typed_in_a_group_leaves_the_code_working(services: Services) -> None:
    code = await _code(services)
    for text in ("anything", WRONG, code[:9]):
        seen = await codes.burn_seen_code(services, text, 111, GROUP_ID)
        assert seen.reason == "invalid"
    assert await codes.pending_code(services)
    linked = await codes.redeem_setup_code(services, code, 222)
    assert linked.ok and linked.username == "boss"


async def test_the_code_typed_in_a_group_voids_itself(services: Services) -> None:
    code = await _code(services)
    assert (await codes.burn_seen_code(services, code.lower(), 111, GROUP_ID)).reason == "burned"
    assert not await codes.pending_code(services)
    assert (await codes.redeem_setup_code(services, code, 111)).reason == "invalid"


async def test_wrong_codes_are_throttled_per_chat_and_per_user(services: Services) -> None:
    code = await _code(services)
    t0 = time.time()
    # ten different people in one group: the chat reaches the limit
    for person in range(codes.MAX_FAILURES):
        assert (
            await codes.burn_seen_code(services, WRONG, 500 + person, GROUP_ID, now=t0)
        ).reason == "invalid"
    stopped = await codes.burn_seen_code(services, WRONG, 999, GROUP_ID, now=t0 + 1800)
    assert stopped.reason == "throttled" and stopped.retry_in_min == 30
    # each of them may still try in their own private chat (only one failure there)
    assert (await codes.redeem_setup_code(services, WRONG, 500)).reason == "invalid"
    # one person trying in their private chat reaches their own limit, chat or not
    for _ in range(codes.MAX_FAILURES):
        await codes.redeem_setup_code(services, WRONG, 777, now=t0)
    blocked = await codes.redeem_setup_code(services, code, 777, now=t0 + 60)
    assert (blocked.ok, blocked.reason, blocked.retry_in_min) == (False, "throttled", 59)
    assert await codes.pending_code(services)  # a throttled try uses nothing up
    # throttled or not, the live code typed in the noisy group still dies
    assert (await codes.burn_seen_code(services, code, 999, GROUP_ID)).reason == "burned"


# --- in chat, through the whole pipeline -------------------------------------------------


async def _group_says(world: World, user: int, text: str) -> str:
    sb = world.box.sb
    mark = sb.mark()
    await sb.send_user_message(user, ADMIN_GROUP, text)
    reply = await sb.wait_for_message(
        chat_id=ADMIN_GROUP, bot_id=world.box.admin_bot_id, after=mark
    )
    return reply["text"]


@pytest.mark.e2e
async def test_a_group_member_cannot_void_the_setup_code(world_on_both: World) -> None:
    world = world_on_both
    code = await world.admin_with_code("boss")
    text = await _group_says(world, NEWCOMER, "/setup anything")
    assert "only take it in a private chat" in text and "no longer works" not in text
    text = await _group_says(world, TURKISH, f"/setup {WRONG}")
    assert "özel sohbette" in text and "artık çalışmıyor" not in text
    reply = await world.person(NEWCOMER).say(f"/setup {code}")
    assert "Linked: this Telegram account is now admin boss" in reply["text"]


@pytest.mark.e2e
async def test_too_many_wrong_codes_say_how_long_to_wait_and_are_audited(
    world_on_both: World,
) -> None:
    world = world_on_both
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    for _ in range(codes.MAX_FAILURES):
        reply = await me.say(f"/setup {WRONG}")
        assert "not valid" in reply["text"]
    reply = await me.say(f"/setup {code}")  # even the right code waits now
    assert "Too many wrong setup codes" in reply["text"] and "try again in 60 min" in reply["text"]
    assert "Linked" not in reply["text"]

    async def outcomes() -> list[str]:
        rows = await audit.recent(world.services, 50, action="setup")
        return (
            [str(r.params.get("outcome")) for r in rows] if len(rows) > codes.MAX_FAILURES else []
        )

    found = await until(outcomes, "an audit row for every /setup, the throttled one too")
    assert found.count("throttled") == 1 and found.count("invalid") == codes.MAX_FAILURES
    rows = await audit.recent(world.services, 50, action="setup")
    assert all(code not in str(r.params) for r in rows)
    # the group refuses just the same, in Turkish for Ayşe, and the code still works later
    text = await _group_says(world, TURKISH, f"/setup {WRONG}")
    assert "özel sohbette" in text
    assert await codes.pending_code(world.services)


@pytest.mark.e2e
async def test_health_warns_when_alerts_have_no_destination(world: World) -> None:
    """Issue 12 item 8: with no admin chat and no Slack alert channel, /health says alerts
    go nowhere; with the admin group configured it does not."""
    import dataclasses

    await add_user(world.services, "boss", "admin", telegram_id=NEWCOMER)
    me = world.person(NEWCOMER)
    reply = await me.say("/health")
    assert "Alerts have no destination" not in reply["text"]
    settings = world.services.settings
    world.services.settings = dataclasses.replace(settings, admin_chat_ids=())
    reply = await me.say("/health")
    assert (
        "Alerts have no destination" in reply["text"] and "PIYASA_ADMIN_CHAT_IDS" in reply["text"]
    )
