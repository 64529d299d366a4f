"""`piyasa bench analytics --quick --json` prints its figures with the raw-SQL baseline.

Tiny sizes: this proves the command works end to end; the figures live in
docs/benchmarks.md (timing thresholds belong to benchmarks, not to tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli
from tests.waiting import HANG_S

pytestmark = pytest.mark.slow


def test_analytics_bench_prints_json_with_its_baseline(tmp_path: Path) -> None:
    result = run_cli(
        ["bench", "analytics", "--quick", "--json"], base_env(tmp_path / "data"), ceiling=HANG_S
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert set(figures["sizes"]) == {"3000", "6000"}
    for size in figures["sizes"].values():
        for key in ("overview_24h", "overview_30d", "bot_detail_24h", "bot_detail_30d"):
            assert size[key]["p95_ms"] > 0
        assert size["baseline_raw_sql_overview_30d"]["p95_ms"] > 0
        # The sketch's bound: ≤ 2 % relative error against the raw rows.
        assert max(size["percentile_error"].values()) <= 0.02
    assert "overview_30d" in figures["ratio_big_small"]
    assert {"rollups_off_path", "rollups_on_path", "rollup_job", "overhead"} <= set(
        figures["ingest_ms_per_message"]
    )
