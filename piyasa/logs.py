"""Logging set-up that never lets a secret reach a log line.

Telegram puts the bot token in every URL and libraries log URLs on errors, so every
record passes a redacting filter that knows the configured secrets and token shapes.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable

_TOKEN_RE = re.compile(r"(?<!\d)\d{3,20}:[A-Za-z0-9_-]{20,100}")
_KEY_RE = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|xox[abposr]-[A-Za-z0-9-]{8,}|pk_[A-Za-z0-9_]{8,})\b")
_URL_PASS_RE = re.compile(r"(://[^:/@\s]+:)[^@\s]*@")


class Redactor:
    """Replaces known secrets and anything shaped like a token with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for s in secrets:
            s = str.__str__(s) if isinstance(s, str) else str(s)
            if s and len(s) >= 6:
                self._secrets.add(s)

    def with_secrets(self, *secrets: str) -> Redactor:
        """A copy that also knows ``secrets``: for text that may predate their ``add``."""
        copy = Redactor(self._secrets)
        copy.add(*secrets)
        return copy

    def __call__(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, "***")
        text = _TOKEN_RE.sub("***:***", text)
        text = _KEY_RE.sub("***", text)
        return _URL_PASS_RE.sub(r"\1***@", text)


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = REDACTOR(message)
        record.args = None
        return True


class RingBufferHandler(logging.Handler):
    """Keeps the last N formatted (already redacted) lines for `/health` log download."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


RING = RingBufferHandler()


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Configure root logging once, with redaction on every handler."""
    REDACTOR.add(*secrets)
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(getattr(h, "_piyasa", False) for h in root.handlers):
        stream = logging.StreamHandler()
        stream._piyasa = True  # type: ignore[attr-defined]
        for handler in (stream, RING):
            handler.setFormatter(fmt)
            handler.addFilter(RedactingFilter())
            root.addHandler(handler)
    for noisy in (
        "aiohttp.access",
        "httpx",
        "httpx2",
        "httpcore",
        "openai",
        "aiogram.event",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
