"""Logging set-up that never lets a secret or a request body reach a log line.

Three rules, one place:

- **Libraries are quiet.** ``PIYASA_LOG_LEVEL`` is the level of Piyasa's own loggers
  (``piyasa``, ``chatops``). Libraries log warnings and errors only: below that, slack_sdk
  logs every Web API and ``response_url`` body (temporary passwords, link codes), slack-bolt
  logs the body of every request with a bad signature and every ack, aiosqlite and
  SQLAlchemy log SQL parameters, httpx and aiohttp log URLs. The root logger carries that
  floor, so loggers a library makes later (slack-bolt copies the root level into its own)
  start quiet too; :class:`RedactingFilter` enforces it again on our handlers by where a
  record was made, whatever its logger's name or level.
- **Secrets are redacted.** Every line passes :data:`REDACTOR`: the configured secrets and
  anything shaped like a bot token, an API key, a TOTP seed or a password in a URL.
- **Lines, the ring and the file are bounded.** A record longer than :data:`MAX_LINE_CHARS`
  keeps its head and tail around a marker; the ring the ``/health`` log download reads
  (:data:`RING`) holds at most :data:`RING_LINES` lines and :data:`RING_MAX_BYTES` bytes;
  ``piyasa.log`` in the data dir rotates at :data:`LOG_FILE_MAX_BYTES` and keeps
  :data:`LOG_FILE_BACKUPS` older files (:class:`PrivateRotatingFileHandler`), each 0600.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import sys
from collections import deque
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

MAX_LINE_CHARS = 8192  # per record; most tracebacks fit whole
RING_LINES = 1000
RING_MAX_BYTES = 1024 * 1024
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024  # piyasa.log rotates at 10 MiB ...
LOG_FILE_BACKUPS = 5  # ... and keeps piyasa.log.1 .. .5: at most 60 MiB on disk
OWN_LOGGERS = ("piyasa", "chatops")
# The level below which a library's records never reach a handler, by top-level package.
LIBRARY_FLOORS: dict[str, int] = {
    name: logging.WARNING
    for name in (
        "slack_bolt",
        "slack_sdk",
        "aiogram",
        "aiohttp",
        "openai",
        "httpx",
        "httpx2",
        "httpcore",
        "aiosqlite",
        "sqlalchemy",
        "asyncpg",
        "redis",
        "alembic",
    )
}
# Library loggers whose INFO lines say something useful and carry no body, URL or token.
LIBRARY_INFO_LOGGERS = ("aiogram.dispatcher",)

_TOKEN_RE = re.compile(r"(?<!\d)\d{3,20}:[A-Za-z0-9_-]{20,100}")
_KEY_RE = re.compile(
    r"\b(sk-[A-Za-z0-9_-]{8,}|xox[abposr]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}"
    r"|pk_[A-Za-z0-9_]{8,})\b"
)
_URL_PASS_RE = re.compile(r"(://[^:/@\s]+:)[^@\s]*@")
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_TOTP_RE = re.compile(r"(\b(?i:secret)=)[A-Z2-7]{16,}|\b[A-Z2-7]{32}\b")  # base32 seeds


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
        text = _BEARER_RE.sub(r"\1***", text)
        text = _TOTP_RE.sub(lambda m: (m.group(1) or "") + "***", text)
        return _URL_PASS_RE.sub(r"\1***@", text)


REDACTOR = Redactor()


def clip(text: str, limit: int = MAX_LINE_CHARS, size: int | None = None) -> str:
    """``text`` if it has at most ``limit`` characters, else its first three quarters and
    last quarter around a marker naming the original ``size`` (default ``len(text)``), so a
    traceback keeps its last line. The result has ``limit`` characters plus the marker."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = limit - tail
    return f"{text[:head]} …[{size or len(text)} characters, cut]… {text[-tail:]}"


def clean(message: str) -> str:
    """Redacted and clipped to :data:`MAX_LINE_CHARS` (plus a marker).

    A huge message is cut coarsely first so redaction stays cheap; what lies around the
    coarse cut is dropped by the final one, so a secret split there never shows.
    """
    coarse = clip(message, 4 * MAX_LINE_CHARS)
    return clip(REDACTOR(coarse), MAX_LINE_CHARS, size=len(message))


_package_dirs: list[tuple[str, int]] | None = None
_floor_by_path: dict[str, int] = {}


def _library_dirs() -> list[tuple[str, int]]:
    """(source directory + separator, floor) of every installed library in the table."""
    global _package_dirs
    if _package_dirs is None:
        found = []
        for name, floor in LIBRARY_FLOORS.items():
            try:
                spec = importlib.util.find_spec(name)  # top level: located, not imported
            except (ImportError, ValueError):
                spec = None
            for where in (spec and spec.submodule_search_locations) or ():
                found.append((os.path.join(os.path.realpath(where), ""), floor))
        _package_dirs = found
    return _package_dirs


def library_floor(record: logging.LogRecord) -> int:
    """The lowest level at which ``record`` may be written: 0 for Piyasa's own code, a
    library's floor when the record was made inside that library or on its logger."""
    if record.name in LIBRARY_INFO_LOGGERS:
        return logging.INFO
    floor = LIBRARY_FLOORS.get(record.name.partition(".")[0], 0)
    path = record.pathname or ""
    by_path = _floor_by_path.get(path)
    if by_path is None:
        real = os.path.realpath(path) if path else ""
        by_path = next((f for d, f in _library_dirs() if real.startswith(d)), 0)
        if len(_floor_by_path) < 10_000:
            _floor_by_path[path] = by_path
    return max(floor, by_path)


def _quiet_cancelled_reset(record: logging.LogRecord) -> None:
    """SQLAlchemy's pool logs an ERROR with a traceback when returning a connection is cut
    by a task's cancellation (a stop, a timeout): the rollback is abandoned and the
    connection discarded, which loses nothing committed. Said as one INFO line instead (below the
    library floor: shown only when sqlalchemy logging is turned up)."""
    exc = record.exc_info[0] if record.exc_info else None
    if exc is None or not issubclass(exc, asyncio.CancelledError):
        return
    if not record.name.startswith("sqlalchemy.pool"):
        return
    record.levelno, record.levelname = logging.INFO, "INFO"
    record.msg = "a database connection was discarded: its reset was cancelled (a task stopped)"
    record.args, record.exc_info, record.exc_text = None, None, None


class RedactingFilter(logging.Filter):
    """On a handler: drops library records below their floor, then redacts and clips the
    message (exception and stack text folded in, so nothing bypasses it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _quiet_cancelled_reset(record)
        if record.levelno < library_floor(record):
            return False
        try:
            message = record.getMessage()
        except Exception as exc:  # bad %-args: keep the template, never the raw args
            message = f"{record.msg} (unformattable arguments: {type(exc).__name__})"
        if record.exc_info:
            if record.exc_info[0] is not None:  # kept for the JSON lines (piyasa.jsonl)
                record.exc_class = record.exc_info[0].__name__
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            message += "\n" + record.stack_info
            record.stack_info = None
        record.msg = clean(message)
        record.args = None
        return True


class BoundedLines(deque[str]):
    """Log lines, newest last, bounded by count (``maxlen``) and by total UTF-8 bytes:
    appending drops the oldest lines until both bounds hold. Each line is clipped."""

    def __init__(self, max_lines: int = RING_LINES, max_bytes: int = RING_MAX_BYTES) -> None:
        super().__init__(maxlen=max_lines)
        self.max_bytes = max_bytes
        self.size_bytes = 0

    def append(self, line: str) -> None:
        line = clip(line)
        if self.maxlen is not None and len(self) == self.maxlen:
            self.popleft()
        super().append(line)
        self.size_bytes += _nbytes(line)
        while self.size_bytes > self.max_bytes and len(self) > 1:
            self.popleft()

    def popleft(self) -> str:
        line = super().popleft()
        self.size_bytes = max(0, self.size_bytes - _nbytes(line))
        return line

    def clear(self) -> None:
        super().clear()
        self.size_bytes = 0


def _nbytes(line: str) -> int:
    return len(line.encode("utf-8", "replace"))


class RingBufferHandler(logging.Handler):
    """Keeps the last formatted lines for the `/health` log download; filtered (library
    floors, redaction, clipping) whoever attaches it."""

    def __init__(self, capacity: int = RING_LINES, max_bytes: int = RING_MAX_BYTES) -> None:
        super().__init__()
        self.lines = BoundedLines(capacity, max_bytes)
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


RING = RingBufferHandler()


class PrivateRotatingFileHandler(RotatingFileHandler):
    """``piyasa.log``: rotated by size (stdlib ``RotatingFileHandler``: the file is renamed
    to ``.1``, older ones shift up, the oldest beyond ``backups`` is deleted), every file
    created 0600 (a rename keeps the mode), filtered like every handler of ours.

    A detached ``piyasa up`` has its stdout and stderr on this same file (prints, and
    tracebacks that bypass logging); on rollover, those descriptors are moved to the new
    file too, so nothing keeps growing the renamed one."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = LOG_FILE_MAX_BYTES,
        backups: int = LOG_FILE_BACKUPS,
    ) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.addFilter(RedactingFilter())

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # a file an older version made 0644
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        followers = [fd for fd in (1, 2) if self.stream and _same_file(fd, self.stream.fileno())]
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        super().doRollover()
        if self.stream is None:
            self.stream = self._open()
        for fd in followers:
            os.dup2(self.stream.fileno(), fd)


def _same_file(fd: int, other: int) -> bool:
    try:
        a, b = os.fstat(fd), os.fstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _stderr_is(path: Path) -> bool:
    """Is this process's stderr the file at ``path`` (a detached process)?"""
    try:
        a, b = os.fstat(2), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelNamesMapping().get(str(level).strip().upper())
    if value is None:
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return value


def setup_logging(
    level: str | int = "INFO",
    secrets: Iterable[str] = (),
    log_file: Path | None = None,
    *,
    max_bytes: int = LOG_FILE_MAX_BYTES,
    backups: int = LOG_FILE_BACKUPS,
) -> None:
    """Configure logging once per process (again only adjusts levels, secrets and the file).

    ``level`` (a name like ``"DEBUG"`` or a number) applies to Piyasa's own loggers; the
    root logger, and so every library, gets at least WARNING (see the module docstring).
    ``secrets`` are redacted from every line from now on. ``log_file`` (the data dir's
    ``piyasa.log``) gets every line too, rotated at ``max_bytes`` bytes with ``backups``
    older files kept, all 0600; when stderr already is that file (a detached process),
    lines are written once, by the rotating handler. Raises ValueError for an unknown level
    name, OSError when ``log_file`` cannot be opened.
    """
    own = _level(level)
    REDACTOR.add(*secrets)
    root = logging.getLogger()
    root.setLevel(max(own, logging.WARNING))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
    for name in LIBRARY_INFO_LOGGERS:
        logging.getLogger(name).setLevel(max(own, logging.INFO))
    for name, floor in LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(own, floor))
    _raise_library_levels(own)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    detached = log_file is not None and _stderr_is(Path(log_file))
    if not any(getattr(h, "_piyasa", False) for h in root.handlers):
        stream = logging.StreamHandler()
        stream._piyasa = True  # type: ignore[attr-defined]
        stream.addFilter(RedactingFilter())
        for handler in (stream, RING):
            handler.setFormatter(fmt)
            root.addHandler(handler)
    for handler in list(root.handlers):
        if getattr(handler, "_piyasa", False) == "file":
            if log_file is not None and handler.baseFilename == os.path.abspath(log_file):  # type: ignore[attr-defined]
                return
            root.removeHandler(handler)
            handler.close()
        elif getattr(handler, "_piyasa", False) is True and detached:
            root.removeHandler(handler)  # stderr is the file: the rotating handler writes it
        elif getattr(handler, "_piyasa", False) == "json":
            root.removeHandler(handler)
            handler.close()
    if log_file is not None:
        rotating = PrivateRotatingFileHandler(log_file, max_bytes, backups)
        rotating._piyasa = "file"  # type: ignore[attr-defined]
        rotating.setFormatter(fmt)
        root.addHandler(rotating)
        from piyasa.logjson import JsonFormatter, json_path

        lines = PrivateRotatingFileHandler(json_path(Path(log_file)), max_bytes, backups)
        lines._piyasa = "json"  # type: ignore[attr-defined]
        lines.setFormatter(JsonFormatter())
        root.addHandler(lines)


def _raise_library_levels(own: int) -> None:
    """Library loggers made before this call with their own low level (slack-bolt copies
    the root level when it makes one) get their library's floor."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name in LIBRARY_INFO_LOGGERS:
            continue
        floor = LIBRARY_FLOORS.get(name.partition(".")[0])
        if floor is not None and logger.level != logging.NOTSET:
            logger.setLevel(max(logger.level, own, floor))
