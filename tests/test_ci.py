"""CI cannot be fooled: a test skipped for a missing PostgreSQL, Redis or Chromium fails the
run whatever its reason says, and with PIYASA_REQUIRE_SERVICES=1 such a test fails outright.
Also the under-load runner: it reports the command's outcome and never leaves its load behind."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import SERVICE_WORDS

ROOT = Path(__file__).resolve().parent.parent
SKIPS = ROOT / ".ci" / "skips.py"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def junit(tmp_path: Path, *skips: tuple[str, str]) -> Path:
    """A JUnit report as pytest writes it: one passing test, then one skip per (name, reason)."""
    cases = ['<testcase classname="tests.core.test_x" name="test_ok" time="0.01" />']
    for name, reason in skips:
        cases.append(
            f'<testcase classname="tests.core.test_x" name="{name}" time="0.00">'
            f'<skipped type="pytest.skip" message="{reason}">'
            f"/work/piyasa/tests/e2e/chromium.py:32: {reason}</skipped></testcase>"
        )
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="0" failures="0" skipped="{len(skips)}" '
        f'tests="{len(cases)}">{"".join(cases)}</testsuite></testsuites>',
        encoding="utf-8",
    )
    return path


def check_skips(report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SKIPS), str(report)], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    "reason",
    ["redis server absent", "no CHROMIUM here", "Postgres is down", "headless chrome missing"],
)
def test_a_skip_naming_a_service_fails_ci_and_is_listed(tmp_path: Path, reason: str) -> None:
    result = check_skips(junit(tmp_path, ("test_needs_it", reason), ("test_other", "on Windows")))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"tests.core.test_x::test_needs_it: {reason}" in result.stderr
    assert "test_other" not in result.stderr


def test_unrelated_skips_pass_even_from_a_file_named_after_a_service(tmp_path: Path) -> None:
    # The body of each <skipped> names tests/e2e/chromium.py: only the reason may count.
    result = check_skips(junit(tmp_path, ("test_a", "needs Linux"), ("test_b", "slow only")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 other skip(s)" in result.stdout


def test_a_missing_report_fails_ci(tmp_path: Path) -> None:
    result = check_skips(tmp_path / "absent.xml")
    assert result.returncode == 2
    assert "cannot read the test report" in result.stderr


def test_conftest_and_ci_look_for_the_same_words() -> None:
    spec = importlib.util.spec_from_file_location("ci_skips", SKIPS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SERVICE_WORDS.pattern == SERVICE_WORDS.pattern
    assert module.SERVICE_WORDS.flags & re.IGNORECASE and SERVICE_WORDS.flags & re.IGNORECASE


def run_pytest(tmp_path: Path, target: list[str], **env: str) -> tuple[int, ET.Element, str]:
    """pytest in a child process on ``target`` with its own JUnit report (never CI's)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PIYASA_"))}
    report = tmp_path / "child-junit.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *target,
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
        ],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    return result.returncode, suite, result.stdout + result.stderr


def outcomes(suite: ET.Element) -> dict[str, int]:
    return {k: int(suite.get(k, 0)) for k in ("tests", "errors", "failures", "skipped")}


def test_required_redis_that_does_not_answer_fails_the_cache_tests(tmp_path: Path) -> None:
    target = ["tests/core/test_cache.py", "-k", "redis"]
    code, suite, out = run_pytest(
        tmp_path, target, PIYASA_TEST_REDIS_URL=UNREACHABLE_REDIS, PIYASA_REQUIRE_SERVICES="1"
    )
    counts = outcomes(suite)
    assert code == 1, out
    assert counts["skipped"] == 0 and counts["errors"] + counts["failures"] == counts["tests"] > 0
    assert "Redis not reachable at PIYASA_TEST_REDIS_URL" in out


def test_without_the_requirement_they_skip_and_ci_still_catches_it(tmp_path: Path) -> None:
    target = ["tests/core/test_cache.py", "-k", "redis"]
    code, suite, out = run_pytest(tmp_path, target, PIYASA_TEST_REDIS_URL=UNREACHABLE_REDIS)
    counts = outcomes(suite)
    assert code == 0, out
    assert counts["skipped"] == counts["tests"] > 0
    result = check_skips(tmp_path / "child-junit.xml")
    assert result.returncode == 1
    assert "test_cache::test_set_get_delete[redis]" in result.stderr


def test_a_plain_pytest_skip_for_a_service_also_fails_when_required(tmp_path: Path) -> None:
    """tests/runtime/conftest.py skips with pytest.skip itself; conftest's report hook still
    turns that into a failure."""
    target = ["tests/runtime/test_breaker_buckets.py", "-k", "redis"]
    code, suite, out = run_pytest(
        tmp_path, target, PIYASA_TEST_REDIS_URL=UNREACHABLE_REDIS, PIYASA_REQUIRE_SERVICES="1"
    )
    counts = outcomes(suite)
    assert code == 1, out
    assert counts["skipped"] == 0 and counts["errors"] + counts["failures"] == counts["tests"] > 0


def test_readme_test_command_is_extracted_as_ci_runs_it() -> None:
    result = subprocess.run(
        [str(ROOT / ".ci" / "test-command")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    marker = lines.index("<!-- test-command -->")
    assert lines[marker + 1].startswith("```")
    assert result.stdout.strip() == lines[marker + 2].strip()
    assert "pytest" in result.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.parametrize(
    ("command", "code", "verdict"), [("true", 0, "PASS"), ("exit 3", 3, "FAIL")]
)
def test_under_load_reports_the_outcome_and_stops_its_load(
    command: str, code: int, verdict: str
) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "ci-under-load"), "--load", "1", "--command", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"ci-under-load: {verdict} \(exit {code}\) in [0-9.]+s under .*", last)
    pids = re.search(r"\(pids ([0-9 ]+)\)", result.stdout)
    assert pids, result.stdout
    assert not [p for p in map(int, pids.group(1).split()) if _alive(p)]
