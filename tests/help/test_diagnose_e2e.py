"""Issue 17's "Done when": a 429 storm in the sandbox → /diagnose names it first → [Apply
fix] lowers ``scale_factor`` (previewed current → recommended, then Apply) → the 429s stop
→ Undo restores the operator's value.

One chat world (the admin bot on its sandbox) and one real fleet on a second sandbox that
enforces a group window of 4/min (stricter than the 20/min the gate plans for), sharing
the services; the fleet's clock is simulated (tests/runtime/helpers.FleetClock) so minutes
of sending take a moment. The fleet's own adjuster is kept out of the way (a one-hour
tick): here the operator applies the fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from piyasa.fleetadmin import settings as fs
from piyasa.help.kb import knowledge_base
from piyasa.runtime.fleet import Fleet
from piyasa.sandbox.telegram import SandboxLimits
from tests.chatops.conftest import people, tg  # noqa: F401
from tests.help.test_diagnose_chat import diagnose, labels
from tests.runtime.helpers import FleetClock, drive, namespace, seed, with_sandbox
from tests.users.helpers import private, tap
from tests.waiting import PatientSandbox

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TITLE = knowledge_base().entries["tg-429"].w("en").title


@pytest.fixture
def clock() -> FleetClock:
    return FleetClock()


@pytest.fixture
async def strict_sandbox(clock: FleetClock) -> AsyncIterator[PatientSandbox]:
    sb = PatientSandbox(clock=clock, limits=SandboxLimits(group_max=4))
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()


async def test_a_429_storm_is_named_fixed_and_undone(tg, strict_sandbox, clock) -> None:  # noqa: F811
    services = tg.services
    sb = strict_sandbox
    await seed(services, sb, bots=2, chats=1)
    admin_settings = services.settings
    with_sandbox(services, sb.base_url, "")
    fleet = Fleet(
        services,
        receive="off",
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
        autoadjust_tick_s=3600.0,
    )
    await fleet.settings_store.set("max_msgs_per_min", 6.0, "op")
    await fleet.settings_store.set("scale_factor", 2.0, "op")  # 12/min: 6 a pair, 4 allowed
    await fleet.start()
    services.settings = admin_settings  # the admin bot's checks talk to its own sandbox
    services.extras["fleet"] = fleet
    try:
        await drive(
            clock,
            fleet,
            lambda: len(fleet.rates.refusals_since(600)) >= 9,
            step_s=1.0,
            what="a 429 storm",
        )
        me = private("operator")
        report = await diagnose(tg, "operator")
        first = report["text"].split("\n1. ", 1)[1].split("\n", 1)[0]
        assert TITLE in first and "🔴" in first, report["text"]  # named first, critical
        assert "scale_factor 2" in report["text"]  # the evidence: the setting in force
        preview = await tap(tg, "operator", me, report, "🛠 1. Apply fix")
        assert "2 → 1" in preview["text"]
        assert fleet.settings_store.number("scale_factor") == 2.0  # nothing changed yet
        done = await tap(tg, "operator", me, preview, "✅ Apply")
        assert "scale_factor: 2 → 1" in done["text"]
        assert fleet.settings_store.number("scale_factor") == 1.0

        # The 429s stop: after half a minute to settle, three simulated minutes without one.
        start = clock()
        await drive(clock, fleet, lambda: clock() - start >= 30, step_s=3.0, what="settling")
        settled = len(fleet.rates.refusals_since(3600))
        start = clock()
        await drive(clock, fleet, lambda: clock() - start >= 180, step_s=3.0, what="3 minutes")
        assert len(fleet.rates.refusals_since(3600)) == settled
        assert fleet.gate.sent_count > 0

        undo = await tap(tg, "operator", me, done, "↩ Undo last change")
        if "Yes, do it" in labels(undo):  # the undo asks first
            undo = await tap(tg, "operator", me, undo, "Yes, do it")
        assert "scale_factor" in undo["text"]
        assert (await fs.get(services, "scale_factor")).value == 2.0
        assert fleet.settings_store.number("scale_factor") == 2.0
    finally:
        services.extras.pop("fleet", None)
        await fleet.stop()
