"""`piyasa up` answers `/healthz` before it is ready, and stops at any moment of its start.

Each test starts a fresh process on purpose: what is tested is a process's start and stop.
`PIYASA_START_HOLD=<point>` pauses start-up at a named point until a stop signal, so the
signal lands exactly there, whatever the speed of the machine. Waits have ceilings that
only catch hangs; how fast start and stop are is measured by `piyasa bench startup`.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.procs import PiyasaProcess, base_env, run_cli
from tests.waiting import HANG_S

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=HANG_S) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stopped_cleanly(proc: PiyasaProcess) -> None:
    code = proc.stop(signal.SIGTERM)
    out = proc.output()
    assert code == 0, out
    assert "Stopped." in out, out
    assert "Traceback" not in out, out


@pytest.mark.parametrize("point", ["web", "imports", "migrations", "sandbox"])
def test_sigterm_at_a_start_point_exits_0_and_leaves_the_schema_whole(
    tmp_path: Path, point: str
) -> None:
    env = base_env(tmp_path / "data", PIYASA_START_HOLD=point)
    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    proc.wait_output(f"start-up held at {point}")
    _stopped_cleanly(proc)
    demo_db = tmp_path / "data" / "demo" / "piyasa-demo.db"  # the demo's own database
    status_env = {**env, "PIYASA_START_HOLD": "", "PIYASA_DATABASE_URL": f"sqlite:///{demo_db}"}
    status = run_cli(["migrate", "--status"], status_env)
    assert status.returncode == 0, status.stderr
    if point in ("web", "imports"):  # stopped before the database was touched
        assert "at empty" in status.stdout, status.stdout
    else:  # a migration that had begun finished, or (too slow for the stop deadline) was
        # rolled back whole; never cut half-way (tests/db/test_migrations.py cuts one)
        found = re.search(r"at (\w+), newest (\w+)", status.stdout)
        assert found, status.stdout
        with sqlite3.connect(demo_db) as conn:
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        if found[1] == "empty":
            assert tables <= {"alembic_version"}, (status.stdout, tables)
        else:
            assert found[1] == found[2], status.stdout
    if point == "migrations":  # whatever the stop left there, the next start brings it up
        restarted = PiyasaProcess(["up"], {**env, "PIYASA_START_HOLD": ""}, tmp_path / "up2.log")
        try:
            restarted.wait_http("/readyz", 200)
        finally:
            _stopped_cleanly(restarted)


def test_sigterm_while_polling_and_again_during_shutdown(tmp_path: Path) -> None:
    proc = PiyasaProcess(["up"], base_env(tmp_path / "data"), tmp_path / "up.log")
    proc.wait_http("/readyz", 200)
    assert "Ready in " in proc.output()
    proc.proc.send_signal(signal.SIGTERM)
    proc.wait_output("Stopping…")
    _stopped_cleanly(proc)  # a second SIGTERM, during shutdown itself


def test_healthz_answers_while_readyz_names_the_part_still_starting(tmp_path: Path) -> None:
    proc = PiyasaProcess(
        ["up"], base_env(tmp_path / "data", PIYASA_START_HOLD="sandbox"), tmp_path / "up.log"
    )
    try:
        proc.wait_output("start-up held at sandbox")
        assert _get(proc.http_url + "/healthz")[0] == 200
        code, body = _get(proc.http_url + "/readyz")
        ready = json.loads(body)
        assert code == 503, ready
        assert ready["status"] == "starting"
        assert "sandbox" in ready["starting"] and "fleet" in ready["starting"]
        assert {"name": "database", "state": "ready"}.items() <= ready["parts"][0].items()
        code, page = _get(proc.http_url + "/?lang=en")
        assert code == 200 and b"Piyasa is starting" in page and b"sandbox" in page
        code, body = _get(proc.http_url + "/api/health")
        assert code == 503 and json.loads(body)["status"] == "starting"
    finally:
        _stopped_cleanly(proc)
