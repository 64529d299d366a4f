"""`piyasa bot list|show|add|set|enable|disable|remove --json`: the shell's break-glass, on
the sandbox Telegram (getMe) and the data dir's SQLite; bad input exits 2 and changes
nothing; the token is read from stdin and never printed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.e2e.procs import base_env, run_cli
from tests.waiting import PatientSandbox

TOKEN = "8222000000:TEST-cli-added-fleet-bot-token-abcdefgh"


@pytest.mark.slow
async def test_bot_cli_round_trip(tmp_path: Path) -> None:
    sb = PatientSandbox(enforce_limits=False)
    url = await sb.start("127.0.0.1", 0)
    sb.add_bot(token=TOKEN, username="cli_bot", first_name="Cli Bot")
    env = base_env(tmp_path / "data", PIYASA_TELEGRAM_API_URL=url)

    async def piyasa(*args: str, stdin: str = "") -> object:
        return await asyncio.to_thread(run_cli, list(args), env, stdin=stdin)

    try:
        r = await piyasa(
            "bot", "add", "--token-stdin", "--template", "fx", "--json", stdin="nope\n"
        )
        assert r.returncode == 2 and "not a bot token" in r.stderr
        r = await piyasa(
            "bot", "add", "--token-stdin", "--template", "fx", "--json", stdin=TOKEN + "\n"
        )
        assert r.returncode == 0, r.stderr
        bot_id = json.loads(r.stdout)["id"]
        assert TOKEN not in r.stdout + r.stderr
        r = await piyasa("bot", "set", "cli_bot", "active_hours", "25:00-26:00")
        assert r.returncode == 2 and "nothing was changed" in r.stderr
        r = await piyasa("bot", "set", "cli_bot", "timezone", "Mars/Base")
        assert r.returncode == 2 and "not a known IANA time zone" in r.stderr
        r = await piyasa("bot", "set", "cli_bot", "persona.footer", "Not advice.", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["new"] == "Not advice."
        r = await piyasa("bot", "enable", "cli_bot", "--json")
        assert json.loads(r.stdout) == {"id": bot_id, "enabled": True}
        r = await piyasa("bot", "show", "@cli_bot", "--json")
        card = json.loads(r.stdout)
        assert card["enabled"] and card["active_hours"] == "00:00-24:00"
        assert card["persona"]["footer"] == "Not advice." and card["persona"]["topics"] == [
            "fx",
            "macro",
        ]
        assert TOKEN not in r.stdout
        r = await piyasa("bot", "list", "--json")
        assert [b["username"] for b in json.loads(r.stdout)] == ["cli_bot"]
        r = await piyasa("bot", "remove", "cli_bot", "--yes", "--json")
        assert r.returncode == 0, r.stderr
        r = await piyasa("bot", "list", "--json")
        assert json.loads(r.stdout) == []
    finally:
        await sb.stop()
