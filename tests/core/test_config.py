"""Settings: precedence, validation with one clear line, secrets never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from piyasa.config import ConfigError, Secret, load_settings, mask, mask_url

GOOD_TOKEN = "123456789:AAE-abcdefghijklmnopqrstuvwxyz012345"


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PIYASA_DATA_DIR": str(tmp_path / "data"), **extra}


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = load_settings(env(tmp_path))
    assert s.database_url.startswith("sqlite+aiosqlite:///")
    assert s.database_url.endswith("/data/piyasa.db")
    assert s.redis_url == ""
    assert (s.http_host, s.http_port, s.lang) == ("127.0.0.1", 8080, "tr")
    assert s.telegram_api_url == "https://api.telegram.org"


def test_secret_key_generated_with_mode_0600_and_stable(tmp_path: Path) -> None:
    first = load_settings(env(tmp_path))
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings(env(tmp_path)).secret_key == first.secret_key
    assert len(first.secret_key.reveal()) >= 32


def test_environment_beats_config_file_beats_defaults(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".env").write_text("PIYASA_HTTP_PORT=9001\nPIYASA_LANG=en\n# comment\n")
    s = load_settings(env(tmp_path, PIYASA_HTTP_PORT="9002"))
    assert s.http_port == 9002
    assert s.lang == "en"


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        (
            "PIYASA_DATABASE_URL",
            "mysql://root@localhost/x",
            ["PIYASA_DATABASE_URL", "postgresql://"],
        ),
        ("PIYASA_ADMIN_BOT_TOKEN", "not-a-token", ["PIYASA_ADMIN_BOT_TOKEN", "123456789:"]),
        ("PIYASA_HTTP_PORT", "eighty", ["PIYASA_HTTP_PORT", "whole number", "8080"]),
        ("PIYASA_HTTP_PORT", "70000", ["PIYASA_HTTP_PORT", "out of range"]),
        ("PIYASA_LANG", "de", ["PIYASA_LANG", "tr", "en"]),
        ("PIYASA_REDIS_URL", "localhost:6379", ["PIYASA_REDIS_URL", "redis://"]),
        ("PIYASA_ADMIN_CHAT_IDS", "-100123,abc", ["PIYASA_ADMIN_CHAT_IDS", "'abc'"]),
        ("PIYASA_TELEGRAM_API_URL", "ftp://x", ["PIYASA_TELEGRAM_API_URL", "https://"]),
        ("PIYASA_LOG_LEVEL", "verbose", ["PIYASA_LOG_LEVEL", "DEBUG", "INFO"]),
        ("PIYASA_HTTP_HOST", "http://0.0.0.0", ["PIYASA_HTTP_HOST", "127.0.0.1"]),
        ("PIYASA_HTTP_HOST", "bad host!", ["PIYASA_HTTP_HOST", "IP address"]),
    ],
)
def test_bad_value_names_variable_problem_and_example(
    tmp_path: Path, var: str, value: str, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, **{var: value}))
    line = str(info.value)
    assert "\n" not in line
    for word in words:
        assert word in line


def test_malformed_token_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, PIYASA_ADMIN_BOT_TOKEN="12345:short-secret-part"))
    assert "short-secret-part" not in str(info.value)


def test_database_password_masked_in_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, PIYASA_DATABASE_URL="oracle://u:hunter2secret@h/db"))
    assert "hunter2secret" not in str(info.value)


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="PIYASA_DATA_DIR"):
        load_settings({"PIYASA_DATA_DIR": str(blocker / "sub")})


def test_secrets_masked_in_repr_and_describe(tmp_path: Path) -> None:
    s = load_settings(
        env(
            tmp_path,
            PIYASA_ADMIN_BOT_TOKEN=GOOD_TOKEN,
            OPENAI_API_KEY="sk-live-verysecretkey123456",
            PIYASA_DATABASE_URL="postgresql://piyasa:dbpass123@127.0.0.1/piyasa",
        )
    )
    shown = repr(s) + str(s.describe())
    for secret in (GOOD_TOKEN, "sk-live-verysecretkey123456", "dbpass123", s.secret_key.reveal()):
        assert secret not in shown
    assert s.admin_bot_token.reveal() == GOOD_TOKEN
    assert s.database_url == "postgresql+asyncpg://piyasa:dbpass123@127.0.0.1/piyasa"
    assert s.admin_chat_ids == ()


def test_admin_chat_ids_parsed(tmp_path: Path) -> None:
    s = load_settings(env(tmp_path, PIYASA_ADMIN_CHAT_IDS="-1001234567890, 42"))
    assert s.admin_chat_ids == (-1001234567890, 42)


def test_openai_standard_names(tmp_path: Path) -> None:
    s = load_settings(
        env(tmp_path, OPENAI_API_KEY="sk-abc", OPENAI_BASE_URL="http://127.0.0.1:9/v1/")
    )
    assert s.openai_api_key.reveal() == "sk-abc"
    assert s.openai_base_url == "http://127.0.0.1:9/v1"


def test_mask_helpers() -> None:
    assert mask("sk-1234567890abcdef") == "***cdef"
    assert mask("short") == "***"
    assert mask_url("postgresql://u:p4ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert repr(Secret("x" * 20)) == "Secret('***')"


def test_real_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIYASA_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("PIYASA_LANG", "en")
    assert load_settings().lang == "en"
    assert os.path.isdir(tmp_path / "d")
