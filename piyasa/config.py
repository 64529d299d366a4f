"""Typed settings: defaults < config file in the data dir < environment.

A bad value stops the process with one line that names the variable, says what is
wrong and shows a good example, because operators read that line, not a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from piyasa.errors import UserFacingError

CONFIG_FILE_NAME = ".env"
SECRET_KEY_FILE_NAME = "secret.key"
# A value in the config file written by `piyasa setup` that was encrypted with the secret key.
ENCRYPTED_PREFIX = "enc:v1:"
TELEGRAM_TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")


class ConfigError(UserFacingError, ValueError):
    """A setting is unusable; the message is the single line shown to the operator."""


class Secret(str):
    """A string that never shows itself in repr, str() of containers, or logs."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


def mask(value: str | None, keep: int = 4) -> str:
    """Show only the last ``keep`` characters so an operator can tell keys apart."""
    if not value:
        return ""
    if len(value) <= keep * 2:
        return "***"
    return "***" + value[-keep:]


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on", "evet"}:
        return True
    if low in {"0", "false", "no", "off", "hayır", "hayir", ""}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use e.g. {name}=true")


def _int(name: str, raw: str, lo: int, hi: int, example: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number; use e.g. {name}={example}"
        ) from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range {lo}..{hi}; use e.g. {name}={example}")
    return value


def _chat_ids(name: str, raw: str) -> tuple[int, ...]:
    ids = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not re.fullmatch(r"-?\d{1,20}", part):
            raise ConfigError(
                f"{name}={raw!r}: {part!r} is not a numeric chat id; "
                f"use e.g. {name}=-1001234567890,123456789"
            )
        ids.append(int(part))
    return tuple(ids)


def _db_url(name: str, raw: str) -> str:
    url = raw.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in {"sqlite", "sqlite+aiosqlite"}:
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    if scheme in {"postgres", "postgresql", "postgresql+asyncpg"}:
        rest = url.split("://", 1)[1]
        if not rest or (rest.startswith("/") and len(rest) < 2):
            raise ConfigError(
                f"{name}: the PostgreSQL URL has no host/database; "
                f"use e.g. {name}=postgresql://user:pass@127.0.0.1:5432/piyasa"
            )
        return "postgresql+asyncpg://" + rest
    shown = mask_url(url)
    raise ConfigError(
        f"{name}={shown!r} is not a supported database URL (sqlite or postgresql); "
        f"use e.g. {name}=postgresql://user:pass@127.0.0.1:5432/piyasa"
    )


def _redis_url(name: str, raw: str) -> str:
    url = raw.strip()
    if not url:
        return ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"{name}={mask_url(url)!r} is not a Redis URL; use e.g. {name}=redis://127.0.0.1:6379/0"
        )
    return url


def _http_url(name: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(
            f"{name}={url!r} is not an http(s) URL; use e.g. {name}=https://api.example.com"
        )
    return url


def _telegram_token(name: str, raw: str) -> Secret:
    token = raw.strip()
    if token and not TELEGRAM_TOKEN_RE.match(token):
        raise ConfigError(
            f"{name} is not a Telegram bot token (expected <digits>:<35 characters> as @BotFather "
            f"gives it); use e.g. {name}=123456789:AAE-your-token-from-BotFather"
        )
    return Secret(token)


def _lang(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"tr", "en"}:
        raise ConfigError(f"{name}={raw!r} is not a supported language; use {name}=tr or {name}=en")
    return value


def _timezone(name: str, raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name}={raw!r} is not a known IANA time zone; use e.g. {name}=Europe/Istanbul"
        ) from None
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _log_level(name: str, raw: str) -> str:
    value = raw.strip().upper() or "INFO"
    if value not in LOG_LEVELS:
        raise ConfigError(
            f"{name}={raw!r} is not a log level; use one of {', '.join(LOG_LEVELS)}, "
            f"e.g. {name}=INFO"
        )
    return value


def _host(name: str, raw: str) -> str:
    """An IP address (v4 or v6) or a host name to bind the web server to."""
    import ipaddress

    value = raw.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if _HOSTNAME_RE.match(value):
            return value
    raise ConfigError(
        f"{name}={raw!r} is not an IP address or host name; e.g. {name}=127.0.0.1 "
        f"(or 0.0.0.0 behind a reverse proxy)"
    )


def _secret(_name: str, raw: str) -> Secret:
    return Secret(raw.strip())


def _text(_name: str, raw: str) -> str:
    return raw.strip()


def mask_url(url: str) -> str:
    """Hide the password part of a URL, e.g. for logs and error lines."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything Piyasa reads from its environment, validated."""

    data_dir: Path = Path("./data")
    database_url: str = ""
    redis_url: str = ""
    secret_key: Secret = Secret("")
    telegram_api_url: str = "https://api.telegram.org"
    admin_bot_token: Secret = Secret("")
    admin_chat_ids: tuple[int, ...] = ()
    openai_api_key: Secret = Secret("")
    openai_base_url: str = ""
    llm_model: str = "gpt-4o-mini"
    slack_bot_token: Secret = Secret("")
    slack_signing_secret: Secret = Secret("")
    slack_api_url: str = "https://slack.com/api/"
    slack_alert_channel: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sandbox_port: int = 8081
    lang: str = "tr"
    timezone: str = "UTC"  # IANA; the deployment's day for readers with no `/notify tz`
    sandbox: bool = False
    sandbox_remote: bool = False  # serve the sandbox page on a non-loopback PIYASA_HTTP_HOST
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def sqlite_default(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def database_kind(self) -> str:
        return "sqlite" if self.sqlite_default else "postgresql"

    def secret_values(self) -> list[str]:
        """Every configured secret in clear, for the log redactor: tokens, keys, the
        signing secret, each part of a ``new,old`` secret key and the metrics token."""
        found = [
            v.reveal()
            for v in (
                self.admin_bot_token,
                self.openai_api_key,
                self.slack_bot_token,
                self.slack_signing_secret,
                self.secret_key,
            )
            if v
        ]
        found.append(self.extra.get("PIYASA_METRICS_TOKEN", ""))
        found.append(self.extra.get("PIYASA_BACKUP_PASSPHRASE", ""))
        found.append(self.extra.get("PIYASA_BACKUP_S3_SECRET_KEY", ""))
        return [x for part in found for x in part.split(",") if x]

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    def describe(self) -> dict[str, Any]:
        """A safe view for humans: every secret masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = mask(value.reveal()) if value else ""
            elif f.name in {"database_url", "redis_url"}:
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out


# (env var, field, parser). OPENAI_* follow the SDK's own names.
_SPEC: list[tuple[str, str, Callable[[str, str], Any]]] = [
    ("PIYASA_DATABASE_URL", "database_url", _db_url),
    ("PIYASA_REDIS_URL", "redis_url", _redis_url),
    ("PIYASA_SECRET_KEY", "secret_key", _secret),
    ("PIYASA_TELEGRAM_API_URL", "telegram_api_url", _http_url),
    ("PIYASA_ADMIN_BOT_TOKEN", "admin_bot_token", _telegram_token),
    ("PIYASA_ADMIN_CHAT_IDS", "admin_chat_ids", _chat_ids),
    ("OPENAI_API_KEY", "openai_api_key", _secret),
    ("OPENAI_BASE_URL", "openai_base_url", _http_url),
    ("PIYASA_LLM_MODEL", "llm_model", _text),
    ("PIYASA_SLACK_BOT_TOKEN", "slack_bot_token", _secret),
    ("PIYASA_SLACK_SIGNING_SECRET", "slack_signing_secret", _secret),
    ("PIYASA_SLACK_API_URL", "slack_api_url", lambda n, r: _http_url(n, r) + "/"),
    ("PIYASA_SLACK_ALERT_CHANNEL", "slack_alert_channel", _text),
    ("PIYASA_HTTP_HOST", "http_host", _host),
    ("PIYASA_HTTP_PORT", "http_port", lambda n, r: _int(n, r, 0, 65535, 8080)),
    ("PIYASA_SANDBOX_PORT", "sandbox_port", lambda n, r: _int(n, r, 0, 65535, 8081)),
    ("PIYASA_LANG", "lang", _lang),
    ("PIYASA_TIMEZONE", "timezone", _timezone),
    ("PIYASA_SANDBOX", "sandbox", _bool),
    ("PIYASA_SANDBOX_REMOTE", "sandbox_remote", _bool),
    ("PIYASA_LOG_LEVEL", "log_level", _log_level),
]
KNOWN_VARIABLES = (*(name for name, _, _ in _SPEC), "PIYASA_DATA_DIR")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv-style file (KEY=VALUE, # comments, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:]
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE, got {line[:40]!r}")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077  # files this process creates: owner only (the CLI sets it)


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data dir (mode 0700) and prove it is writable, or fail with one clear line.

    It holds the database, the secret key, the config file and the log, so nobody but its
    owner may read it; see :func:`make_private`."""
    try:
        data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        make_private(data_dir)
        probe = data_dir / ".write-test"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE))
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"PIYASA_DATA_DIR={str(data_dir)!r} is not writable ({exc.strerror}); "
            f"use a directory you own, e.g. PIYASA_DATA_DIR=$HOME/piyasa-data"
        ) from None
    return data_dir


def make_private(data_dir: Path) -> None:
    """Take group and other permissions off the data dir and the entries directly in it
    that this user owns: an install from before they were created private (a 0644
    ``piyasa.db``, its ``-wal``/``-shm``, ``piyasa.log``). A private directory already shuts
    others out of everything below it, so deeper entries are not walked. Symlinks and
    other people's files are left alone."""
    uid = os.getuid()
    for path in (data_dir, *data_dir.iterdir()):
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not st.st_mode & 0o077:
                continue
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
        except FileNotFoundError:  # removed meanwhile (a -shm at checkpoint)
            continue


def load_or_create_secret_key(data_dir: Path) -> Secret:
    """Read the at-rest encryption key, creating it (mode 0600) on first start."""
    path = data_dir / SECRET_KEY_FILE_NAME
    if path.exists():
        return Secret(path.read_text(encoding="utf-8").strip())
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return Secret(key)


def _decrypt_values(
    merged: dict[str, str], data_dir: Path, config_path: Path, create_dirs: bool
) -> None:
    """Open ``enc:v1:`` values (secrets `piyasa setup` wrote) with the secret key, in place."""
    from piyasa.crypto import SecretBox, SecretBoxError

    raw_key = (merged.get("PIYASA_SECRET_KEY") or "").strip()
    if raw_key.startswith(ENCRYPTED_PREFIX):
        raise ConfigError("PIYASA_SECRET_KEY cannot itself be encrypted; give it in plain text")
    if not raw_key:
        key_file = data_dir / SECRET_KEY_FILE_NAME
        if not key_file.exists() and not create_dirs:
            raise ConfigError(
                f"{config_path} holds encrypted values but {key_file} is missing; restore the "
                "secret key file from your backup or set PIYASA_SECRET_KEY"
            )
        raw_key = load_or_create_secret_key(data_dir).reveal()
    box = SecretBox(raw_key)
    for name, value in list(merged.items()):
        if not value.startswith(ENCRYPTED_PREFIX):
            continue
        try:
            merged[name] = box.decrypt(value[len(ENCRYPTED_PREFIX) :])
        except SecretBoxError:
            raise ConfigError(
                f"{name} in {config_path} cannot be decrypted with the current secret key "
                f"(was {SECRET_KEY_FILE_NAME} replaced?); restore the old key or run "
                "`piyasa setup` again to re-enter it"
            ) from None


def load_settings(
    environ: Mapping[str, str] | None = None, *, create_dirs: bool = True, **overrides: Any
) -> Settings:
    """Build settings from defaults, ``DATA_DIR/.env`` and the environment (highest)."""
    env = dict(os.environ if environ is None else environ)
    data_dir = Path(env.get("PIYASA_DATA_DIR") or "./data").expanduser()
    if create_dirs:
        ensure_data_dir(data_dir)
    config_path = data_dir / CONFIG_FILE_NAME
    merged = {**read_env_file(config_path), **env}
    values: dict[str, Any] = {"data_dir": data_dir.resolve() if data_dir.exists() else data_dir}
    if any(v.startswith(ENCRYPTED_PREFIX) for v in merged.values()):
        _decrypt_values(merged, data_dir, config_path, create_dirs)
    for name, attr, parse in _SPEC:
        raw = merged.get(name)
        if raw is not None and raw != "":
            values[attr] = parse(name, raw)
    values.update(overrides)
    if not values.get("database_url"):
        values["database_url"] = f"sqlite+aiosqlite:///{(data_dir / 'piyasa.db').resolve()}"
    if not values.get("secret_key"):
        values["secret_key"] = load_or_create_secret_key(data_dir) if create_dirs else Secret("")
    values["extra"] = {k: v for k, v in merged.items() if k.startswith("PIYASA_")}
    return Settings(**values)
