"""`/preview` and `/limits` in chat, on Telegram and Slack, SQLite and PostgreSQL: samples
without sending (saved and proposed persona), costs recorded as preview, the sandbox
button only with the sandbox, bad input refused with nothing changed; the rate-limit
dashboard, its live mode and the Undo of the system's change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from chatops import i18n
from piyasa.db.models import Bot, Message
from piyasa.db.preview_models import PreviewCost
from piyasa.fleetadmin.autoadjust import write_setting
from piyasa.runtime.fleet import Fleet
from tests.chatops.conftest import start_slack, start_telegram
from tests.chatops.harness import PEOPLE, buttons, seed_people
from tests.chatops.slack_server import SlackServer, slack_buttons, slack_text
from tests.runtime.helpers import namespace, seed, until

GROUP = -1005000000000
FOOTER = "Piyasa test notu"


async def start_fleet(world_sb: Any, services: Any, **overrides: Any) -> Fleet:
    """Two bots in one group, paused. The auto-adjuster is off: the tests write the
    system's change themselves, and a real adjuster would race them (it returns a lowered
    scale_factor once no 429 came)."""
    overrides.setdefault("autoadjust_enabled", False)
    await seed(services, world_sb, bots=2, chats=1, persona={"footer": FOOTER})
    fleet = Fleet(
        services, receive="off", settings_overrides=overrides, limiter_namespace=namespace()
    )
    await fleet.settings_store.set("fleet_paused", True, "test")  # quiet until resumed
    await fleet.start()
    services.extras["fleet"] = fleet
    return fleet


@pytest.fixture
async def tg(services) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    people = await seed_people(services)
    async for world in start_telegram(services):
        world.user_ids = people
        world.fleet = await start_fleet(world.sb, services)
        try:
            yield world
        finally:
            await world.fleet.stop()


async def cost_rows(services) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count(PreviewCost.id))))


async def message_rows(services) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count(Message.id))))


async def test_telegram_preview_sends_nothing_and_records_preview_cost(tg) -> None:
    reply = await tg.say("operator", f"/preview fleet0_bot {GROUP} crypto")
    text = reply["text"]
    assert "Preview: Fleet0 in Group 0, topic crypto" in text
    assert text.count(FOOTER) == 3  # three samples, each as it would be posted
    assert "recorded as preview cost" in text
    assert not [b for b, _ in buttons(reply) if "sandbox" in b]  # no sandbox running
    assert tg.sb.sent(chat_id=GROUP) == []  # nothing reached the group
    assert await cost_rows(tg.services) == 3
    assert await message_rows(tg.services) == 0  # not fleet traffic


async def test_telegram_preview_of_a_proposed_persona_leaves_the_saved_one(tg) -> None:
    async with tg.services.sessions() as session:
        bot = await session.scalar(select(Bot).where(Bot.username == "fleet1_bot"))
    uid = PEOPLE["operator"][0]
    token = await tg.surface.tokens.issue(
        spec_id="preview.show",
        surface="telegram",
        user=str(uid),
        chat=str(uid),
        params={"bot": bot.id, "persona": {"name": "Yeni", "footer": "NEW FOOTER"}},
    )
    anchor = await tg.say("operator", "/start")
    mark = tg.sb.mark()
    await tg.sb.press_button(uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id)
    shown = await tg.sb.wait_for_message(chat_id=uid, bot_id=tg.bot_id, after=mark, edits=True)
    assert "proposed persona (not saved)" in shown["text"]
    assert shown["text"].count("NEW FOOTER") == 3 and FOOTER not in shown["text"]
    async with tg.services.sessions() as session:
        saved = await session.get(Bot, bot.id)
    assert saved.persona["footer"] == FOOTER  # previewing saved nothing


async def test_telegram_send_to_the_sandbox_posts_the_sample_in_the_group(tg) -> None:
    tg.services.extras["sandbox"] = tg.sb
    reply = await tg.say("operator", f"/preview fleet0_bot {GROUP}")
    sample = reply["text"].split("\n")
    first = next(line for line in sample if line.startswith("1. "))[3:]
    data = dict(buttons(reply))["📤 Send 1 to the sandbox"]
    await tg.press("operator", PEOPLE["operator"][0], reply, data)
    posted = await tg.sb.wait_for_message(chat_id=GROUP)
    assert posted["text"].startswith(first) and posted["from"]["username"] == "fleet0_bot"
    assert await message_rows(tg.services) == 0  # a preview, not fleet traffic


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("/preview nobody_bot", 'No fleet bot "nobody_bot"'),
        ("/preview fleet0_bot -42", 'No fleet chat "-42"'),
        ("/preview fleet0_bot -42 crypto", 'No fleet chat "-42"'),
    ],
)
async def test_telegram_preview_refuses_bad_input_and_costs_nothing(tg, typed, says) -> None:
    reply = await tg.say("operator", typed)
    assert says in reply["text"]
    assert await cost_rows(tg.services) == 0


async def test_telegram_preview_error_in_turkish(tg) -> None:
    from piyasa.admin.identity import set_language

    await set_language(tg.services, tg.user_ids["operator"], "tr")
    reply = await tg.say("operator", "/preview nobody_bot")
    assert reply["text"].endswith(i18n.t("tr", "preview.error.no_bot", bot="nobody_bot"))


async def test_telegram_limits_dashboard_live_and_undo(tg) -> None:
    fleet = tg.fleet
    # the fleet speaks: two bots alternating in the group
    await fleet.control.resume("op")
    await until(lambda: len(tg.sb.sent(chat_id=GROUP)) >= 4, "4 fleet messages")
    reply = await tg.say("viewer", "/limits")
    assert "Rate limits" in reply["text"] and "Fleet0" in reply["text"]
    assert "20/min per group" in reply["text"] and "30/s per bot" in reply["text"]
    assert [b for b, _ in buttons(reply)] == ["🔄 Refresh", "▶ Live", "❓ Help"]

    # a system change shows with its Undo, and an operator undoes it
    await fleet.settings_store.set("autoadjust_operator_scale", 1.0, "system")
    await write_setting(
        tg.services, fleet.settings_store, "scale_factor", 0.5, actor="system", reason="test"
    )
    reply = await tg.say("operator", "/limits")
    assert "lowered scale_factor to 0.5" in reply["text"]
    data = dict(buttons(reply))["↩ Undo the system's change"]
    mark = tg.sb.mark()
    await tg.press("operator", PEOPLE["operator"][0], reply, data)
    done = await tg.sb.wait_for_message(chat_id=PEOPLE["operator"][0], after=mark, edits=True)
    assert "set back from 0.5 to 1.0" in done["text"]
    assert fleet.settings_store.number("scale_factor") == 1.0

    # live: the message is edited as the figures move
    tg.services.extras["limits.live"] = live = __import__(
        "chatops.commands.limits", fromlist=["LiveLimits"]
    ).LiveLimits(interval_s=0.05)
    live_msg = await tg.say("viewer", "/limits live")
    assert "Live: refreshed" in live_msg["text"]
    await until(lambda: live.edits >= 1, "a live edit")
    assert [b for b, _ in buttons(live_msg)] == ["⏹ Stop live"]


async def test_limits_without_a_fleet_says_so(tg) -> None:
    del tg.services.extras["fleet"]
    reply = await tg.say("viewer", "/limits")
    assert "fleet is not running" in reply["text"]


@pytest.fixture
async def slack_fleet(services) -> AsyncIterator[tuple[Any, SlackServer, Fleet]]:  # type: ignore[no-untyped-def]
    """Slack's admin surface, the fleet's sandbox Telegram and a paused fleet."""
    from piyasa.sandbox.telegram import TelegramSandbox
    from tests.chatops.harness import with_admin_settings

    await seed_people(services)
    server = SlackServer()
    await server.start()
    sb = TelegramSandbox(enforce_limits=False)
    with_admin_settings(services, await sb.start("127.0.0.1", 0))
    fleet = await start_fleet(sb, services)
    fleet.sb = sb  # type: ignore[attr-defined]
    try:
        async for client, _surface in start_slack(services, server):
            yield client, server, fleet
    finally:
        await fleet.stop()
        await sb.stop()
        await server.stop()


async def test_slack_preview_and_limits(slack_fleet) -> None:  # type: ignore[no-untyped-def]
    client, server, fleet = slack_fleet
    _, ack, rurl = await client.slash("U0OPERATOR", f"preview fleet0_bot {GROUP}")
    answer = ack if "Preview" in slack_text(ack) else (await server.wait_response(rurl))[0]
    assert slack_text(answer).count(FOOTER) >= 3  # text and blocks
    assert not [b for b, _ in slack_buttons(answer) if "sandbox" in b]
    _, ack, _ = await client.slash("U0VIEWER", "limits")
    assert "Rate limits" in slack_text(ack)
    _, ack, _ = await client.slash("U0OPERATOR", "preview nobody_bot")
    assert 'No fleet bot "nobody_bot"' in slack_text(ack).replace("&quot;", '"')
    assert fleet.sb.sent(chat_id=GROUP) == []


async def test_slack_limits_live_and_undo_of_the_systems_change(slack_fleet) -> None:  # type: ignore[no-untyped-def]
    from chatops.commands.limits import LiveLimits
    from tests.users.helpers import slack_tap, slack_token

    client, server, fleet = slack_fleet
    await fleet.control.resume("op")
    await until(lambda: len(fleet.sb.sent(chat_id=GROUP)) >= 2, "fleet messages")
    # the system lowered scale_factor: the operator sees it and undoes it
    await fleet.settings_store.set("autoadjust_operator_scale", 1.0, "system")
    await write_setting(
        client.services, fleet.settings_store, "scale_factor", 0.5, actor="system", reason="t"
    )
    _, ack, _ = await client.slash("U0OPERATOR", "limits")
    assert "lowered scale_factor to 0.5" in slack_text(ack)
    done = await slack_tap(client, server, "U0OPERATOR", ack, "Undo the system's change")
    assert "set back from 0.5 to 1.0" in slack_text(done)
    assert fleet.settings_store.number("scale_factor") == 1.0
    # the operator's value now: nothing of the system's left to undo
    assert [b for b, _ in slack_buttons(done)] == ["🔄 Refresh", "▶ Live", "❓ Help"]

    # live: one message posted in the channel, updated as the figures move, then stopped
    client.services.extras["limits.live"] = live = LiveLimits(interval_s=0.05)
    _, ack, _ = await client.slash("U0VIEWER", "limits live")
    assert "The live view is posted in this channel." in slack_text(ack)
    posted = await until(
        lambda: next((m for m in server.posted if "Live: refreshed" in str(m)), None),
        "the live view posted",
    )
    first = str(posted["blocks"])
    await until(lambda: live.edits >= 1 and str(posted["blocks"]) != first, "a live update")
    assert [b for b, _ in slack_buttons(posted)] == ["⏹ Stop live"]
    _, url = await client.press("U0VIEWER", slack_token(posted, "Stop live"))
    stopped = (await server.wait_response(url))[-1]
    assert "Live view ended." in slack_text(stopped)
    assert not live.tasks
