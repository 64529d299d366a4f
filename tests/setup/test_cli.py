"""`piyasa setup` (non-interactive as a real process; interactive with scripted answers),
`piyasa check`, and the config file it writes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from piyasa.admin.setup.configfile import update_config
from piyasa.config import ConfigError, load_settings
from piyasa.crypto import SecretBox
from tests.e2e.procs import base_env
from tests.setup.helpers import ADMIN_TOKEN, PASSWORD, Sandbox, start_sandbox
from tests.waiting import finishes

ADMIN_CHAT = -1007200000550
PLAIN_CHAT = -1007200000551


@pytest.fixture
async def box():  # type: ignore[no-untyped-def]
    b = await start_sandbox()
    yield b
    await b.stop()


async def cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `piyasa ...` without blocking the loop the sandbox serves from."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "piyasa.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await finishes(proc.communicate(), f"`piyasa {' '.join(args)}` to exit")
    except AssertionError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


async def test_non_interactive_lists_every_problem_at_once(
    tmp_path: Path, box: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from piyasa.clicmd import setup as setup_cmd

    env = base_env(
        tmp_path / "data",
        PIYASA_TELEGRAM_API_URL=box.url,
        PIYASA_ADMIN_BOT_TOKEN="7299999999:SETUP-a-token-telegram-never-issued-0",
        PIYASA_ADMIN_PASSWORD="short",
        PIYASA_DATABASE_URL="postgresql://nobody:pw@127.0.0.1:1/none",
    )
    for key in [k for k in os.environ if k.startswith(("PIYASA_", "OPENAI_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = argparse.Namespace(
        non_interactive=True,
        json=False,
        admin_username=None,
        telegram_api_url=None,
        database_url=None,
        lang=None,
    )
    code = await setup_cmd.run(args)
    out, err = capsys.readouterr()
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip().startswith("✗")]
    text = "\n".join(lines)
    assert len(lines) == 4, err
    assert "401 Unauthorized" in text and "@BotFather" in text
    assert "PIYASA_ADMIN_USERNAME" in text
    assert "PIYASA_ADMIN_PASSWORD: the password is too short" in text
    assert "database: unreachable" in text
    assert "Traceback" not in out + err
    assert not (tmp_path / "data" / ".env").exists()


async def test_non_interactive_writes_a_sealed_0600_config_and_a_code(
    tmp_path: Path, box: Sandbox
) -> None:
    data = tmp_path / "data"
    box.llm.api_keys.add("sk-from-the-environment-0000")  # setup now tries the key for real
    env = base_env(
        data,
        PIYASA_TELEGRAM_API_URL=box.url,
        PIYASA_ADMIN_BOT_TOKEN=ADMIN_TOKEN,
        PIYASA_ADMIN_USERNAME="boss",
        PIYASA_ADMIN_PASSWORD=PASSWORD,
        OPENAI_API_KEY="sk-from-the-environment-0000",
        OPENAI_BASE_URL=box.llm_url,
    )
    code, out, err = await cli(["setup", "--non-interactive", "--json"], env)
    assert code == 0, err
    result = json.loads(out)
    assert result["bot"]["username"] == "kurulum_admin_bot"
    assert result["admin"] == "boss" and result["admin_created"]
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", result["setup_code"])
    cfg = data / ".env"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    raw = cfg.read_text()
    assert ADMIN_TOKEN not in raw and "sk-from-the-environment" not in raw
    assert "PIYASA_ADMIN_BOT_TOKEN=enc:v1:" in raw and "OPENAI_API_KEY=enc:v1:" in raw
    assert f"PIYASA_TELEGRAM_API_URL={box.url}" in raw
    settings = load_settings({"PIYASA_DATA_DIR": str(data)})
    assert settings.admin_bot_token.reveal() == ADMIN_TOKEN
    assert settings.openai_api_key.reveal() == "sk-from-the-environment-0000"
    for path in data.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    # re-running keeps the admin and hands out a fresh code
    env.pop("PIYASA_ADMIN_PASSWORD")
    code, out, err = await cli(["setup", "--non-interactive"], env)
    assert code == 0, err
    assert "Admin account: boss (existing)" in out and "/setup " in out
    assert "! alerts have no destination" in out and "PIYASA_ADMIN_CHAT_IDS" in out
    assert "open a private chat with @kurulum_admin_bot" in out


async def test_interactive_setup_verifies_the_token_and_turns_totp_on(
    tmp_path: Path, box: Sandbox
) -> None:
    from piyasa.clicmd.setup import Terminal, interactive
    from piyasa.db.engine import create_engine, make_sessionmaker
    from piyasa.db.models import User
    from tests.setup.helpers import settings_for

    settings = settings_for(tmp_path / "data", box.url)
    said: list[str] = []
    secrets = iter(
        [
            "7299999999:SETUP-a-token-telegram-never-issued-0",
            ADMIN_TOKEN,
            "weak",
            PASSWORD,
            PASSWORD,
        ]
    )

    def ask(prompt: str) -> str:
        if prompt.startswith("Username"):
            return "ayse"
        if prompt.startswith("Turn on two-factor"):
            return "y"
        if prompt.startswith("Admin chat id"):
            return next(chats)
        if prompt.startswith("Code shown"):
            key = next(line for line in said if line.strip().startswith("key: ")).split()[-1]
            return pyotp.TOTP(key).now()
        raise AssertionError(prompt)

    # issue 12 item 8: the admin chat is asked for and checked (getChat, getChatMember)
    box.sb.add_group(ADMIN_CHAT, "Yöneticiler", members=[box.admin_bot_id])
    box.sb.add_group(PLAIN_CHAT, "Sade", members=[box.admin_bot_id])
    box.sb.set_admin(ADMIN_CHAT, box.admin_bot_id)
    chats = iter(["-1007200000555", str(PLAIN_CHAT), str(ADMIN_CHAT)])
    term = Terminal(say=said.append, ask=ask, ask_secret=lambda _p: next(secrets))
    code = await interactive(settings, {}, term)
    text = "\n".join(said)
    assert code == 0, text
    assert "cannot see chat -1007200000555" in text
    assert f"in {PLAIN_CHAT} the admin bot is a plain member" in text
    assert f"✓ Yöneticiler ({ADMIN_CHAT}): alerts will be posted there" in text
    assert load_settings({"PIYASA_DATA_DIR": str(tmp_path / "data")}).admin_chat_ids == (
        ADMIN_CHAT,
    )
    assert "401 Unauthorized" in text  # the first token was refused, then asked again
    assert "✓ @kurulum_admin_bot (Piyasa Admin)" in text
    assert "refused: the password is too short" in text and "█" in text  # then the QR
    assert "two-factor codes are on" in text
    assert "/setup " in text and "@kurulum_admin_bot" in text
    engine = create_engine(settings.database_url)
    async with make_sessionmaker(engine)() as s:
        user = await s.scalar(select(User).where(User.username == "ayse"))
        assert user.totp_enabled and user.role == "admin"
    await engine.dispose()


def test_config_file_keeps_hand_edits_and_a_wrong_key_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".env").write_text("# mine\nPIYASA_LANG=en\n")
    key = load_settings({"PIYASA_DATA_DIR": str(data)}).secret_key.reveal()
    update_config(
        data,
        {"PIYASA_ADMIN_BOT_TOKEN": ADMIN_TOKEN, "PIYASA_REDIS_URL": "redis://:pw@h:6379/0"},
        SecretBox(key),
    )
    raw = (data / ".env").read_text()
    assert raw.startswith("# mine\nPIYASA_LANG=en\n") and "pw@" not in raw
    update_config(data, {"PIYASA_LANG": "tr", "PIYASA_REDIS_URL": None}, SecretBox(key))
    s = load_settings({"PIYASA_DATA_DIR": str(data)})
    assert (s.lang, s.redis_url, s.admin_bot_token.reveal()) == ("tr", "", ADMIN_TOKEN)
    (data / "secret.key").write_text("another-key-entirely-000000000000000\n")
    with pytest.raises(ConfigError, match=r"PIYASA_ADMIN_BOT_TOKEN in .* cannot be decrypted"):
        load_settings({"PIYASA_DATA_DIR": str(data)})


async def test_check_json_exits_1_on_critical_with_the_fix(
    tmp_path: Path, box: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from piyasa.clicmd import check

    for key in [k for k in os.environ if k.startswith(("PIYASA_", "OPENAI_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIYASA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIYASA_TELEGRAM_API_URL", box.url)
    code = await check.run(argparse.Namespace(json=True))
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"], report
    names = {c["name"]: c for c in report["checks"]}
    assert names["admin_bot"]["state"] == "warning" and "piyasa setup" in names["admin_bot"]["fix"]
    assert {"python", "packages", "disk", "database", "schema", "redis", "llm"} <= set(names)
    # issue 12 item 8: no admin chat and no Slack alert channel -> alerts go nowhere
    assert names["alerts"]["state"] == "warning"
    assert "no destination" in names["alerts"]["summary"]
    assert "PIYASA_ADMIN_CHAT_IDS" in names["alerts"]["fix"]
    monkeypatch.setenv("PIYASA_ADMIN_BOT_TOKEN", "7299999999:SETUP-a-token-telegram-never-issued-0")
    monkeypatch.setenv("PIYASA_REDIS_URL", "redis://127.0.0.1:1/0")
    code = await check.run(argparse.Namespace(json=False))
    out = capsys.readouterr().out
    assert code == 1
    assert "✗ admin_bot" in out and "Telegram rejected the token" in out
    assert "✗ redis" in out and "critical problem(s)" in out


async def test_check_exit_code_from_a_real_process(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL="postgresql://nobody:pw@127.0.0.1:1/x")
    code, out, _err = await cli(["check", "--json"], env)
    report = json.loads(out)
    assert code == 1 and report["critical"] >= 1
    db = next(c for c in report["checks"] if c["name"] == "database")
    assert db["state"] == "critical" and "PIYASA_DATABASE_URL" in db["fix"]


async def test_non_interactive_checks_every_connection_and_creates_nothing_on_failure(
    tmp_path: Path, box: Sandbox
) -> None:
    """Issue 12 item 10: a malformed token, a common password, an unreachable Redis and a
    rejected LLM key are all listed in one run, as a real process, and nothing exists after
    it: no schema, no admin, no config file."""
    import asyncpg

    from tests.conftest import POSTGRES_URL, postgres_available, skip_or_fail

    if not postgres_available():
        skip_or_fail("PostgreSQL not reachable at PIYASA_TEST_POSTGRES_URL")
    schema = "setup_pf_" + os.urandom(4).hex()
    conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    data = tmp_path / "data"
    env = base_env(
        data,
        PIYASA_TELEGRAM_API_URL=box.url,
        PIYASA_ADMIN_BOT_TOKEN="not-a-token",
        PIYASA_ADMIN_USERNAME="boss",
        PIYASA_ADMIN_PASSWORD="password1234",
        PIYASA_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
        PIYASA_REDIS_URL="redis://127.0.0.1:1/0",
        OPENAI_API_KEY="sk-the-provider-never-issued-this",
        OPENAI_BASE_URL=box.llm_url,
    )
    try:
        code, out, err = await cli(["setup", "--non-interactive"], env)
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    lines = [line for line in err.splitlines() if line.strip().startswith("✗")]
    text = "\n".join(lines)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert "PIYASA_ADMIN_BOT_TOKEN is not a Telegram bot token" in text
    assert "PIYASA_ADMIN_PASSWORD" in text and "common passwords" in text
    assert "PIYASA_REDIS_URL" in text and "127.0.0.1:1" in text
    assert "LLM at" in text and "unauthorized" in text
    assert len(lines) == 4, err
    assert not tables  # no schema was created, so no admin either
    assert not (data / ".env").exists()
    assert "sk-the-provider" not in out + err
