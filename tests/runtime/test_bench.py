from __future__ import annotations

import argparse

import pytest

from piyasa.bench import available

pytestmark = pytest.mark.slow


async def test_tiny_runtime_benchmark_reports_every_figure_and_loses_nothing():
    mod = available()["runtime"]
    parser = argparse.ArgumentParser()
    mod.add_arguments(parser)
    args = parser.parse_args(
        ["--bots", "4", "--chats", "2", "--seconds", "2", "--workers", "8", "--no-import-baseline"]
    )
    result = await mod.run(args)
    keys = {
        "delivered",
        "allowed_max",
        "efficiency",
        "count_429",
        "lost",
        "duplicates",
        "p95_decision_to_send_ms",
        "rss_mb",
    }
    assert keys <= set(result) and keys <= set(result["baseline"])
    assert result["lost"] == 0 and result["duplicates"] == 0
    # How much a 2 s run delivers depends on the machine's speed (the benchmark's figure),
    # not on correctness: within Telegram's limits, and nothing lost or sent twice.
    assert result["allowed_max"] > 0 and 0 <= result["delivered"] <= result["allowed_max"]
