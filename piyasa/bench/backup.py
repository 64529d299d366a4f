"""`piyasa bench backup`: back up a SQLite database while a writer commits 100 times a second.

Figures: backup MB/s (online backup API in one step + zstd + sha256 + AES-256-GCM, the
whole :func:`piyasa.backup.archive.pack` path), the writer's max and p99 commit stall
during the backup, archive size ratio, verify MB/s (decrypt + checksum) and restore MB/s
(decrypt + decompress into a file + row counts). Baselines in the same run, under the same
writer: ``shutil.copy2`` + gzip-6 (what the replaced system did, torn under writes) and the
``sqlite3`` CLI's ``.backup`` (stepwise; restarts on every commit), each with a time limit.
Issue 16 targets: completes under writes, ≥ 200 MB/s, writer max stall < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DESCRIPTION = "backup a SQLite database under a 100 commits/s writer (MB/s, writer stall)"
WORDS = (
    "BIST XU100 dolar euro altın faiz enflasyon TCMB bilanço temettü hisse kur bitcoin "
    "ethereum tahvil swap rezerv ihracat ithalat büyüme işsizlik petrol brent"
).split()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size-mb", type=int, default=1024, help="database size (default 1 GB)")
    p.add_argument("--rate", type=float, default=100.0, help="writer commits per second")
    p.add_argument(
        "--baseline-limit-s", type=float, default=60.0, help="time limit of each baseline"
    )
    p.add_argument("--dir", help="work directory (default: a temporary one, removed after)")
    p.add_argument(
        "--postgres-url",
        help="also measure PostgreSQL: a server URL (a database piyasa_bench_backup is "
        "created there and dropped after)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat each half N times and print the median of every top-level figure "
        "(the load average before each run is recorded: the machine may be shared)",
    )
    p.add_argument(
        "--postgres-only", action="store_true", help="skip the SQLite half (needs --postgres-url)"
    )


def _text(rng: random.Random, n: int) -> str:
    out: list[str] = []
    size = 0
    while size < n:
        w = f"{rng.choice(WORDS)} {rng.randint(0, 99999)}.{rng.randint(0, 99)} "
        out.append(w)
        size += len(w)
    return "".join(out)


def make_db(path: Path, size_mb: int) -> None:
    """Message-like rows (market words and numbers, compressible like real chat text)."""
    rng = random.Random(16)
    pool = [_text(rng, 4096) for _ in range(256)]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, chat INTEGER, body TEXT)")
    conn.execute("CREATE TABLE writes (id INTEGER PRIMARY KEY, at REAL, body TEXT)")
    target = size_mb * 1024 * 1024
    batch = 2000
    while path.stat().st_size < target:
        rows = [
            (rng.randint(1, 500), pool[rng.randrange(256)][: rng.randint(200, 4000)] + str(i))
            for i in range(batch)
        ]
        with conn:
            conn.executemany("INSERT INTO messages (chat, body) VALUES (?, ?)", rows)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class Writer(threading.Thread):
    """Commits one row ``rate`` times a second; records each commit's duration (ms)."""

    def __init__(self, path: Path, rate: float) -> None:
        super().__init__(daemon=True)
        self.path, self.rate = path, rate
        self.stop_event = threading.Event()
        self.marks: list[tuple[float, float]] = []  # (start monotonic, duration ms)

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop_event.is_set():
            start = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO writes (at, body) VALUES (?, ?)", (start, "x" * 200))
            conn.execute("COMMIT")
            self.marks.append((start, (time.monotonic() - start) * 1000))
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        conn.close()

    def stalls(self, t0: float, t1: float) -> dict[str, float]:
        inside = sorted(ms for at, ms in self.marks if t0 <= at <= t1)
        if not inside:
            return {"commits": 0, "max_ms": 0.0, "p99_ms": 0.0}
        p99 = inside[min(len(inside) - 1, int(len(inside) * 0.99))]
        return {"commits": len(inside), "max_ms": round(inside[-1], 2), "p99_ms": round(p99, 2)}


def _timed(fn: Any, writer: Writer) -> tuple[float, dict[str, float], Any]:
    t0 = time.monotonic()
    result = fn()
    t1 = time.monotonic()
    return t1 - t0, writer.stalls(t0, t1), result


def _baseline_copy_gzip(db: Path, work: Path, limit_s: float) -> dict[str, Any]:
    copy = work / "copy.db"
    gz = work / "copy.db.gz"
    start = time.monotonic()
    shutil.copy2(db, copy)
    with copy.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as out:
        while block := src.read(1 << 20):
            out.write(block)
            if time.monotonic() - start > limit_s:
                return {"finished": False, "limit_s": limit_s}
    took = time.monotonic() - start
    size = db.stat().st_size
    ratio = gz.stat().st_size / size
    copy.unlink()
    gz.unlink()
    return {"finished": True, "mb_s": round(size / 1e6 / took, 1), "size_ratio": round(ratio, 3)}


def _baseline_cli_backup(db: Path, work: Path, limit_s: float) -> dict[str, Any]:
    exe = shutil.which("sqlite3")
    if exe is None:
        return {"finished": False, "reason": "sqlite3 CLI not installed"}
    dest = work / "cli.db"
    start = time.monotonic()
    try:
        subprocess.run(
            [exe, str(db), f".backup '{dest}'"], timeout=limit_s, check=True, capture_output=True
        )
    except subprocess.TimeoutExpired:
        dest.unlink(missing_ok=True)
        return {"finished": False, "limit_s": limit_s, "note": "restarts on every commit"}
    took = time.monotonic() - start
    dest.unlink(missing_ok=True)
    return {"finished": True, "mb_s": round(db.stat().st_size / 1e6 / took, 1)}


def bench(size_mb: int, rate: float, limit_s: float, work: Path) -> dict[str, Any]:
    from piyasa.backup import archive, dump

    secret = "bench-secret-key"
    db = work / "live.db"
    t = time.monotonic()
    make_db(db, size_mb)
    size = db.stat().st_size
    made_s = time.monotonic() - t
    writer = Writer(db, rate)
    writer.start()
    try:
        payload = work / "payload.db"
        arch = work / "backup.pbk"

        def backup() -> Any:
            snap = dump.sqlite_snapshot(db, payload)
            with arch.open("wb") as out:
                archive.pack(payload, out, {"rows": snap.rows}, secret_key=secret)
                out.flush()
                os.fsync(out.fileno())
            return snap

        snap_t0 = time.monotonic()
        dump.sqlite_snapshot(db, work / "probe.db")  # the snapshot step alone, for the stall
        snap_only = time.monotonic() - snap_t0
        snap_stall = writer.stalls(snap_t0, snap_t0 + snap_only)
        (work / "probe.db").unlink()
        took, stall, snap = _timed(backup, writer)
        payload_size = payload.stat().st_size
        payload.unlink()
        verify_s, _, _ = _timed(lambda: archive.check(arch, secret_key=secret), writer)
        restored = work / "restored.db"

        def restore() -> Any:
            archive.unpack_to(arch, restored, secret_key=secret)
            return dump.sqlite_counts(restored)

        restore_s, _, counts = _timed(restore, writer)
        restored.unlink()
        gz = _baseline_copy_gzip(db, work, limit_s)
        cli = _baseline_cli_backup(db, work, limit_s)
    finally:
        writer.stop_event.set()
        writer.join()
    mb = payload_size / 1e6
    return {
        "machine": f"{os.cpu_count()} cores",
        "database_mb": round(size / 1e6, 1),
        "fill_s": round(made_s, 1),
        "writer_commits_per_s": rate,
        "backup": {
            "mb_s": round(mb / took, 1),
            "seconds": round(took, 2),
            "archive_size_ratio": round(arch.stat().st_size / payload_size, 3),
            "writer_max_stall_ms": stall["max_ms"],
            "writer_p99_stall_ms": stall["p99_ms"],
            "writer_commits_during": stall["commits"],
            "snapshot_only_mb_s": round(mb / snap_only, 1),
            "snapshot_only_writer_max_stall_ms": snap_stall["max_ms"],
            "rows_match_after_restore": counts.rows == snap.rows,
        },
        "verify_mb_s": round(mb / verify_s, 1),
        "restore_mb_s": round(mb / restore_s, 1),
        "baseline_shutil_copy_gzip6": gz,
        "baseline_sqlite3_cli_backup": cli,
        "targets": _targets(mb / took, stall["max_ms"]),
    }


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(results[-1])
    for key, value in results[0].items():
        if not all(isinstance(r.get(key), type(value)) for r in results):
            continue
        if isinstance(value, dict):
            out[key] = _medians([r[key] for r in results])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(statistics.median(r[key] for r in results), 3)
    return out


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' figures, every number (nested ones too) the median over ``results``
    (text and flags are the last run's); ``runs`` and the 1-minute load average before
    each run are added."""
    loads = [r.pop("_load_1m") for r in results]
    out = _medians(results)
    out["runs"] = len(results)
    out["load_avg_1m_before_each_run"] = loads
    if "backup" in out:  # the SQLite half: targets judged on the medians, figures per run kept
        out["targets"] = _targets(out["backup"]["mb_s"], out["backup"]["writer_max_stall_ms"])
        out["per_run"] = {
            key: [r["backup"][key] for r in results]
            for key in ("mb_s", "snapshot_only_mb_s", "writer_max_stall_ms")
        }
    return out


def _targets(backup_mb_s: float, writer_max_stall_ms: float) -> dict[str, bool]:
    """Issue 16's targets: completes under writes, >= 200 MB/s, writer max stall < 20 ms."""
    return {
        "completes_under_writes": True,
        "backup_ge_200_mb_s": backup_mb_s >= 200,
        "writer_max_stall_lt_20_ms": writer_max_stall_ms < 20,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = max(1, int(getattr(args, "runs", 1) or 1))
    pg_only = bool(getattr(args, "postgres_only", False))
    if pg_only and not args.postgres_url:
        raise SystemExit("piyasa bench backup: --postgres-only needs --postgres-url")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="piyasa-bench-backup-") as tmp:
        work = Path(args.dir or tmp)
        await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        if not pg_only:
            results = []
            for i in range(runs):
                load = os.getloadavg()[0]
                here = work / f"run{i + 1}"  # each run makes its own database
                await asyncio.to_thread(here.mkdir, exist_ok=True)
                one = await asyncio.to_thread(
                    bench, args.size_mb, args.rate, args.baseline_limit_s, here
                )
                await asyncio.to_thread(shutil.rmtree, here, True)
                results.append({**one, "_load_1m": round(load, 2)})
            out = median_of(results)
        if args.postgres_url:
            from piyasa.bench.backup_pg import bench_pg

            results = []
            for _ in range(runs):
                load = os.getloadavg()[0]
                one = await bench_pg(args.postgres_url, args.size_mb, args.rate, work)
                results.append({**one, "_load_1m": round(load, 2)})
            out["postgresql"] = median_of(results)
    return out
