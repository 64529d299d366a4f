"""`piyasa up --detach`, `status`, `restart`, `stop` through the pid file, as real processes.

Fresh processes are the point: the test starts, restarts and stops detached ones and
checks that each pid is a new process and the old one is gone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli

pytestmark = pytest.mark.e2e


def test_detach_status_restart_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = base_env(data)
    try:
        started = run_cli(["up", "--detach", "--sandbox"], env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "running in the background" in started.stdout
        info = json.loads((data / "piyasa.pid").read_text())
        assert info["args"] == ["--sandbox"]
        again = run_cli(["up", "--detach"], env)
        assert again.returncode == 1 and "already running" in again.stderr

        st = run_cli(["status", "--json"], env)
        status = json.loads(st.stdout)
        assert st.returncode == 0 and status["running"] and status["healthz"] == 200
        assert status["pid"] == info["pid"]

        restarted = run_cli(["restart"], env)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        new = json.loads((data / "piyasa.pid").read_text())
        assert new["pid"] != info["pid"] and new["args"] == ["--sandbox"]
        with pytest.raises(ProcessLookupError):
            os.kill(info["pid"], 0)

        stopped = run_cli(["stop"], env)
        assert stopped.returncode == 0 and f"Stopped Piyasa (pid {new['pid']})" in stopped.stdout
        assert not (data / "piyasa.pid").exists()
        st = run_cli(["status"], env)
        assert st.returncode == 3 and "not running" in st.stdout
        log = (data / "piyasa.log").read_text()
        assert log.count("Stopped.") == 2 and "Traceback" not in log
        # the log, database, pid file and keys it left are for the owner's eyes only
        private = {p.name: oct(p.stat().st_mode & 0o777) for p in (data, *data.iterdir())}
        assert set(private.values()) <= {"0o600", "0o700"}, private
    finally:
        run_cli(["stop"], env)
