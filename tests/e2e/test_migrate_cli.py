"""`piyasa migrate` on both databases, including downgrade and status."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli

pytestmark = pytest.mark.e2e


def test_migrate_up_status_down(db_url: str, tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL=db_url)
    up = run_cli(["migrate"], env)
    assert up.returncode == 0, up.stderr
    assert "empty ->" in up.stdout
    status = run_cli(["migrate", "--status"], env)
    assert "newest" in status.stdout
    down = run_cli(["migrate", "--downgrade", "--to", "base"], env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip().endswith("-> empty")
