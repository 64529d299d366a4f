"""`piyasa check` says whether the PostgreSQL client tools that backups need are installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from piyasa.admin.health.model import State
from piyasa.admin.setup.checks import machine_checks
from piyasa.config import load_settings


def _pg_tools(tmp_path: Path, url: str = "") -> tuple[State, str, str]:
    env = {"PIYASA_DATA_DIR": str(tmp_path / "data")}
    if url:
        env["PIYASA_DATABASE_URL"] = url
    check = next(c for c in machine_checks(load_settings(env)) if c.name == "pg_tools")
    return check.state, check.summary, check.fix


def test_found_tools_are_healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"  # the tools on PATH (executables named like them)
    bin_dir.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    state, summary, _ = _pg_tools(tmp_path, "postgresql://u@127.0.0.1:5432/piyasa")
    assert state is State.HEALTHY and "pg_dump" in summary


def test_missing_tools_warn_on_postgresql_and_are_optional_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a PATH without the tools
    os.makedirs(tmp_path / "empty-bin")
    state, summary, fix = _pg_tools(tmp_path, "postgresql://u@127.0.0.1:5432/piyasa")
    assert state is State.WARNING
    assert "pg_dump" in summary and "pg_restore" in summary
    assert "postgresql-client" in fix
    state, summary, _ = _pg_tools(tmp_path)
    assert state is State.UNKNOWN and "optional with SQLite" in summary
