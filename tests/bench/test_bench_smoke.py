"""Every benchmark the issues name prints its JSON, with its same-run baseline.

Tiny sizes: this proves the command works end to end; the figures themselves live in
docs/benchmarks.md (timing thresholds belong to benchmarks, not to tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli
from tests.waiting import HANG_S

pytestmark = pytest.mark.slow

CASES = {
    "autoadjust": (
        ["--minutes", "1", "--speed", "12", "--bots", "4"],
        ["autoadjust", "baseline_no_autoadjust", "target_met"],
    ),
    "commands": (
        ["--updates", "20", "--warmup", "2"],
        ["pipeline", "echo_baseline", "p95_delta_ms", "within_target"],
    ),
    "users": (
        ["--users", "100", "--runs", "5", "--warmup", "1"],
        ["whoami_baseline", "users_first_page", "users_search", "user_card", "within_target"],
    ),
    "setup": ([], ["newcomer", "baseline_preconfigured_up_to_first_message_s"]),
    "fleet": (
        ["--bots", "20", "--chats", "5", "--runs", "3", "--warmup", "1", "--changes", "1"],
        [
            "whoami_baseline",
            "bots_first_page_query",
            "chats_first_page",
            "chats_search",
            "chat_card",
            "settings_change_to_first_honouring_decision",
            "baseline_change_by_table_refresh",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_prints_json_with_its_baseline(name: str, tmp_path: Path) -> None:
    args, keys = CASES[name]
    # A benchmark starts several processes in a row (`setup` times whole start-ups): twice
    # the ceiling of one wait.
    env = base_env(tmp_path / "data")
    result = run_cli(["bench", name, "--json", *args], env, ceiling=2 * HANG_S)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    for key in keys:
        assert key in figures, (key, figures)
    if name == "setup":
        assert figures["newcomer"]["messages"] >= 1 and figures["newcomer"]["taps"] >= 1
