"""LLM health tells the truth: the fleet probes a quiet endpoint itself, and only a real
answer makes it healthy ([Reset breaker] on a dead endpoint resolves nothing).

The endpoint is the OpenAI-compatible FakeOpenAIServer driven by the real openai SDK;
``set_failing(500)`` makes it answer every request with a 500, like an outage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from piyasa.admin.health import HealthService, State, Thresholds
from piyasa.admin.health import actions as health_actions
from piyasa.admin.health.alerts import Alerter, AlertNotice
from piyasa.admin.health.llm_probe import LLMProbe
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OpenAIProvider
from piyasa.runtime.llm_watch import LLM_IDLE_PROBE_S, LLM_SUCCESS_WINDOW_S
from piyasa.sandbox.llm_server import FakeOpenAIServer
from piyasa.sandbox.telegram import TelegramSandbox
from piyasa.services import Services
from tests.runtime.helpers import FleetClock, drive, namespace, seed, until, with_sandbox

FAST = Thresholds(interval_s=3600.0, probe_timeout_s=2.0)  # rounds run when the test says


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeOpenAIServer, str]]:
    server = FakeOpenAIServer(api_keys=["sk-t"], latency=(0, 0))
    url = await server.start("127.0.0.1", 0)
    yield server, url
    await server.stop()


@pytest.fixture
def clock() -> FleetClock:
    return FleetClock()


@pytest.fixture
async def sandbox(clock: FleetClock) -> AsyncIterator[TelegramSandbox]:
    sb = TelegramSandbox(clock=clock)
    await sb.start("127.0.0.1", 0)
    yield sb
    await sb.stop()


def make_fleet(
    services: Services, sandbox: Any, url: str, clock: FleetClock, per_min: int
) -> Fleet:
    with_sandbox(services, sandbox.base_url)
    fleet = Fleet(
        services,
        receive="off",
        provider=OpenAIProvider("sk-t", url, "gpt-4o-mini", timeout=5.0),
        settings_overrides={"max_msgs_per_min": per_min},
        limiter_namespace=namespace(),
        clock=clock,
        wall=clock.wall,
    )
    services.extras["fleet"] = fleet
    return fleet


def probes(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    """The fleet's own probes: one-token completions (generations ask for 300)."""
    return [r for r in server.requests if r.get("max_tokens") == 1]


async def llm_reading(services: Services, fleet: Fleet):  # type: ignore[no-untyped-def]
    health = HealthService(services, fleet=fleet, probes=[LLMProbe()], thresholds=FAST)
    return (await health.run_all_now()).get("llm")


async def test_a_quiet_fleet_probes_the_endpoint_and_a_dead_one_reads_critical(
    services: Services, sandbox: TelegramSandbox, clock: FleetClock, llm
) -> None:
    server, url = llm
    fleet = make_fleet(services, sandbox, url, clock, per_min=0)  # no generation at all
    await fleet.start()
    try:
        # No generation succeeded within the window (none ran): the fleet probes by itself.
        await until(lambda: probes(server), "a probe of the endpoint")
        await until(lambda: fleet.generator.outcomes.last_probe_ok, "its answer")
        reading = await llm_reading(services, fleet)
        assert reading.state is State.HEALTHY, reading.summary
        assert reading.details["last_success_by"] == "probe"
        assert len(probes(server)) == 1  # answered: quiet probing from now on

        server.set_failing(500)
        await drive(
            clock,
            fleet,
            lambda: fleet.generator.outcomes.last_probe_ok is False,
            LLM_IDLE_PROBE_S / 4,
            "a failed probe",
        )
        reading = await llm_reading(services, fleet)
        assert reading.state is State.CRITICAL, reading.summary
        assert reading.details["failing"] is True and reading.details["last_failure_by"] == "probe"
        assert "InternalServerError" in reading.summary
        assert fleet.generator.breaker.state == "closed"  # the breaker alone said "healthy"

        server.set_failing(None)
        await drive(
            clock,
            fleet,
            lambda: fleet.generator.outcomes.last_probe_ok,
            0.5,
            "a probe answered again",
        )
        assert (await llm_reading(services, fleet)).state is State.HEALTHY
    finally:
        await fleet.stop()


async def test_reset_breaker_on_a_dead_endpoint_posts_no_false_resolved(
    services: Services, sandbox: TelegramSandbox, clock: FleetClock, llm
) -> None:
    server, url = llm
    await seed(services, sandbox, bots=2, chats=1)
    fleet = make_fleet(services, sandbox, url, clock, per_min=6000)
    health = HealthService(services, fleet=fleet, probes=[LLMProbe()], thresholds=FAST)
    alerter = Alerter(health, resolve_after_s=0)  # a healthy reading resolves at once
    posted: list[AlertNotice] = []

    async def sink(notice: AlertNotice) -> None:
        posted.append(notice)

    alerter.add_sink("chat", sink)
    await fleet.start()
    await alerter.start()
    try:
        await until(lambda: fleet.generated >= 1, "the LLM answering")
        assert (await health.run_all_now()).get("llm").state is State.HEALTHY
        server.set_failing(500)
        await drive(clock, fleet, lambda: fleet.generator.breaker.state == "open", 0.5, "open")
        assert (await health.run_all_now()).get("llm").state is State.CRITICAL
        await until(lambda: [n.kind for n in posted] == ["firing"], "the alert")
        clock.advance(LLM_SUCCESS_WINDOW_S)  # the last success is now older than the window

        calls = len(server.requests)
        assert health_actions.reset_breakers(services) >= 1  # [Reset breaker], still dead
        assert fleet.generator.breaker.state == "closed"
        reading = (await health.run_all_now()).get("llm")
        assert reading.state is State.CRITICAL, reading.summary
        # the endpoint is asked again (a generation or the probe the reset started) ...
        await drive(clock, fleet, lambda: len(server.requests) > calls + 1, 0.5, "calls")
        reading = (await health.run_all_now()).get("llm")
        assert reading.state is State.CRITICAL, reading.summary  # ... and is still dead
        assert [n.kind for n in posted] == ["firing"]  # no "Resolved", no second alert

        server.set_failing(None)
        generated = fleet.generated
        await drive(
            clock,
            fleet,
            lambda: (
                fleet.generator.outcomes.last_success_at is not None
                and not fleet.generator.outcomes.failing
            ),
            0.5,
            "a real answer",
        )
        assert (await health.run_all_now()).get("llm").state is State.HEALTHY
        await until(lambda: [n.kind for n in posted] == ["firing", "resolved"], "")
        await drive(clock, fleet, lambda: fleet.generated > generated, 0.5, "again")
    finally:
        await alerter.stop()
        await health.stop()
        await fleet.stop()
