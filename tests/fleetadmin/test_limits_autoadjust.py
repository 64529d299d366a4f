"""Rate limits: a 429 trend lowers scale_factor (as "system", audited, undoable) and the
fleet returns to the operator's value once 429s stop; sustained use above 80 % warns.

Telegram here is the sandbox with limits *stricter* than the published ones the gate
plans for (a group window of 4/min instead of 20/min): what an operator meets when
Telegram enforces less than it publishes, or a too-high ``scale_factor`` meets reality.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from piyasa.admin import audit
from piyasa.db.models import Message, Setting
from piyasa.fleetadmin import limits
from piyasa.fleetadmin.autoadjust import undo_last_system_change
from piyasa.runtime.fleet import Fleet
from piyasa.sandbox.telegram import SandboxLimits
from tests.runtime.helpers import FleetClock, drive, namespace, seed, with_sandbox
from tests.waiting import PatientSandbox


@pytest.fixture
def clock() -> FleetClock:
    """One timeline for the sandbox and the fleet (see FleetClock)."""
    return FleetClock()


@pytest.fixture
async def sandbox(clock: FleetClock) -> AsyncIterator[PatientSandbox]:
    sb = PatientSandbox(clock=clock)
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()


@pytest.fixture
async def strict_sandbox(clock: FleetClock) -> AsyncIterator[PatientSandbox]:
    sb = PatientSandbox(clock=clock, limits=SandboxLimits(group_max=4))
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()


async def start_fleet(services, sandbox, clock, scale: float, per_min: float) -> Fleet:  # type: ignore[no-untyped-def]
    with_sandbox(services, sandbox.base_url, "")
    fleet = Fleet(
        services,
        receive="off",
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
        autoadjust_tick_s=0.05,
    )
    # The operator's values, as chat would write them (settings table, not overrides).
    await fleet.settings_store.set("max_msgs_per_min", per_min, "op")
    await fleet.settings_store.set("scale_factor", scale, "op")
    await fleet.start()
    return fleet


def scaled_down(fleet: Fleet) -> bool:
    """The adjuster announced a step down (after writing and auditing it)."""
    return "scale_down" in [e["kind"] for e in fleet.autoadjust.events]


async def storm(services, sb, clock: FleetClock) -> Fleet:  # type: ignore[no-untyped-def]
    """Two bots in one group at an operator's ``scale_factor`` 2: 12 messages/min over two
    pairs, 6/min a pair, above the 4/min the strict sandbox enforces. Returns the running
    fleet once it has scaled itself down (the caller stops it)."""
    await seed(services, sb, bots=2, chats=1)
    fleet = await start_fleet(services, sb, clock, scale=2.0, per_min=6.0)
    try:
        await drive(
            clock, fleet, lambda: scaled_down(fleet), step_s=1.0, what="the fleet scaling down"
        )
    except BaseException:
        await fleet.stop()
        raise
    return fleet


async def system_changes(services) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    rows = await audit.recent(services, limit=50, action="settings.set", target="scale_factor")
    return [
        (float(r.params["old"]), float(r.params["new"]))
        for r in reversed(rows)
        if r.actor == "system"
    ]


async def test_a_429_trend_scales_down_and_the_operators_value_returns(
    services,
    strict_sandbox,
    clock: FleetClock,
) -> None:
    fleet = await storm(services, strict_sandbox, clock)
    try:
        assert (await system_changes(services))[0] == (2.0, 1.0)
        async with services.sessions() as session:
            row = await session.get(Setting, "scale_factor")
        assert row.updated_by == "system" and row.version >= 2
        rep = await limits.report(fleet)
        assert rep.fleet.n429_hour >= 3 and rep.operator_scale == 2.0
        assert rep.pairs[0].n429_hour >= 1 and rep.pairs[0].last_retry_after
        assert [e["kind"] for e in rep.events][:1] == ["scale_down"]

        # Telegram's 429s stop (it admits the published 20/min again), then the operator's
        # value comes back, in steps. (Under the strict limit the climb would meet 429s again
        # on the way up and go down once more: whether it ever reached 2.0 was luck.)
        strict_sandbox.set_limits(SandboxLimits())

        def restored() -> bool:
            return "scale_restored" in [e["kind"] for e in fleet.autoadjust.events]

        await drive(clock, fleet, restored, step_s=2.0, what="the operator's value back")
        changes = await system_changes(services)
        ups = [c for c in changes if c[1] > c[0]]
        assert len(ups) >= 2 and ups[-1][1] == 2.0  # slowly: more than one step
        assert fleet.settings_store.get("autoadjust_operator_scale") is None
        assert fleet.settings_store.number("scale_factor") == 2.0
        # The climb back is gradual and steady: one step down, then steps up to the
        # operator's value, a tenth of it a minute, and nothing pushes it down again.
        events = [e for e in fleet.autoadjust.events if e["kind"] != "limit_warning"]
        assert [e["kind"] for e in events].count("scale_down") == 1, events
        values = [float(e["new"]) for e in events[1:]]
        assert values == [1.2, 1.4, 1.6, 1.8, 2.0], events
        assert [e["kind"] for e in events][-1] == "scale_restored"
    finally:
        await fleet.stop()
    # Nothing decided was lost: every bot message was delivered or is still queued.
    async with services.sessions() as session:
        statuses = (await session.scalars(select(Message.status))).all()
    assert statuses and "failed" not in statuses


async def test_an_operator_undoes_the_systems_change_and_keeps_it(
    services,
    strict_sandbox,
    clock: FleetClock,
) -> None:
    fleet = await storm(services, strict_sandbox, clock)
    try:
        change = await undo_last_system_change(services, fleet.settings_store, actor="op")
        assert change is not None and change["new"] == 2.0
        assert fleet.settings_store.number("scale_factor") == 2.0
        rows = await audit.recent(services, limit=1, action="settings.set", target="scale_factor")
        assert rows[0].actor == "op" and rows[0].params["new"] == 2.0
        # Nothing more to undo: the last change is the operator's.
        assert await undo_last_system_change(services, fleet.settings_store, actor="op") is None
        ticks = fleet.autoadjust.ticks
        await drive(
            clock,
            fleet,
            lambda: fleet.autoadjust.ticks > ticks + 3,
            step_s=0.0,
            what="the adjuster looking again",
        )
        assert fleet.settings_store.get("autoadjust_operator_scale") is None
    finally:
        await fleet.stop()


async def test_above_80_percent_of_a_limit_for_5_minutes_warns_once(
    services,
    sandbox,
    clock: FleetClock,
) -> None:
    await seed(services, sandbox, bots=2, chats=1)
    # 60 a minute asked for, 20/min per pair in a group allowed: both pairs run at 100 %.
    fleet = await start_fleet(services, sandbox, clock, scale=1.0, per_min=60.0)
    try:

        def warnings() -> list[dict]:
            return [e for e in fleet.autoadjust.events if e["kind"] == "limit_warning"]

        start = clock()
        await drive(clock, fleet, warnings, step_s=1.0, what="a limit warning")
        assert clock() - start >= 300  # not before five minutes above 80 %
        first = warnings()
        assert first[0]["subject"] == "pair" and first[0]["use"] >= 80
        rep = await limits.report(fleet)
        assert rep.hot and rep.hot[0].use >= 0.8
        assert fleet.settings_store.number("scale_factor") == 1.0  # warnings change nothing
    finally:
        await fleet.stop()
    pairs = {(e["bot_id"], e["chat_id"]) for e in first}
    assert len(first) == len(pairs)  # once per pair
