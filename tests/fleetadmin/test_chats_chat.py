"""/chats on Telegram and Slack: list and card with the bots that speak there, enable/
disable, topics, budget and add through the dialog, with their refusals."""

from __future__ import annotations

from sqlalchemy import select

from piyasa.db.models import Chat
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.runtime.helpers import seed
from tests.users.helpers import private, slack_answer, slack_token, tap

NEW_GROUP = -1005888000001


async def chat_row(services, telegram_id: int) -> Chat | None:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))


async def test_telegram_card_edits_and_refusals(tg) -> None:  # noqa: F811
    _bots, chats = await seed(tg.services, tg.sb, bots=2, chats=1)
    listing = await tg.say("viewer", "/chats")
    assert "Group 0" in listing["text"]
    card = await tap(tg, "viewer", private("viewer"), listing, "Group 0")
    assert "Fleet0" in card["text"] and "Fleet1" in card["text"]  # who speaks there

    me = private("operator")
    card = await tap(tg, "operator", me, await tg.say("operator", "/chats"), "Group 0")
    card = await tap(tg, "operator", me, card, "Disable")
    assert "no longer talks" in card["text"]
    assert (await chat_row(tg.services, chats[0].telegram_id)).enabled is False
    card = await tap(tg, "operator", me, card, "Crypto")
    assert (await chat_row(tg.services, chats[0].telegram_id)).topics == ["bist", "fx", "crypto"]

    await tap(tg, "operator", me, card, "Budget")
    refused = await tg.say("operator", "5000")
    assert "from 1 to 1200" in refused["text"]
    assert (await chat_row(tg.services, chats[0].telegram_id)).msg_budget is None
    saved = await tg.say("operator", "30")
    assert "30 messages an hour" in saved["text"]

    await tap(tg, "operator", me, saved, "Custom topics")
    empty = await tg.say("operator", " , ")
    assert "at least one topic" in empty["text"]
    assert (await chat_row(tg.services, chats[0].telegram_id)).topics == ["bist", "fx", "crypto"]


async def test_telegram_add_checks_the_bots_membership(tg) -> None:  # noqa: F811
    bots, _ = await seed(tg.services, tg.sb, bots=2, chats=1)
    tg.sb.add_group(NEW_GROUP, "Yeni Grup", members=[bots[1].telegram_id])
    tg.sb.add_group(NEW_GROUP - 1, "Botsuz", members=[])
    me = private("operator")
    await tap(tg, "operator", me, await tg.say("operator", "/chats"), "Add chat")
    refused = await tg.say("operator", str(NEW_GROUP - 1))
    assert "None of the fleet's bots is in that chat" in refused["text"]
    assert await chat_row(tg.services, NEW_GROUP - 1) is None
    added = await tg.say("operator", str(NEW_GROUP))
    assert "Chat: Yeni Grup" in added["text"] and "Fleet1" in added["text"]
    assert "Fleet0" not in added["text"]


async def test_slack_add_and_refuse_through_the_modal(slack, slack_server) -> None:  # noqa: F811
    from tests.waiting import PatientSandbox  # the fleet bots' Telegram

    sb = PatientSandbox(enforce_limits=False)
    url = await sb.start("127.0.0.1", 0)
    try:
        import dataclasses

        slack.services.settings = dataclasses.replace(slack.services.settings, telegram_api_url=url)
        bots, _ = await seed(slack.services, sb, bots=1, chats=0)
        sb.add_group(NEW_GROUP, "Slack Grubu", members=[bots[0].telegram_id])
        _, ack, _url = await slack.slash("U0OPERATOR", "chats")
        _, resp = await slack.press("U0OPERATOR", slack_token(ack, "Add chat"))
        await slack_server.wait_response(resp)  # the dialog's step; its modal opens
        bad = await slack_answer(slack, slack_server, "U0OPERATOR", "@", resp)
        assert bad["errors"] and await chat_row(slack.services, NEW_GROUP) is None
        done = await slack_answer(slack, slack_server, "U0OPERATOR", str(NEW_GROUP), resp)
        assert "Slack Grubu" in str(done)
        assert (await chat_row(slack.services, NEW_GROUP)).title == "Slack Grubu"
    finally:
        await sb.stop()
