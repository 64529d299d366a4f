"""Every benchmark the issues name prints its JSON, with its same-run baseline.

Tiny sizes: this proves the command works end to end; the figures themselves live in
docs/benchmarks.md (timing thresholds belong to benchmarks, not to tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.e2e.procs import base_env, run_cli
from tests.waiting import HANG_S

pytestmark = pytest.mark.slow

CASES = {
    "alerts": (
        ["--quick"],
        [
            "events",
            "notifications",
            "messages_to_operator",
            "baseline_messages_to_operator",
            "lost",
            "duplicates",
            "p95_critical_event_to_delivery_ms",
            "rss_growth_mb",
        ],
    ),
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
    "search": (["--rounds", "1"], ["search_ms", "baseline_scan_ms", "within_target"]),
    "backup": (
        ["--size-mb", "2", "--baseline-limit-s", "3"],
        ["backup", "verify_mb_s", "restore_mb_s", "baseline_shutil_copy_gzip6"],
    ),
    "diagnose": (  # the live mode: tests/bench/test_bench_diagnose_live.py
        ["--mode", "inprocess", "--rounds", "1"],
        ["scenarios_right", "baseline_no_fault", "diagnose_p95_ms"],
    ),
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
    "limits": (
        ["--decisions", "20", "--postgres-url", POSTGRES_URL, "--redis-url", REDIS_URL],
        ["baseline_memory", "redis", "postgresql"],
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
    if name == "alerts":  # the storm reached the operator on all three channels, folded
        assert all(n >= 1 for n in figures["messages_to_operator_by_channel"].values())
        assert figures["lost"] == 0 and figures["duplicates"] == 0, figures
        assert figures["messages_to_operator"] < figures["baseline_messages_to_operator"]
    if name == "limits":  # both shared stores measured, not skipped
        for store in ("redis", "postgresql"):
            assert "per_decision_p50_ms" in figures[store], figures[store]
    if name == "setup":
        assert figures["newcomer"]["messages"] >= 1 and figures["newcomer"]["taps"] >= 1
