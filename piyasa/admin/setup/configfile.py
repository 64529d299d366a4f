"""The data dir's config file (``DATA_DIR/.env``), written atomically with mode 0600.

Secrets never reach the file in plain text: they are stored as ``enc:v1:<Fernet token>``,
sealed with the data dir's secret key, and :func:`piyasa.config.load_settings` opens them.
Lines the operator wrote by hand (comments, unknown keys) are kept in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from piyasa.config import CONFIG_FILE_NAME, ENCRYPTED_PREFIX, read_env_file
from piyasa.crypto import SecretBox

# Variables whose values are always sealed; URLs are sealed when they carry a password.
SECRET_VARIABLES = frozenset(
    {
        "PIYASA_ADMIN_BOT_TOKEN",
        "OPENAI_API_KEY",
        "PIYASA_SLACK_BOT_TOKEN",
        "PIYASA_SLACK_SIGNING_SECRET",
        "PIYASA_METRICS_TOKEN",
        "PIYASA_BACKUP_PASSPHRASE",
        "PIYASA_BACKUP_S3_SECRET_KEY",
    }
)
URL_VARIABLES = frozenset({"PIYASA_DATABASE_URL", "PIYASA_REDIS_URL"})
HEADER = "# Written by `piyasa setup`. Secrets are encrypted with secret.key (enc:v1:...).\n"


def config_path(data_dir: Path) -> Path:
    return Path(data_dir) / CONFIG_FILE_NAME


def is_secret(name: str, value: str) -> bool:
    if name in SECRET_VARIABLES:
        return True
    if name in URL_VARIABLES:
        # scheme://user:password@host -> sealed; a URL without a password stays readable
        rest = value.split("://", 1)[-1]
        creds = rest.split("@", 1)[0] if "@" in rest else ""
        return ":" in creds
    return False


def seal(box: SecretBox, value: str) -> str:
    return ENCRYPTED_PREFIX + box.encrypt(value)


def _quote(value: str) -> str:
    if value == "" or any(c in value for c in " #'\"\t"):
        return '"' + value.replace('"', "") + '"'
    return value


def update_config(data_dir: Path, updates: Mapping[str, str | None], box: SecretBox) -> Path:
    """Set (or with ``None`` remove) variables in the config file, atomically.

    The new content goes to a temporary file in the same directory (created 0600), is
    fsynced and renamed over the old file, so a crash leaves either the old or the new
    file, never half of one, and the file is never readable by others, not even briefly.
    """
    path = config_path(data_dir)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    if not lines:
        lines = [HEADER]
    pending = dict(updates)
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        body = stripped[7:] if stripped.startswith("export ") else stripped
        key = body.split("=", 1)[0].strip() if "=" in body and not body.startswith("#") else ""
        if key and key in pending:
            value = pending.pop(key)
            if value is not None:
                out.append(f"{key}={_render(key, value, box)}\n")
            continue
        out.append(line if line.endswith("\n") else line + "\n")
    for key, value in pending.items():
        if value is not None:
            out.append(f"{key}={_render(key, value, box)}\n")
    _atomic_write(path, "".join(out))
    return path


def _render(key: str, value: str, box: SecretBox) -> str:
    return seal(box, value) if is_secret(key, value) else _quote(value)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_config(data_dir: Path) -> dict[str, str]:
    """The raw file values (sealed ones still sealed)."""
    return read_env_file(config_path(data_dir))
