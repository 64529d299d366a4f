"""Structured JSON log lines (redacted, one line per record, tracebacks folded) and the
log analyzer: groups by KB entry and by normalised message, counts, first/last seen,
affected bots, bursts and a rising rate, redacted excerpts."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from piyasa.help import logscan
from piyasa.logjson import JsonFormatter
from piyasa.logs import PrivateRotatingFileHandler

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TOKEN = "123456789:AAH" + "x" * 32


def line(minutes_ago: float, msg: str, level: str = "WARNING", **extra: object) -> str:
    at = NOW - timedelta(minutes=minutes_ago)
    return json.dumps(
        {"ts": at.isoformat(), "level": level, "logger": "piyasa.x", "msg": msg, **extra}
    )


def test_json_lines_are_redacted_and_fold_a_traceback(tmp_path: Path) -> None:
    handler = PrivateRotatingFileHandler(tmp_path / "piyasa.jsonl")
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("piyasa.test_logscan")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        try:
            raise RuntimeError(f"Unauthorized for bot{TOKEN}")
        except RuntimeError:
            log.exception("send failed", extra={"bot": 7})
        log.warning("plain")
    finally:
        log.removeHandler(handler)
        handler.close()
    rows = [json.loads(x) for x in (tmp_path / "piyasa.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    first = rows[0]
    assert first["level"] == "ERROR" and first["exc"] == "RuntimeError" and first["bot"] == 7
    assert "Traceback" in first["msg"] and TOKEN not in first["msg"]
    assert (tmp_path / "piyasa.jsonl").stat().st_mode & 0o777 == 0o600
    scan = logscan.analyse(
        (tmp_path / "piyasa.jsonl").read_text().splitlines(), now=datetime.now(UTC)
    )
    assert scan.problems == 2
    assert all(TOKEN not in g.excerpt for g in scan.groups)


def test_groups_by_kb_entry_and_by_normalised_message() -> None:
    lines = [
        line(
            50 - i,
            f"send failed: Telegram server says - Too Many Requests: retry after {i}",
            bot=i % 3,
        )
        for i in range(8)
    ]
    lines += [line(5, "worker 4 stalled for 31 s"), line(4, "worker 9 stalled for 12 s")]
    lines += [line(3, "all fine", level="INFO"), line(120, "database is locked")]  # old
    lines += ["not json", json.dumps({"no": "msg"})]
    scan = logscan.analyse(lines, now=NOW)
    assert scan.lines == 11 and scan.problems == 10
    by_key = {g.key: g for g in scan.groups}
    tg = by_key["kb:tg-429"]
    assert tg.entry_id == "tg-429" and tg.count == 8 and tg.bots == {"0", "1", "2"}
    assert tg.first == NOW - timedelta(minutes=50) and tg.last == NOW - timedelta(minutes=43)
    stalled = [g for g in scan.groups if g.entry_id is None]
    assert len(stalled) == 1 and stalled[0].count == 2
    assert stalled[0].key == "msg:piyasa.x: worker # stalled for # s"
    assert "kb:db-locked" not in by_key  # older than the window
    assert scan.groups[0].key == "kb:tg-429"  # most lines first at the same level


def test_burst_and_rising_rate() -> None:
    burst = [line(30, "database is locked", level="ERROR") for _ in range(12)]
    burst += [line(55, "database is locked", level="ERROR")]
    rising = [line(50, "Redis: Connection refused") for _ in range(2)]
    rising += [
        line(m, "Redis: Error 111 connecting to localhost:6379. Connection refused.")
        for m in (10, 8, 6, 4, 2, 1)
    ]
    scan = logscan.analyse(burst + rising, now=NOW)
    by = {g.entry_id: g for g in scan.groups}
    assert "burst" in by["db-locked"].patterns and by["db-locked"].level == "ERROR"
    assert by["redis-refused"].patterns == ["rising"]
    assert scan.groups[0].entry_id == "db-locked"  # errors before warnings


def test_reads_the_rotated_file_too(tmp_path: Path) -> None:
    (tmp_path / "piyasa.jsonl.1").write_text(line(0, "old") + "\n")
    (tmp_path / "piyasa.jsonl").write_text(line(0, "new") + "\n")
    assert [json.loads(x)["msg"] for x in logscan.read_lines(tmp_path, 10)] == ["old", "new"]
    assert logscan.read_lines(tmp_path / "missing", 10) == []


CHILD = """
import logging, sys
from pathlib import Path
from piyasa.logs import setup_logging
setup_logging("INFO", ["my-configured-secret"], Path(sys.argv[1]))
log = logging.getLogger("piyasa.child")
for i in range(12):
    log.error("send failed (my-configured-secret): Telegram server says - Too Many Requests: retry after %d", i, extra={"bot": 5})
log.info("fine")
"""


def test_setup_logging_writes_the_json_twin_that_the_analyzer_reads(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "piyasa.log")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    twin = tmp_path / "piyasa.jsonl"
    assert twin.stat().st_mode & 0o777 == 0o600
    text = twin.read_text()
    assert "my-configured-secret" not in text and len(text.splitlines()) == 13
    scan = logscan.scan(tmp_path)
    top = scan.groups[0]
    assert top.entry_id == "tg-429" and top.count == 12 and top.bots == {"5"}
    assert "burst" in top.patterns and "my-configured-secret" not in top.excerpt
