"""`piyasa bench scale --quick --json`: two real `piyasa up` processes on PostgreSQL (a
throwaway schema) and the bench's own Redis, against the sandbox and the local LLM.

A smoke run proves the benchmark works end to end and prints every figure; the scale
figures live in docs/benchmarks.md. It asserts the guarantees, not speed: nothing lost,
nothing sent twice, no bot polled by two instances (0 × 409), nothing over the fleet cap.
The only limit is the benchmark's own per-phase ceiling and the run's, which catch hangs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, _postgres_up, skip_or_fail
from tests.e2e.procs import base_env, run_cli
from tests.waiting import HANG_S

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
# start (2 processes), spread, 10 s measured, drain, stop: each phase has its ceiling
WHOLE_RUN_CEILING_S = 3 * HANG_S
RUN_KEYS = {
    "delivered",
    "allowed",
    "efficiency",
    "count_429",
    "count_409",
    "refused_409_live",
    "lost",
    "duplicates",
    "resends_after_ambiguity",
    "decided",
    "over_cap",
    "instances",
}


@pytest.mark.timeout(WHOLE_RUN_CEILING_S + 60)
def test_quick_scale_run_loses_nothing_and_polls_each_bot_once(tmp_path: Path) -> None:
    if not _postgres_up():
        skip_or_fail(SKIP_POSTGRES)
    result = run_cli(
        ["bench", "scale", "--quick", "--json", "--postgres-url", POSTGRES_URL],
        base_env(tmp_path / "data"),
        ceiling=WHOLE_RUN_CEILING_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["benchmark"] == "scale"
    assert set(figures["runs"]) == {"2"}, figures
    assert "failover" not in figures and "baseline_naive_2" not in figures
    for key in ("load_before", "load_after", "targets", "cap_per_min", "bots", "chats"):
        assert key in figures, key
    run = figures["runs"]["2"]
    assert RUN_KEYS <= set(run), run
    assert run["decided"] > 0 and run["delivered"] > 0, run
    assert run["allowed"] > 0, run
    # Nothing marked sent that Telegram never got, nothing stuck. A row the outbox ended
    # "failed" (a definitive refusal, shown to operators) is counted in `lost` by the
    # benchmark but is not a broken guarantee; CI saw one once under load (kind not
    # recorded then): the breakdown is in the message if it comes back.
    kinds = run["lost_by_kind"]
    assert kinds["sent_not_seen"] == 0 and kinds["waiting"] == 0, run
    assert run["lost"] == sum(kinds.values()), run
    assert run["duplicates"] == 0, run
    assert run["count_409"] == 0 and run["refused_409_live"] == 0, run
    assert run["over_cap"] == 0, run
    assert len(run["instances"]) == 2
    for inst in run["instances"]:
        assert inst["cpu_s"] >= 0 and inst["peak_rss_mb"] > 0, inst
