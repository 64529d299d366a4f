"""End to end, the running fleet driven from chat (issue 14's "Done when"): an operator
disables a bot in /bots and it says nothing more in the group, re-enables it and it
speaks again; changes a persona's footer in chat, previews it, saves it, and the fleet's
next messages in the group carry the new footer. One sandbox Telegram holds the admin
bot and the fleet bots; the fleet runs in this process (``services.extras["fleet"]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OfflineProvider
from piyasa.runtime.outbox import Draft
from piyasa.services import Services
from tests.chatops.conftest import people, start_telegram  # noqa: F401 (fixtures)
from tests.runtime.helpers import namespace, seed
from tests.users.helpers import private, tap
from tests.waiting import until

GROUP = -1005000000000  # seed()'s first group


@pytest.fixture
async def fleet_world(services: Services, people: dict[str, int]) -> AsyncIterator[Any]:  # noqa: F811
    """The admin bot's world (tests.chatops) plus two fleet bots chatting in one group."""
    async for tg in start_telegram(services):
        tg.user_ids = people
        bots, _chats = await seed(services, tg.sb, bots=3, chats=1)
        fleet = Fleet(
            services,
            receive="off",
            workers=2,
            provider=OfflineProvider(),
            limiter_namespace=namespace(),
            settings_overrides={"max_msgs_per_min": 120.0},
        )
        services.extras["fleet"] = fleet
        await fleet.start()
        try:
            yield tg, fleet, bots
        finally:
            services.extras.pop("fleet", None)
            await fleet.stop()


def _chats_id(fleet: Fleet) -> int:
    return next(c.id for c in fleet.roster.chats.values() if c.telegram_id == GROUP)


async def _final(fleet: Fleet, key: str) -> tuple[str, str] | None:
    from sqlalchemy import select

    from piyasa.db.runtime_models import OutboxItem

    async with fleet.services.sessions() as session:
        row = (
            await session.execute(
                select(OutboxItem.state, OutboxItem.last_error).where(
                    OutboxItem.idempotency_key == key
                )
            )
        ).first()
    return (row[0], row[1]) if row and row[0] in ("sent", "failed") else None


def said(tg: Any, bot: Any) -> list[dict]:
    return tg.sb.sent(GROUP, bot.telegram_id)


async def speaks(tg: Any, bot: Any, after: int = 0, what: str = "") -> dict:
    """The first message of ``bot`` in the group with a message id above ``after``."""

    def found() -> dict | None:
        return next((m for m in said(tg, bot) if m["message_id"] > after), None)

    return await until(found, what or f"a message of @{bot.username} after {after}")


async def open_card(tg: Any, role: str, name: str) -> dict:
    listing = await tg.say(role, "/bots")
    assert "Bots (3)" in listing["text"]
    return await tap(tg, role, private(role), listing, f"🤖 {name}")


async def test_disable_from_chat_silences_the_bot_and_enable_brings_it_back(
    fleet_world: Any,
) -> None:
    tg, fleet, (quiet, other, _third) = fleet_world
    me = private("operator")
    await speaks(tg, quiet, what="the fleet's first message of the bot to disable")
    card = await open_card(tg, "operator", "Fleet0")
    assert "Status: on" in card["text"]
    confirm = await tap(tg, "operator", me, card, "Disable")
    assert "Disable Fleet0?" in confirm["text"]
    done = await tap(tg, "operator", me, confirm, "Yes")
    assert "Fleet0 is disabled" in done["text"] and "Status: off" in done["text"]
    # from the answer on, nothing more of it; the other bot keeps talking meanwhile
    last = max(m["message_id"] for m in tg.sb.sent(GROUP))
    later = last
    for _ in range(3):
        later = (await speaks(tg, other, later, "the other bot talking on"))["message_id"]
    assert [m for m in said(tg, quiet) if m["message_id"] > last] == []
    assert fleet.roster.bots[quiet.id].enabled is False
    # a message decided just before the disable (its generation ended after) is not sent
    # either: it fails with the reason, visible in the outbox
    late = "decided before the disable, generated after it"
    await fleet.store.enqueue([Draft("late-1", quiet.id, _chats_id(fleet), GROUP, True, late)])
    fleet.gate.notify()
    row = await until(lambda: _final(fleet, "late-1"), "the late message settled")
    assert row == ("failed", "not sent: bot disabled by an operator")
    assert not [m for m in said(tg, quiet) if late in m["text"]]
    listing = await tg.say("operator", "/bots")
    row = next(line for line in listing["text"].splitlines() if "@fleet0_bot" in line)
    assert row.split()[1] == "off"
    # enabled again from its card: it speaks again
    card = await tap(tg, "operator", me, listing, "🤖 Fleet0")
    again = await tap(tg, "operator", me, card, "Enable")
    assert "Fleet0 is enabled" in again["text"]
    await speaks(tg, quiet, later, "the re-enabled bot speaking again")


async def _edit_footer(tg: Any, role: str, card: dict, footer: str) -> dict:
    """Persona -> edit Footer -> type it: the persona screen with the draft."""
    me = private(role)
    persona = await tap(tg, role, me, card, "Persona")
    ask = await tap(tg, role, me, persona, "✎ Footer")
    assert "Footer of Fleet0" in ask["text"]
    mark = tg.sb.mark()
    await tg.sb.send_user_message(me, me, footer, bot_id=tg.bot_id)
    return await tg.sb.wait_for_message(chat_id=me, bot_id=tg.bot_id, after=mark)


async def test_footer_too_long_is_refused_in_chat_and_changes_nothing(fleet_world: Any) -> None:
    tg, fleet, (bot, _other, _third) = fleet_world
    card = await open_card(tg, "operator", "Fleet0")
    reply = await _edit_footer(tg, "operator", card, "x" * 200)
    assert "Footer is 200 characters long; at most 120" in reply["text"]
    assert "footer" not in fleet.roster.bots[bot.id].persona


async def _footer_saved_and_used(tg: Any, fleet: Fleet, bot: Any, preview: bool) -> None:
    me = private("operator")
    footer = "Yatırım tavsiyesi değildir — test 14"
    card = await open_card(tg, "operator", "Fleet0")
    draft = await _edit_footer(tg, "operator", card, footer)
    assert "✎ Footer: " + footer in draft["text"] and "Unsaved changes" in draft["text"]
    assert "footer" not in fleet.roster.bots[bot.id].persona  # a draft, not yet saved
    if preview:
        shown = await tap(tg, "operator", me, draft, "Preview")
        assert "Samples with the unsaved draft persona" in shown["text"]
        assert footer in shown["text"]
        assert not [m for m in said(tg, bot) if footer in m["text"]]  # previews are not sent
        draft = await tap(tg, "operator", me, shown, "Persona")
    saved = await tap(tg, "operator", me, draft, "Save")
    assert "Persona of Fleet0 saved" in saved["text"] and footer in saved["text"]
    first = await until(
        lambda: next((m for m in said(tg, bot) if footer in m["text"]), None),
        "a message of the bot with the new footer",
    )
    # every message it sends from then on carries it
    nxt = await speaks(tg, bot, first["message_id"], "the next message after the first")
    assert footer in nxt["text"]


async def test_persona_footer_saved_in_chat_is_used_by_the_running_fleet(
    fleet_world: Any,
) -> None:
    tg, fleet, (bot, _other, _third) = fleet_world
    await _footer_saved_and_used(tg, fleet, bot, preview=False)


async def test_persona_change_previewed_then_saved_reaches_the_group(fleet_world: Any) -> None:
    """The whole "Done when" path: edit in chat, [Preview] (nothing sent), [Save], and the
    running fleet's next messages in the group carry the new footer."""
    tg, fleet, (bot, _other, _third) = fleet_world
    await _footer_saved_and_used(tg, fleet, bot, preview=True)
