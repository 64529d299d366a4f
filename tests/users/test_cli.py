"""`piyasa user …` break-glass CLI, in process against a SQLite data dir."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from piyasa.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):  # type: ignore[no-untyped-def]
    for key in [k for k in __import__("os").environ if k.startswith("PIYASA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(tmp_path / "data"))

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["user", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_break_glass_user_cli(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("add", "root", "--role", "admin")[0] == 0
    code, out, _ = cli("add", "ayse", "--role", "viewer", "--telegram-id", "42")
    assert code == 0 and "telegram 42" in out
    code, _, err = cli(
        "add", "weak", "--role", "viewer", "--password-stdin", stdin="password1234\n"
    )
    assert code == 2 and "common passwords" in err
    assert cli("set-role", "ayse", "operator")[0] == 0
    code, out, _ = cli("list", "--json")
    users = {u["username"]: u for u in json.loads(out)}
    assert users["ayse"]["role"] == "operator" and users["ayse"]["telegram_ids"] == ["42"]
    code, out, _ = cli("list", "--role", "admin")
    assert "root" in out and "ayse" not in out
    code, out, err = cli("reset-password", "ayse")
    temp = out.strip()
    assert code == 0 and len(temp) == 19 and "shown once" in err
    code, out, _ = cli("show", "ayse", "--json")
    card = json.loads(out)
    assert card["must_change_password"] and card["identities"][0]["external_id"] == "42"
    assert temp not in out
    code, out, _ = cli("show", "ayse")
    assert "must change password" in out and "identity" in out
    assert cli("lock", "ayse")[0] == 0 and json.loads(cli("show", "ayse", "--json")[1])["locked"]
    assert cli("unlock", "ayse")[0] == 0
    ident = card["identities"][0]["id"]
    code, out, _ = cli("revoke", "ayse", "--identity", str(ident))
    assert code == 0 and "unlinked" in out
    assert cli("revoke", "ayse", "--all")[0] == 0
    assert cli("mfa-reset", "ayse")[0] == 0
    # the last active admin is protected here too
    code, _, err = cli("set-role", "root", "viewer")
    assert code == 2 and "no active admin" in err
    code, _, err = cli("delete", "root", "--yes")
    assert code == 2 and "no active admin" in err
    code, _, err = cli("delete", "ayse")  # stdin is not a terminal: needs --yes
    assert code == 2 and "--yes" in err
    assert cli("delete", "ayse", "--yes")[0] == 0
    code, _, err = cli("show", "ayse")
    assert code == 2 and "no user" in err
