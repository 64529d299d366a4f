"""`piyasa kb search|show`: the knowledge base from the shell (no database needed)."""

from __future__ import annotations

import json

import pytest

from piyasa.cli import main


def test_search_json_turkish_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "search", "VERİTABANI", "kilitli", "--lang", "tr", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["id"] == "db-locked" and "kilitli" in out["results"][0]["title"]
    assert main(["kb", "search", "qwxzvbnm"]) == 1
    assert "Nothing found" in capsys.readouterr().out


def test_show_entry_and_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "show", "tg-429", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fix"] == "lower_scale" and data["steps"] and "tg-not-modified" in data["related"]
    assert main(["kb", "show", "tg-403-kicked", "--lang", "tr"]) == 0
    assert "gruptan çıkarılmış" in capsys.readouterr().out
    assert main(["kb", "show", "tg-42"]) == 1
    assert "Closest: tg-429" in capsys.readouterr().out
