"""`piyasa backup …` in real processes, each action once: create, list, verify,
test-restore, download, restore (refused without a terminal and without --yes; then with
--yes, a safety backup first), prune, delete, and an unknown id refused with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backup.test_faults import _fill, _state
from tests.e2e.procs import base_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _json(args: list[str], env: dict[str, str], stdin: str | None = None) -> object:
    done = run_cli([*args, "--json"], env, stdin=stdin)
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def test_every_backup_action_from_the_shell(sqlite_db_url: str, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL=sqlite_db_url)
    _fill(db, "cli", 3)
    at_backup = _state(db)
    made = _json(["backup", "create"], env)
    assert isinstance(made, dict) and made["kind"] == "manual" and made["verified_at"]
    backup_id = made["id"]
    listed = _json(["backup", "list"], env)
    assert [b["id"] for b in listed] == [backup_id]
    assert listed[0]["rows"]["settings"] == at_backup[1]
    assert _json(["backup", "verify", backup_id], env)["verified_at"]
    assert _json(["backup", "test-restore", backup_id], env)["test_restored_at"]

    dest = tmp_path / "copy.pbk"
    assert _json(["backup", "download", backup_id, str(dest)], env) == {"written": str(dest)}
    assert dest.read_bytes() == (tmp_path / "data" / "backups" / backup_id).read_bytes()

    _fill(db, "later", 2)
    changed = _state(db)
    # no terminal and no --yes: refused before anything is touched, even with the word
    refused = run_cli(["backup", "restore", backup_id], env, stdin="RESTORE\n")
    assert refused.returncode == 1 and "needs --yes" in refused.stderr, refused.stderr
    assert _state(db) == changed
    safety = _json(["backup", "restore", backup_id, "--yes"], env)
    assert isinstance(safety, dict) and safety["kind"] == "safety"
    assert safety["rows"]["settings"] == changed[1]  # the data before the restore, kept
    assert _state(db) == at_backup

    assert _json(["backup", "prune"], env) == {"deleted": []}  # manual / safety: never
    assert _json(["backup", "delete", backup_id], env) == {"deleted": backup_id}
    assert [b["id"] for b in _json(["backup", "list"], env)] == [safety["id"]]

    unknown = run_cli(["backup", "verify", "no-such.pbk", "--json"], env)
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"] == "backup.unknown"
