"""`piyasa bench health` runs end to end and reports every figure the issue asks for."""

from __future__ import annotations

import argparse

from piyasa.bench import available
from piyasa.bench.health import add_arguments, run


async def test_bench_health_reports_refresh_throughput_and_the_command_latency() -> None:
    assert "health" in available()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        "--clients 5 --seconds 0.3 --rounds 1 --refreshes 3 --commands 20".split()
    )
    result = await run(args)
    assert result["refresh_ms"]["rounds"] == 3 and result["refresh_ms"]["median"] > 0
    assert result["refresh_ms"]["components"]["database"] == "healthy"
    for side in ("api_health", "hello_world"):
        assert result[side]["requests"] > 0 and result[side]["errors"] == 0
        assert result[side]["p95_ms"] >= result[side]["p50_ms"] > 0
    assert result["ratio"] == round(result["api_health"]["rps"] / result["hello_world"]["rps"], 3)
    command = result["health_command_ms"]
    for side in ("health", "whoami_baseline"):
        assert command[side]["n"] == 10 and command[side]["p95"] >= command[side]["p50"] > 0
