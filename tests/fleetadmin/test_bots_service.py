"""The bots service: list and card figures, every edit validated, bad input refused with
a catalog key and nothing changed (SQLite and PostgreSQL, the sandbox Telegram)."""

from __future__ import annotations

from typing import Any

import pytest

from chatops import i18n
from piyasa.fleetadmin import bot_changes as changes
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin.persona import (
    PERSONA_FIELDS,
    PersonaError,
    parse_field,
    validate_persona,
)
from piyasa.services import Services
from tests.runtime.helpers import seed, token_for, with_sandbox
from tests.waiting import PatientSandbox

ACTOR = "tester"


@pytest.fixture
async def world(services: Services) -> Any:
    sb = PatientSandbox(enforce_limits=False)
    url = await sb.start("127.0.0.1", 0)
    with_sandbox(services, url)
    bots, chats = await seed(services, sb, bots=3, chats=2)
    yield sb, bots, chats
    await sb.stop()


async def row(services: Services, bot_id: int) -> Any:
    return await svc.get_bot(services, bot_id)


def snapshot(bot: Any) -> tuple:
    return (
        bot.enabled,
        bot.display_name,
        dict(bot.persona),
        bot.active_hours,
        bot.timezone,
        bot.hourly_limit,
        bot.speed_profile,
        bot.token_fingerprint,
    )


def test_every_refusal_has_words_in_both_languages() -> None:
    from piyasa.fleetadmin import persona

    for key in [*persona._MESSAGES, "bots.err.bad_hours", "bots.err.bad_timezone"]:
        assert i18n.has(key), key


@pytest.mark.parametrize(
    ("field", "text", "key"),
    [
        ("footer", "x" * 121, "bots.err.persona.too_long"),
        ("name", "n" * 65, "bots.err.persona.too_long"),
        ("topics", " , ,", "bots.err.persona.topics_empty"),
        ("topics", "t" * 33, "bots.err.persona.item_too_long"),
        ("phrases", ";".join(f"p{i}" for i in range(9)), "bots.err.persona.too_many"),
        ("risk", "reckless", "bots.err.persona.bad_choice"),
        ("stances", "USDTRY bearish", "bots.err.persona.bad_stance"),
    ],
)
def test_persona_fields_refuse_bad_values(field: str, text: str, key: str) -> None:
    with pytest.raises(PersonaError) as err:
        parse_field(field, text)
    assert err.value.catalog_key == key and err.value.field == field
    assert i18n.has(key)


def test_persona_values_are_cleaned() -> None:
    assert parse_field("topics", "BIST, fx, bist") == ["bist", "fx"]
    assert parse_field("stances", "usdtry: bearish; bist100: bullish") == {
        "USDTRY": "bearish",
        "BIST100": "bullish",
    }
    assert parse_field("phrases", "a, b; c") == ["a, b", "c"]
    assert parse_field("footer", "-") == ""
    cleaned = validate_persona({"name": " Ada ", "footer": "", "language": "en", "other": 1})
    assert cleaned == {"name": "Ada", "language": "en", "other": 1}
    assert set(PERSONA_FIELDS) == {
        "name", "tone", "style", "risk", "expertise", "phrases", "topics", "stances", "footer"
    }  # fmt: skip


async def test_list_search_filter_and_card(services: Services, world: Any) -> None:
    _sb, bots, _chats = world
    page = await svc.list_bots(services)
    assert page.total == 3 and [r.name for r in page.rows] == ["Fleet0", "Fleet1", "Fleet2"]
    assert (await svc.list_bots(services, search="@fleet1_bot")).total == 1
    await changes.set_enabled(services, bots[1].id, False, actor=ACTOR)
    assert [r.name for r in (await svc.list_bots(services, status="disabled")).rows] == ["Fleet1"]
    assert (await svc.list_bots(services, status="enabled")).total == 2
    card = await svc.card(services, "fleet0_bot")
    assert [c.title for c in card.chats if c.member] == ["Group 0", "Group 1"]
    assert card.token_hint.endswith(":…") and token_for(0) not in str(card.as_json())
    with pytest.raises(svc.BotError) as err:
        await svc.card(services, "nobody_bot")
    assert err.value.key == "bots.err.no_bot"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda s, b: changes.set_active_hours(s, b, "9-18", actor=ACTOR), "bots.err.bad_hours"),
        (
            lambda s, b: changes.set_active_hours(s, b, "25:00-26:00", actor=ACTOR),
            "bots.err.bad_hours",
        ),
        (
            lambda s, b: changes.set_timezone(s, b, "Mars/Olympus", actor=ACTOR),
            "bots.err.bad_timezone",
        ),
        (lambda s, b: changes.set_hourly_limit(s, b, "0", actor=ACTOR), "bots.err.bad_limit"),
        (lambda s, b: changes.set_hourly_limit(s, b, "ten", actor=ACTOR), "bots.err.bad_limit"),
        (
            lambda s, b: changes.set_persona_field(s, b, "footer", "f" * 500, actor=ACTOR),
            "bots.err.persona.too_long",
        ),
        (
            lambda s, b: changes.set_persona_field(s, b, "topics", "", actor=ACTOR),
            "bots.err.persona.topics_empty",
        ),
        (
            lambda s, b: changes.rotate_token(s, b, "8999:not-a-token", actor=ACTOR),
            "bots.err.bad_token_format",
        ),
        (
            lambda s, b: changes.rotate_token(
                s, b, "8999000000:TEST-unknown-token-telegram-refuses-it", actor=ACTOR
            ),
            "bots.err.token_refused",
        ),
        (
            lambda s, b: changes.rotate_token(s, b, token_for(1), actor=ACTOR),
            "bots.err.other_bot",
        ),
        (
            lambda s, b: changes.remove_bot(s, b, "fleet1_bot", actor=ACTOR),
            "bots.err.name_mismatch",
        ),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    services: Services, world: Any, change: Any, key: str
) -> None:
    _sb, bots, _chats = world
    before = snapshot(await row(services, bots[0].id))
    with pytest.raises((svc.BotError, PersonaError)) as err:
        await change(services, bots[0].id)
    got = getattr(err.value, "key", None) or getattr(err.value, "catalog_key", None)
    assert got == key
    assert i18n.has(key)
    assert token_for(0) not in str(err.value) and token_for(1) not in str(err.value)
    assert snapshot(await row(services, bots[0].id)) == before


async def test_edits_are_stored(services: Services, world: Any) -> None:
    _sb, bots, _chats = world
    b = bots[0].id
    await changes.set_active_hours(services, b, "9:00 - 18:00", actor=ACTOR)
    await changes.set_timezone(services, b, "Europe/London", actor=ACTOR)
    await changes.set_speed(services, b, "fast", actor=ACTOR)
    change = await changes.set_persona_field(services, b, "footer", "Not advice.", actor=ACTOR)
    assert change.old is None and change.new == "Not advice."
    await changes.rename(services, b, "Ayşe", actor=ACTOR)
    bot = await row(services, b)
    assert (bot.active_hours, bot.timezone, bot.speed_profile, bot.hourly_limit) == (
        "09:00-18:00",
        "Europe/London",
        "fast",
        60,
    )
    assert bot.persona["footer"] == "Not advice." and bot.persona["name"] == "Ayşe"
    await changes.set_hourly_limit(services, b, "45", actor=ACTOR)
    assert (await row(services, b)).speed_profile == "custom"


async def test_chats_membership_and_a_chat_the_bot_is_not_in(
    services: Services, world: Any
) -> None:
    sb, bots, chats = world
    # taking bot 0 out of a chat where everyone talked keeps the others in
    await changes.set_member(services, bots[0].id, chats[0].id, False, actor=ACTOR)
    card0, card1 = await svc.card(services, bots[0].id), await svc.card(services, bots[1].id)
    assert [c.title for c in card0.chats if c.member] == ["Group 1"]
    assert [c.title for c in card1.chats if c.member] == ["Group 0", "Group 1"]
    await changes.set_member(services, bots[0].id, chats[0].id, True, actor=ACTOR)
    assert [c.title for c in (await svc.card(services, bots[0].id)).chats if c.member] == [
        "Group 0",
        "Group 1",
    ]
    # a group the bot is not in: Telegram says so and nothing changes
    from piyasa.db.models import Chat
    from piyasa.db.runtime_models import BotChat

    sb.add_group(chat_id=-1005999999999, title="Elsewhere", members=[bots[1].telegram_id])
    async with services.sessions() as session, session.begin():
        other = Chat(telegram_id=-1005999999999, title="Elsewhere", topics=["fx"])
        session.add(other)
        await session.flush()
        session.add(BotChat(bot_id=bots[1].id, chat_id=other.id))  # only bot 1 listed
    with pytest.raises(svc.BotError) as err:
        await changes.set_member(services, bots[0].id, other.id, True, actor=ACTOR)
    assert err.value.key == "bots.err.not_in_chat"
    card = await svc.card(services, bots[0].id)
    assert "Elsewhere" not in [c.title for c in card.chats if c.member]


async def test_add_rotate_and_remove(services: Services, world: Any) -> None:
    sb, _bots, _chats = world
    token = "8111000000:TEST-brand-new-fleet-bot-token-abcdef"
    sb.add_bot(token=token, username="newcomer_bot", first_name="Newcomer")
    new_id = await changes.add_bot(services, token, {"topics": ["fx"]}, actor=ACTOR)
    bot = await row(services, new_id)
    assert not bot.enabled and bot.persona == {"name": "Newcomer", "topics": ["fx"]}
    assert services.box.decrypt(bot.token_encrypted) == token
    with pytest.raises(svc.BotError) as err:
        await changes.add_bot(services, token, {}, actor=ACTOR)
    assert err.value.key == "bots.err.already_fleet"
    # rotation: the same bot's new token (BotFather /revoke gives one)
    fresh = "8111000000:TEST-rotated-token-of-the-newcomer-bot"
    sb.add_bot(token=fresh, username="newcomer_bot", first_name="Newcomer")
    await changes.rotate_token(services, new_id, fresh, actor=ACTOR)
    assert services.box.decrypt((await row(services, new_id)).token_encrypted) == fresh
    name = await changes.remove_bot(services, new_id, "@Newcomer_bot", actor=ACTOR)
    assert name == "Newcomer"
    with pytest.raises(svc.BotError):
        await svc.get_bot(services, new_id)
