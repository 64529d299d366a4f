"""The bad inputs the issue names, typed where a user types them, on Telegram and Slack
(SQLite and PostgreSQL): each gets the localized error and changes nothing — active hours
"9-18" and "25:00-26:00", an unknown time zone, a persona field over its length and an
empty topic list (/botedit), a ``scale_factor`` outside its range (/settings). Tokens getMe
refuses and chats the bot is not in: tests/fleetadmin/test_bots_add_chat.py."""

from __future__ import annotations

from typing import Any

from chatops import i18n
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin import settings as fs
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401 (fixtures)
from tests.runtime.helpers import seed, with_sandbox

FOOTER_MAX = 120
BAD = (
    # (field, typed, catalog key, its parameters)
    ("active_hours", "9-18", "bots.err.bad_hours", {"value": "9-18"}),
    ("active_hours", "25:00-26:00", "bots.err.bad_hours", {"value": "25:00-26:00"}),
    ("timezone", "Mars/Olympus", "bots.err.bad_timezone", {"value": "Mars/Olympus"}),
    (
        "persona.footer",
        "x" * 130,
        "bots.err.persona.too_long",
        {"length": 130, "max": FOOTER_MAX},
    ),
    ("persona.topics", " , ", "bots.err.persona.topics_empty", {}),
)


def snapshot(bot: Any) -> tuple:
    return (bot.active_hours, bot.timezone, dict(bot.persona))


def field_text(lang: str, field: str, key: str, params: dict) -> str:
    """The refusal as ``lang`` reads it (persona errors name the field by its label)."""
    label = i18n.t(lang, f"bots.field.{field.removeprefix('persona.')}")
    return i18n.t(lang, key, field=label, **params)


async def test_telegram_bad_inputs_are_refused_in_the_users_language(tg) -> None:  # noqa: F811
    fleet, _chats = await seed(tg.services, tg.sb, bots=1, chats=0)
    before = snapshot(await svc.get_bot(tg.services, fleet[0].id))
    for lang in ("en", "tr"):
        await tg.say("operator", f"/lang {lang}")
        for field, typed, key, params in BAD:
            await tg.say("operator", f"/botedit fleet0_bot {field}")
            reply = await tg.say("operator", typed)
            want = field_text(lang, field, key, params)
            assert want in reply["text"], (lang, field, reply["text"])
            await tg.say("operator", "/cancel")
        reply = await tg.say("operator", "/settings scale_factor 10.5")
        assert (
            i18n.t(lang, "settings.err.range", value="10.5", name="scale_factor", range="0 – 10")
            in (reply["text"])
        )
    assert snapshot(await svc.get_bot(tg.services, fleet[0].id)) == before
    assert await fs.history(tg.services) == []


async def test_slack_bad_inputs_are_refused_under_the_modals_input(slack, slack_server) -> None:  # noqa: F811
    from tests.waiting import PatientSandbox

    sb = PatientSandbox(enforce_limits=False)
    with_sandbox(slack.services, await sb.start("127.0.0.1", 0))
    try:
        fleet, _chats = await seed(slack.services, sb, bots=1, chats=0)
        before = snapshot(await svc.get_bot(slack.services, fleet[0].id))
        for field, typed, key, params in BAD:
            await slack.slash("U0OPERATOR", f"botedit fleet0_bot {field}")
            modal = await slack_server.wait_view("U0OPERATOR")
            outcome = await slack.submit("U0OPERATOR", modal, typed)
            want = field_text("en", field, key, params)
            assert outcome["errors"] == {"answer": want}, (field, outcome)
        _, ack, _ = await slack.slash("U0OPERATOR", "settings scale_factor -1")
        assert "-1 is outside the range of scale_factor: 0 – 10." in str(ack)
        assert snapshot(await svc.get_bot(slack.services, fleet[0].id)) == before
        assert await fs.history(slack.services) == []
    finally:
        await sb.stop()


async def test_telegram_pickers_apply_the_choice_pressed(tg) -> None:  # noqa: F811
    """The common windows, zones and speed profiles as buttons: one press each."""
    from tests.users.helpers import private, tap

    fleet, _chats = await seed(tg.services, tg.sb, bots=1, chats=0)
    me = private("operator")
    listing = await tg.say("operator", "/bots")
    card = await tap(tg, "operator", me, listing, "Fleet0")
    picker = await tap(tg, "operator", me, card, "Active hours")
    done = await tap(tg, "operator", me, picker, "09:00-18:00")
    assert "Active hours of Fleet0: 09:00-18:00." in done["text"]
    picker = await tap(tg, "operator", me, done, "Active hours")
    done = await tap(tg, "operator", me, picker, "Europe/London")
    assert "Time zone of Fleet0: Europe/London." in done["text"]
    picker = await tap(tg, "operator", me, done, "Speed")
    done = await tap(tg, "operator", me, picker, "slow")
    assert "Speed of Fleet0: slow." in done["text"]
    bot = await svc.get_bot(tg.services, fleet[0].id)
    assert (bot.active_hours, bot.timezone, bot.speed_profile) == (
        "09:00-18:00",
        "Europe/London",
        "slow",
    )
