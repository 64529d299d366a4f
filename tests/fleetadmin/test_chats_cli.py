"""`piyasa chat …` and `piyasa settings …` in process against a SQLite data dir."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from piyasa.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):  # type: ignore[no-untyped-def]
    for key in [k for k in os.environ if k.startswith("PIYASA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(tmp_path / "data"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def add_group(title: str, telegram_id: int) -> None:
    from piyasa.clicmd.user import _with_services
    from piyasa.db.models import Chat

    async def insert(services):  # type: ignore[no-untyped-def]
        async with services.sessions() as session, session.begin():
            session.add(Chat(telegram_id=telegram_id, title=title, topics=["bist"]))

    asyncio.run(_with_services(insert))


def test_chat_cli(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("chat", "list")[0] == 0  # creates the schema
    add_group("Borsa Sohbet", -1001)
    code, out, _ = cli("chat", "list", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["title"] == "Borsa Sohbet" and row["enabled"] is True
    code, out, _ = cli("chat", "set", "-1001", "--topics", "fx, macro", "--budget", "60", "--json")
    assert code == 0 and json.loads(out)["topics"] == ["fx", "macro"]
    # a bad value among good ones changes nothing
    code, _, err = cli("chat", "set", "-1001", "--title", "Yeni", "--topics", " , ")
    assert code == 2 and "at least one topic" in err
    code, out, _ = cli("chat", "show", "-1001", "--json")
    card = json.loads(out)["chat"]
    assert (card["title"], card["topics"], card["msg_budget"]) == (
        "Borsa Sohbet",
        ["fx", "macro"],
        60,
    )
    assert cli("chat", "remove", "-1001")[0] == 2  # still enabled
    assert cli("chat", "disable", "-1001")[0] == 0
    code, out, _ = cli("chat", "remove", "-1001", "--json")
    assert code == 0 and json.loads(out) == {"removed": "Borsa Sohbet"}
    code, _, err = cli("chat", "add", "not-a-chat")
    assert code == 2 and "not a chat id" in err


def test_settings_cli(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("settings", "get", "scale_factor", "--json")
    assert code == 0 and json.loads(out)["value"] == 1.0
    code, out, _ = cli("settings", "set", "scale_factor", "2", "--reason", "busy day", "--json")
    change = json.loads(out)
    assert (change["old"], change["new"], change["version"], change["actor"]) == (
        1.0,
        2.0,
        1,
        "cli",
    )
    code, _, err = cli("settings", "set", "scale_factor", "11")
    assert code == 2 and "within 0 – 10" in err
    code, out, _ = cli("settings", "history", "--json")
    assert [c["new"] for c in json.loads(out)] == [2.0]
    code, out, _ = cli("settings", "undo", "--json")
    assert json.loads(out)["new"] == 1.0
    code, out, _ = cli("settings", "get")
    assert code == 0 and "scale_factor" in out and "llm_base_url" in out
