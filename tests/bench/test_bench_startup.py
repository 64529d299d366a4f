"""`piyasa bench startup --json --runs 1` prints its figures with the same-run baseline.

One launch only proves the benchmark works end to end; the figures live in
docs/benchmarks.md. The only limit here is the benchmark's own 120 s ceiling per phase,
which catches a hung launch or stop (reported as a failure); no timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli

pytestmark = pytest.mark.slow

# One run: baseline + launch (ready + stop) + migrate + four commands, 120 s each at most.
WHOLE_RUN_CEILING_S = 9 * 120


@pytest.mark.timeout(WHOLE_RUN_CEILING_S + 60)
def test_startup_benchmark_prints_json_with_its_baseline(tmp_path: Path) -> None:
    result = run_cli(
        ["bench", "startup", "--json", "--runs", "1", "--ceiling", "120"],
        base_env(tmp_path / "data"),
        ceiling=WHOLE_RUN_CEILING_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    for key in ("baseline_import_aiogram_types", "up", "commands", "targets", "met", "all_met"):
        assert key in figures, (key, figures)
    assert figures["baseline_import_aiogram_types"]["failures"] == 0, figures
    up = figures["up"]
    assert up["failures"] == 0, up["samples"]  # no hang, no early exit
    for key in ("healthz_s", "ready_s", "stop_s", "cpu_s", "rss_mb"):
        assert up[key] is not None and up[key] > 0, (key, up)
    assert set(figures["commands"]) == {"--help", "user list", "migrate --status", "check"}
    for name, command in figures["commands"].items():
        assert command["exit_codes"] == [0], (name, command)
        for key in ("wall_s", "cpu_s", "import_cpu_s", "max_rss_mb"):
            assert command[key] is not None, (name, key, command)
        assert command["aiogram_imported"] is False, (name, command)
    assert set(figures["met"]) == {"healthz_s", "ready_s", "stop_s", "commands_without_aiogram"}
