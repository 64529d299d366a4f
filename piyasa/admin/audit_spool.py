"""Audit rows the database could not take, kept on disk until it can.

While the database is unreachable, :func:`piyasa.admin.audit.record` appends each row
(already masked) as one JSON line to ``<data dir>/audit-spool.jsonl``, created 0600 like
every other private file there. When the database answers again (the recovery hook of
:mod:`piyasa.db.availability`, or the next audit write) the spool is renamed aside and
replayed in order in one transaction, skipping rows already present (same time, actor,
surface, action and result), so a replay cut short by a crash and run again duplicates
nothing. The spool holds at most :data:`SPOOL_MAX_BYTES`; past that, rows are dropped with
one error log line per outage saying so and where.

Appends take an exclusive ``flock`` and re-open when the file was renamed meanwhile, so
several processes sharing the data dir neither interleave lines nor write into a file
already replayed.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from piyasa.db.models import AuditEntry
from piyasa.services import Services

log = logging.getLogger(__name__)
SPOOL_NAME = "audit-spool.jsonl"
SPOOL_MAX_BYTES = 8 * 1024 * 1024
"""About 15,000 rows: hours of a busy chat's commands and presses."""
_REPLAY_GLOB = SPOOL_NAME + ".replay-*"
_STATE_KEY = "audit.spool"


class _State:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.dropped = 0


def _state(services: Services) -> _State:
    found = services.extras.get(_STATE_KEY)
    if found is None:
        found = services.extras[_STATE_KEY] = _State()
    return found


def spool_path(services: Services) -> Path:
    """Where the spool lives: the data dir, beside the database and the key."""
    return Path(services.settings.data_dir) / SPOOL_NAME


def pending(services: Services) -> bool:
    """True when rows wait to be replayed (a stat per call: cheap)."""
    path = spool_path(services)
    return path.exists() or any(path.parent.glob(_REPLAY_GLOB))


def row_of(entry: AuditEntry) -> dict[str, Any]:
    """A row as one JSON object (what a line of the spool holds)."""
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "actor_user_id": entry.actor_user_id,
        "surface": entry.surface,
        "action": entry.action,
        "target": entry.target,
        "params": entry.params,
        "result": entry.result,
        "detail": entry.detail,
    }


def _entry_of(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**{**row, "at": datetime.fromisoformat(row["at"])})


def append(services: Services, entry: AuditEntry) -> bool:
    """Keep ``entry`` in the spool; False (and one log line per outage) when it is full."""
    path = spool_path(services)
    line = (json.dumps(row_of(entry), ensure_ascii=False) + "\n").encode()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # renamed aside for a replay meanwhile: write to the new one
                continue
            if os.fstat(fd).st_size + len(line) > SPOOL_MAX_BYTES:
                state = _state(services)
                if state.dropped == 0:
                    log.error(
                        "audit spool full (%d bytes at %s): audit rows are dropped until "
                        "the database is back",
                        SPOOL_MAX_BYTES,
                        path,
                    )
                state.dropped += 1
                return False
            os.write(fd, line)
            os.fsync(fd)
            return True
        finally:
            os.close(fd)


async def replay(services: Services) -> int:
    """Write every spooled row to the database, in order, once; returns rows written.

    Raises what the database raises (the spool is then kept for the next attempt)."""
    state = _state(services)
    async with state.lock:
        path = spool_path(services)
        if path.exists():
            aside = path.with_name(f"{SPOOL_NAME}.replay-{os.getpid()}-{os.urandom(4).hex()}")
            os.replace(path, aside)
            fd = os.open(aside, os.O_RDONLY)
            try:  # wait for an append that opened the file before the rename
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                os.close(fd)
        written = 0
        for part in sorted(path.parent.glob(_REPLAY_GLOB), key=lambda p: p.stat().st_mtime):
            written += await _replay_file(services, part)
            part.unlink()
        if written or state.dropped:
            log.warning(
                "audit spool replayed: %d rows written, %d dropped while it was full",
                written,
                state.dropped,
            )
        state.dropped = 0
        return written


def _read_rows(part: Path) -> list[dict[str, Any]]:
    """The rows of one spool file (small: bounded by SPOOL_MAX_BYTES)."""
    rows: list[dict[str, Any]] = []
    for n, raw in enumerate(part.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
        except ValueError:  # a line cut by a crash mid-write: the rest still counts
            log.error("audit spool %s line %d is not JSON; skipped", part.name, n)
    return rows


async def _replay_file(services: Services, part: Path) -> int:
    rows = _read_rows(part)
    written = 0
    async with services.sessions() as session, session.begin():
        for row in rows:
            entry = _entry_of(row)
            seen = await session.scalar(
                select(AuditEntry.id)
                .where(
                    AuditEntry.at == entry.at,
                    AuditEntry.actor == entry.actor,
                    AuditEntry.surface == entry.surface,
                    AuditEntry.action == entry.action,
                    AuditEntry.result == entry.result,
                )
                .limit(1)
            )
            if seen is None:
                session.add(entry)
                await session.flush()  # keeps the order of ids the order of the spool
                written += 1
    return written
