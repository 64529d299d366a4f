"""The log analyzer: what the recent log says went wrong, grouped, counted and named.

Input: the JSON lines of ``piyasa.jsonl`` (:mod:`piyasa.logjson`; the current file and its
rotated ``.1``), the last ``max_lines`` lines within the last ``minutes`` minutes, WARNING
and above. Output: :class:`Scan`, groups worst first. A group is either a knowledge-base
entry (the first entry :func:`piyasa.help.kb.match` names for a line, score ≥
:data:`MIN_SCORE`) or, when no entry recognises the line, the exception class or logger
plus the *normalised* message (numbers, ids and quoted values replaced by ``#``), so
"retry after 7" and "retry after 9" are one group.

Per group: count, first/last seen (UTC), affected bots and chats (from the line's
extras), per-minute counts, and two patterns:

- **burst**: some minute holds at least :data:`BURST_MIN` lines and ≥ 3× the group's
  mean per minute over the window;
- **rising**: the second half of the window holds at least twice the lines of the first
  half (and at least :data:`RISING_MIN`).

Excerpts are redacted again (:data:`piyasa.logs.REDACTOR`) and clipped to
:data:`EXCERPT_CHARS`: a line written before a secret was known never shows it. A
traceback is one JSON line; its last line (the exception) is what is matched and shown.
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from piyasa.help.kb import match
from piyasa.logjson import JSON_LOG_FILE
from piyasa.logs import REDACTOR

MIN_SCORE = 2.0
BURST_MIN = 10
RISING_MIN = 6
EXCERPT_CHARS = 300
LEVELS = {"WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_NORMALISE = [
    (re.compile(r"'[^']*'|\"[^\"]*\""), "#"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "#"),
    (re.compile(r"-?\d+(\.\d+)?"), "#"),
]


@dataclass
class Group:
    """One kind of problem in the log (see the module docstring)."""

    key: str  # "kb:tg-429" or "msg:<logger>: <normalised message>"
    entry_id: str | None
    count: int = 0
    level: str = "WARNING"
    first: datetime | None = None
    last: datetime | None = None
    bots: set[str] = field(default_factory=set)
    chats: set[str] = field(default_factory=set)
    per_minute: Counter[str] = field(default_factory=Counter)
    excerpt: str = ""
    patterns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "entry": self.entry_id,
            "count": self.count,
            "level": self.level,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "bots": sorted(self.bots),
            "chats": sorted(self.chats),
            "patterns": self.patterns,
            "excerpt": self.excerpt,
        }


@dataclass
class Scan:
    lines: int  # lines read within the window (all levels)
    problems: int  # of those, WARNING and above
    since: datetime
    groups: list[Group]

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "problems": self.problems,
            "since": self.since.isoformat(),
            "groups": [g.as_json() for g in self.groups],
        }


def normalise(message: str) -> str:
    """``"retry after 7 (chat -100123)"`` → ``"retry after # (chat #)"``; first line only."""
    head = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, repl in _NORMALISE:
        head = pattern.sub(repl, head)
    return head[:160]


def error_line(message: str) -> str:
    """The line that names the error: a traceback's last line, else the first line."""
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    if len(lines) > 1 and lines[1].startswith("Traceback"):
        return lines[0] + " " + lines[-1].strip()
    return lines[-1].strip() if lines[0].startswith("Traceback") else lines[0]


def excerpt(message: str) -> str:
    text = REDACTOR(error_line(message))
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def read_lines(data_dir: Path, max_lines: int) -> list[str]:
    """The newest ``max_lines`` lines of ``piyasa.jsonl`` and its ``.1``, oldest first."""
    out: deque[str] = deque(maxlen=max_lines)
    for path in (data_dir / f"{JSON_LOG_FILE}.1", data_dir / JSON_LOG_FILE):
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                out.extend(f)
        except OSError:
            continue
    return list(out)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "msg" in obj and "ts" in obj else None


def analyse(lines: Iterable[str], *, minutes: float = 60.0, now: datetime | None = None) -> Scan:
    """Group the WARNING+ lines of the last ``minutes`` (see the module docstring).
    Lines that are not JSON objects with ``ts`` and ``msg`` are skipped."""
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=minutes)
    groups: dict[str, Group] = {}
    seen = problems = 0
    for raw in lines:
        obj = _parse(raw)
        if obj is None:
            continue
        try:
            at = datetime.fromisoformat(str(obj["ts"]))
        except ValueError:
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at < since:
            continue
        seen += 1
        level = str(obj.get("level", ""))
        if LEVELS.get(level, 0) < LEVELS["WARNING"]:
            continue
        problems += 1
        message = str(obj["msg"])
        found = match(error_line(message) + " " + str(obj.get("exc") or ""), limit=1)
        if found and found[0][1] >= MIN_SCORE:
            key, entry_id = f"kb:{found[0][0].id}", found[0][0].id
        else:
            who = obj.get("exc") or obj.get("logger") or "?"
            key, entry_id = f"msg:{who}: {normalise(message)}", None
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(key, entry_id, first=at, excerpt=excerpt(message))
        g.count += 1
        g.first = min(g.first or at, at)
        if g.last is None or at >= g.last:
            g.last, g.excerpt = at, excerpt(message)
        if LEVELS.get(level, 0) > LEVELS.get(g.level, 0):
            g.level = level
        for attr, name in ((g.bots, "bot"), (g.chats, "chat")):
            if obj.get(name) is not None:
                attr.add(str(obj[name]))
        g.per_minute[at.strftime("%Y-%m-%dT%H:%M")] += 1
    for g in groups.values():
        g.patterns = patterns(g, since, now)
    ordered = sorted(groups.values(), key=lambda g: (-LEVELS.get(g.level, 0), -g.count, g.key))
    return Scan(seen, problems, since, ordered)


def patterns(group: Group, since: datetime, now: datetime) -> list[str]:
    """``"burst"`` and/or ``"rising"`` (see the module docstring)."""
    out = []
    counts = list(group.per_minute.values())
    minutes = max(1.0, (now - since).total_seconds() / 60)
    if counts and max(counts) >= BURST_MIN and max(counts) >= 3 * group.count / minutes:
        out.append("burst")
    middle = (since + (now - since) / 2).strftime("%Y-%m-%dT%H:%M")
    early = sum(n for m, n in group.per_minute.items() if m < middle)
    late = group.count - early
    if late >= RISING_MIN and late >= 2 * max(early, 1) and early > 0:
        out.append("rising")
    return out


def scan(data_dir: Path, *, max_lines: int = 5000, minutes: float = 60.0) -> Scan:
    """:func:`analyse` over the newest ``max_lines`` lines of the data dir's JSON log."""
    return analyse(read_lines(Path(data_dir), max_lines), minutes=minutes)
