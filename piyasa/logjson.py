"""Structured log lines: ``piyasa.jsonl`` next to ``piyasa.log``, one JSON object a record.

A line (keys always present unless marked optional)::

    {"ts": "2026-11-30T22:40:01.123+00:00",   # ISO 8601, UTC, milliseconds
     "level": "WARNING", "logger": "piyasa.runtime.delivery",
     "msg": "send failed: Telegram server says - Too Many Requests: retry after 7",
     "exc": "TelegramRetryAfter",            # optional: the exception's class name
     "bot": 3, "chat": -1001}                # optional: extras given with the record

``msg`` is what :class:`piyasa.logs.RedactingFilter` left: redacted, clipped, with the
traceback folded in (so a multi-line traceback is one line here). The file rotates with
``piyasa.log`` (same size and backups, 0600). :mod:`piyasa.help.logscan` reads it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

JSON_LOG_FILE = "piyasa.jsonl"
EXTRA_KEYS = ("bot", "chat", "component")


def json_path(log_file: Path) -> Path:
    """The JSON twin of a ``piyasa.log`` path: ``piyasa.jsonl`` in the same directory."""
    return Path(log_file).parent / JSON_LOG_FILE


class JsonFormatter(logging.Formatter):
    """One record → one JSON object on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        exc = getattr(record, "exc_class", None)
        if exc:
            line["exc"] = exc
        for key in EXTRA_KEYS:
            value = record.__dict__.get(key)
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                line[key] = value
        return json.dumps(line, ensure_ascii=False)
