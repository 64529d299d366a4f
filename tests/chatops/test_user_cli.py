"""`piyasa user add|list|link-code`: break-glass administration from the shell."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli


def piyasa(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # stdin is always a pipe (never a terminal), as the "no password set" check needs.
    return run_cli(list(args), base_env(data_dir), stdin=stdin or "")


@pytest.mark.slow
def test_user_add_list_and_link_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = piyasa(
        data,
        "user",
        "add",
        "ayse",
        "--role",
        "admin",
        "--telegram-id",
        "12345",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert r.returncode == 0, r.stderr
    assert "created ayse (admin)" in r.stdout and "telegram 12345" in r.stdout
    r = piyasa(data, "user", "add", "mert", "--role", "viewer", "--slack-id", "U0MERT")
    assert r.returncode == 0 and "no password set" in r.stdout  # stdin is not a terminal
    r = piyasa(data, "user", "add", "ayse", "--role", "viewer")
    assert r.returncode == 2 and "already exists" in r.stderr
    r = piyasa(data, "user", "add", "Bad Name!", "--role", "viewer")
    assert r.returncode == 2 and "not valid" in r.stderr
    r = piyasa(data, "user", "add", "short", "--role", "viewer", "--password-stdin", stdin="x\n")
    assert r.returncode == 2 and "at least 12" in r.stderr
    r = piyasa(data, "user", "list", "--json")
    users = {u["username"]: u for u in json.loads(r.stdout)}
    assert users["ayse"]["has_password"] and users["ayse"]["telegram_ids"] == ["12345"]
    assert users["mert"]["slack_ids"] == ["U0MERT"] and not users["mert"]["has_password"]
    assert "a-long-enough-password" not in r.stdout
    r = piyasa(data, "user", "list")
    assert "ayse" in r.stdout and "tg:12345" in r.stdout
    r = piyasa(data, "user", "link-code", "mert")
    assert r.returncode == 0 and "/link" in r.stderr
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", r.stdout.strip()), r.stdout
    r = piyasa(data, "user", "link-code", "nobody")
    assert r.returncode == 2 and "no user named" in r.stderr
    # the hash on disk is argon2id at the ASVS parameters, and no password is in the file
    import sqlite3

    db = sqlite3.connect(data / "piyasa.db")
    (h,) = db.execute("select password_hash from users where username='ayse'").fetchone()
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert b"a-long-enough-password" not in (data / "piyasa.db").read_bytes()
