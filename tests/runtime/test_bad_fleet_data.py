"""Bad fleet data never stops the fleet: one validator on every write, one bot disabled for a
bad row already in the database, the others chatting on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from piyasa.admin.health import State, Thresholds
from piyasa.admin.health.fleet_probes import RuntimeProbe
from piyasa.admin.health.probes import ProbeContext
from piyasa.crypto import fingerprint
from piyasa.db.models import Bot
from piyasa.db.runtime_models import WorkerEvent
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.planner import Planner
from piyasa.runtime.roster import BotInfo, ChatInfo, Roster
from piyasa.runtime.schedule import ScheduleError, validate_schedule
from tests.runtime.helpers import drive, namespace, seed, until, with_sandbox


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("active_hours", "9-18", "active_hours '9-18': '9-18' is not a range"),
        ("timezone", "Europe/Istanbull", "timezone 'Europe/Istanbull' is not a known IANA"),
    ],
)
async def test_a_bad_row_disables_only_that_bot_and_the_fleet_chats_on(
    services, sandbox, clock, column: str, value: str, words: str
) -> None:
    bots, _chats = await seed(services, sandbox, bots=3, chats=1)
    # Written around the validator, as by hand or by an older version.
    async with services.sessions() as session, session.begin():
        await session.execute(
            text(f"UPDATE bots SET {column} = :v WHERE id = :id"), {"v": value, "id": bots[0].id}
        )
    with_sandbox(services, sandbox.base_url)
    fleet = Fleet(
        services,
        receive="off",
        settings_overrides={"max_msgs_per_min": 6000},
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
    )
    await fleet.start()
    try:
        await drive(clock, fleet, lambda: len(sandbox.sent()) >= 12, 0.5, "the others chatting")
        assert not sandbox.sent(bot_id=bots[0].telegram_id)
        assert {m["from"]["id"] for m in sandbox.sent()} == {b.telegram_id for b in bots[1:]}

        async def recorded() -> tuple[bool, str | None] | None:
            async with services.sessions() as session:
                row = (
                    await session.execute(
                        select(Bot.enabled, Bot.disabled_reason).where(Bot.id == bots[0].id)
                    )
                ).one()
            return row if row.disabled_reason else None

        enabled, reason = await until(recorded, "the disable recorded")
        assert enabled is False and words in (reason or "")
        snap = fleet.snapshot()
        reading = await RuntimeProbe().check(ProbeContext(services, Thresholds(), snap, None))
        assert reading.state is State.WARNING
        assert f"bot @fleet0_bot disabled: {words}" in reading.summary
        assert snap["workers"]["detail"]["planner"]["restarts"] == 0  # it never crashed

        async def event() -> list[WorkerEvent]:
            async with services.sessions() as session:
                return list(
                    (
                        await session.scalars(
                            select(WorkerEvent).where(WorkerEvent.kind == "disabled")
                        )
                    ).all()
                )

        rows = await until(event, "the event row")
        assert len(rows) == 1 and words in (rows[0].detail or "")
        # A roster reload (every 30 s, or after an operator's change) does not repeat it.
        await fleet.reload_roster()
        assert len(await event()) == 1
    finally:
        await fleet.stop()


def test_one_validator_says_what_to_write() -> None:
    assert validate_schedule("9:00 - 18:00, 22:00-02:00", "Europe/Istanbul") == (
        "09:00-18:00,22:00-02:00",
        "Europe/Istanbul",
    )
    assert validate_schedule("", "UTC") == ("00:00-24:00", "UTC")
    for hours, tz, words in (
        ("9-18", "UTC", "e.g. 09:00-18:00"),
        ("09:00-25:00", "UTC", "not a time of day"),
        ("10:00-10:00", "UTC", "empty range"),
        ("00:00-01:00,02:00-03:00,04:00-05:00", "UTC", "longer than 32"),
        ("09:00-18:00", "Europe/Istanbull", "write e.g. Europe/Istanbul"),
        ("09:00-18:00", "", "not a known IANA time zone"),
    ):
        with pytest.raises(ScheduleError, match=words):
            validate_schedule(hours, tz)


def test_every_write_through_the_model_is_validated() -> None:
    """CLI, setup wizard and chat commands all write bots through the ORM model."""
    tok = "8000000999:TEST-fleet-bot-0999-token-do-not-use-x"
    ok = Bot(token_encrypted="x", token_fingerprint=fingerprint(tok), active_hours="9:00-18:00")
    assert ok.active_hours == "09:00-18:00"
    with pytest.raises(ScheduleError, match="'9-18' is not a range"):
        Bot(token_encrypted="x", token_fingerprint=fingerprint(tok), active_hours="9-18")
    with pytest.raises(ScheduleError, match="Europe/Istanbull"):
        ok.timezone = "Europe/Istanbull"
    assert ok.timezone != "Europe/Istanbull"


def test_the_planner_skips_a_bot_it_cannot_read_and_goes_on() -> None:
    def bot(i: int, hours: str) -> BotInfo:
        return BotInfo(i, 100 + i, f"b{i}", None, {}, hours, "UTC", 1000, True)

    roster = Roster()
    for b in (bot(1, "9-18"), bot(2, "00:00-24:00"), bot(3, "00:00-24:00")):
        roster.bots[b.id] = b
    roster.chats[1] = ChatInfo(1, -100, "c", "supergroup", ["fx"], True)
    roster.members[1] = [1, 2, 3]
    bad: list[tuple[int, str]] = []
    planner = Planner(
        roster,
        clock=lambda: 1000.0,
        wall=lambda: datetime(2026, 1, 5, 12, tzinfo=UTC),
        on_bad_bot=lambda b, why: bad.append((b, why)),
    )
    decided = {d.bot.id for d in planner.plan(1e6, 1.0, 50)}
    assert decided == {2, 3}
    assert [b for b, _ in bad] == [1] and "9-18" in bad[0][1]
    assert roster.bots[1].enabled is False
