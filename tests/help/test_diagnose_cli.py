"""`piyasa diagnose [--json] [--markdown FILE]`: the troubleshooter from the shell, on a
fresh data dir whose JSON log holds a burst of SQLite lock errors; the database need not
be up (a problem it reports, not one that stops it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from piyasa.cli import main
from tests.help.test_diagnose_chat import SECRET, write_log


def test_json_and_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_log(data)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(data))  # the process's configuration
    code = main(["diagnose", "--json", "--markdown", str(tmp_path / "r.md")])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # a critical issue
    assert out["issues"][0]["entry"] == "db-locked" and out["issues"][0]["severity"] == "critical"
    assert out["score"] == 100 - sum(
        {"critical": 25, "warning": 10}[i["severity"]] for i in out["issues"]
    )
    assert {"health", "checks", "logs", "fleet"} <= set(out["counts"])
    md = (tmp_path / "r.md").read_text()
    assert md.startswith("# Piyasa diagnosis") and "`db-locked`" in md and SECRET not in md
    assert main(["diagnose", "--lang", "tr"]) == 1
    assert "Sağlık puanı" in capsys.readouterr().out
