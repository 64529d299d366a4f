"""`piyasa bench diagnose --mode live`: faults injected into a running `piyasa up`, and
/diagnose asked through the admin bot in the Telegram sandbox, names each one first with
its fix. Three of the twelve scenarios (a quota nearly full, a private Redis killed, no
alert destination); the rest share this harness and the in-process mode covers their
naming (tests/help). Latency figures live in docs/benchmarks.md, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli
from tests.waiting import HANG_S

pytestmark = pytest.mark.slow
SCENARIOS = ("disk nearly full", "Redis down", "no alert destination")


def test_live_faults_are_named_first_with_their_fix(tmp_path: Path) -> None:
    args = ["bench", "diagnose", "--json", "--rounds", "1", "--scenarios", ",".join(SCENARIOS)]
    # four `piyasa up` start-ups in a row (the baseline and three faults)
    result = run_cli(args, base_env(tmp_path / "data"), ceiling=3 * HANG_S)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["mode"] == "live" and figures["scenarios_right"] == "3/3", figures
    for name in SCENARIOS:
        row = figures["scenarios"][name]
        assert row["answered"] and row["named_right"] and row["fix_right"], (name, row)
        assert len(row["latency_ms"]) == 1 and row["latency_ms"][0] > 0
    assert figures["scenarios"]["disk nearly full"]["first"].endswith(
        "Disk full: no space left on device"
    )
    base = figures["baseline_no_fault"]
    assert base["answered"] and base["injection"] == "none" and base["latency_ms"]
    assert "/" in figures["inprocess_baseline"]["scenarios_right"]
    assert figures["diagnose_p95_ms"] > 0 and "p95_within_target" in figures
