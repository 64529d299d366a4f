"""The `/alerts` center's buttons, pressed for real on Telegram (sandbox) and Slack (local
fake), on both databases: Snooze, Resolve, Silence, Mark all read and the fix action of a
notice each do what they say; a stale, forged or someone else's button changes nothing and
says why. Time is the notification service's injected clock, moved by hand, never a sleep."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from chatops import i18n
from chatops.alert_views import KEEP
from piyasa.admin.notify import emit
from piyasa.admin.notify import store as notify_store
from tests.chatops.conftest import slack_server  # noqa: F401
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, audit_count, next_audit, wait_answer
from tests.notify import center_world
from tests.notify.center_world import (
    SURFACES,
    center,
    counts,
    fire,
    incident,
    press,
    slack_press,
    slack_value,
    text_of,
    tg_notices,
)
from tests.notify.conftest import START, critical
from tests.waiting import until

world = center_world.world  # the fixture

# -- the buttons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
async def test_snooze_holds_the_repeat_until_then_and_then_it_repeats(world, surface) -> None:
    notice = await fire(world)
    said = await press(world, surface, "operator", notice[surface], "💤 1h")
    assert "#1 snoozed until 2026-12-01 13:00 UTC" in said
    assert (await incident(world)).snoozed_until == START + timedelta(hours=1)
    told = counts(world)
    world.clock.move(3600 - 1)
    await world.notify.tick()  # everything owed by now is flushed and sent
    assert counts(world) == told, "repeated while snoozed"
    world.clock.move(2)
    await until(lambda: counts(world) == (told[0] + 1, told[1] + 1), "the repeat after 1 h")
    # and then the ordinary repeat interval (4 h), not another repeat at once
    world.clock.move(3600)
    await world.notify.tick()
    assert counts(world) == (told[0] + 1, told[1] + 1)


@pytest.mark.parametrize("surface", SURFACES)
async def test_resolve_is_told_as_resolved_to_everyone_once(world, surface) -> None:
    notice = await fire(world)
    said = await press(world, surface, "operator", notice[surface], "✅ Resolve")
    assert "#1 resolved." in said
    it = await incident(world)
    assert it.state == "resolved" and it.acted_by
    resolved = i18n.t("en", "alerts.notice.resolved", title="Database")
    await until(lambda: counts(world, resolved) == (1, 1), "the recovery on both surfaces")
    world.clock.move(5 * 3600)  # past every timer: no repeat, no second recovery
    await world.notify.tick()
    assert counts(world, resolved) == (1, 1) and counts(world) == (1, 1)


@pytest.mark.parametrize("surface", SURFACES)
async def test_silence_from_a_notice_mutes_matching_events_until_it_expires(world, surface) -> None:
    notice = await fire(world)
    said = await press(world, surface, "admin", notice[surface], "🔕 Silence 1d")
    assert "Silence #1 set until 2026-12-02 12:00 UTC for source=health, key=database" in said
    (silence,) = await notify_store.silences(world.services, world.clock())
    assert silence.matchers == "source=health, key=database"
    assert silence.ends_at == START + timedelta(days=1)
    assert (await incident(world)).state == "silenced"
    told = counts(world)
    world.clock.move(3600)
    emit(world.services.extras, critical("database"))  # still down: muted
    await until(lambda: not world.notify.inbox, "the event stored")
    await world.notify.tick()
    it = await incident(world)
    assert (it.state, it.count, counts(world)) == ("silenced", 2, told)
    world.clock.move(86400)  # the silence has expired: the next event is told
    assert await notify_store.silences(world.services, world.clock()) == []
    emit(world.services.extras, critical("database"))
    await until(lambda: counts(world) == (told[0] + 1, told[1] + 1), "told after the silence")
    assert (await incident(world)).state == "open"


@pytest.mark.parametrize("surface", SURFACES)
async def test_mark_all_read_is_for_that_user_only(world, surface) -> None:
    await fire(world, "database")
    await fire(world, "redis")
    mine = await center(world, surface, "viewer")
    assert "2 unread" in text_of(surface, mine)
    if surface == "telegram":
        said = await press(
            world, surface, "viewer", mine, "Mark all read", chat=PEOPLE["viewer"][0]
        )
    else:
        said = await slack_press(world, "viewer", slack_value(mine, "Mark all read"))
    assert "2 marked read" in said
    now = world.clock()
    viewer = await notify_store.center(world.services, world.users["viewer"], now)
    operator = await notify_store.center(world.services, world.users["operator"], now)
    assert (viewer.unread, operator.unread) == (0, 2)
    assert "0 unread" in text_of(surface, await center(world, surface, "viewer"))
    assert "2 unread" in text_of(surface, await center(world, surface, "operator"))


@pytest.mark.parametrize("surface", SURFACES)
async def test_the_fix_action_on_a_notice_runs_healths_quick_action_audited(world, surface) -> None:
    notice = await fire(world)
    label = i18n.t("en", "health.action.run_checks")
    calls = world.probe.calls
    mark = await audit_count(world.services)
    await press(world, surface, "operator", notice[surface], label)
    entry = await next_audit(world.services, mark, "health.run_checks")
    assert entry.result == "ok"
    assert world.probe.calls > calls  # the checks ran again, now
    mark = await audit_count(world.services)
    refused = await press(world, surface, "viewer", notice[surface], label)
    assert "Run checks" not in refused
    assert (await next_audit(world.services, mark, "health.run_checks")).result.startswith("denied")


# -- buttons that must not work --------------------------------------------------------------


async def _forged(world: Any, surface: str, role: str, spec: str, params: dict, **kw: Any) -> str:
    """``role`` presses a token the bot never put on this message (or not for them)."""
    owner = kw.pop("owner", None)
    if surface == "telegram":
        uid = PEOPLE[role][0]
        token = await world.tg.surface.tokens.issue(
            spec_id=spec,
            surface="telegram",
            user=str(PEOPLE[owner][0]) if owner else "*",
            chat=str(ADMIN_GROUP),
            params={**params, KEEP: True},  # as on a notice in the group
            **kw,
        )
        if kw.get("ttl"):
            await _gone(world.tg.surface.tokens, token)
        anchor = tg_notices(world)[-1]
        qid = await world.tg.sb.press_button(
            uid, ADMIN_GROUP, anchor["message_id"], token, forge=True, bot_id=world.tg.bot_id
        )
        said = (await wait_answer(world.tg.sb, qid)).get("text") or ""
        assert not [
            c
            for c in world.tg.sb.calls("editMessageText")
            if c["params"].get("message_id") == anchor["message_id"]
        ], "the notice everyone reads was replaced"
        return said
    token = await world.slack.surface_tokens.issue(
        spec_id=spec,
        surface="slack",
        user=PEOPLE[owner][1] if owner else "*",
        chat="C0OPS",
        params={**params, KEEP: True},
        **kw,
    )
    if kw.get("ttl"):
        await _gone(world.slack.surface_tokens, token)
    return await slack_press(world, role, token)


async def _gone(tokens: Any, token: str) -> None:
    await until(lambda: _expired(tokens, token), "the token to expire", interval=0.01)


async def _expired(tokens: Any, token: str) -> bool:
    return await tokens.cache.get("btn:" + token) is None


@pytest.mark.parametrize("surface", SURFACES)
async def test_stale_or_forged_buttons_change_nothing_and_say_why(world, surface) -> None:
    await fire(world)
    before = await incident(world)
    expired = i18n.t("en", "refuse.button")
    # changed params: a snooze span the button never offered
    said = await _forged(world, surface, "operator", "alerts.snooze", {"id": 1, "for": "9d"})
    assert i18n.t("en", "refuse.param") in said
    # an expired token
    said = await _forged(
        world, surface, "operator", "alerts.resolve", {"id": 1}, ttl=0.05, confirmed=True
    )
    assert expired in said
    # another user's button (the admin's own /alerts), pressed by the operator
    said = await _forged(world, surface, "operator", "alerts.resolve", {"id": 1}, owner="admin")
    assert expired in said
    # an incident that does not exist
    said = await _forged(world, surface, "operator", "alerts.ack", {"id": 999})
    assert "There is no notification #999" in said
    after = await incident(world)
    assert (after.state, after.snoozed_until, after.acted_by) == ("open", None, None)
    assert after == dataclasses.replace(before, undelivered=after.undelivered)
    # stale: Ack on a notice whose incident was resolved meanwhile
    await notify_store.resolve(world.services, 1, "someone", world.clock())
    said = await _forged(world, surface, "operator", "alerts.ack", {"id": 1})
    assert "#1 is resolved: nothing to do" in said
    assert (await incident(world)).state == "resolved"
