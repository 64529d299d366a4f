"""The PostgreSQL half of `piyasa bench backup` (``--postgres-url``): ``pg_dump -Fc`` from an
exported snapshot + zstd + AES-256-GCM while a writer commits ``rate`` times a second,
then verify and a restore into a fresh database (``pg_restore``)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

DB = "piyasa_bench_backup"


def _dsn(url: str, database: str) -> str:
    u = make_url(url).set(drivername="postgresql", database=database, query={})
    return u.render_as_string(hide_password=False)


async def _fill(url: str, size_mb: int) -> None:
    import asyncpg

    admin = await asyncpg.connect(_dsn(url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DB}")
        await admin.execute(f"CREATE DATABASE {DB}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(_dsn(url, DB))
    try:
        await conn.execute(
            "CREATE TABLE messages (id bigserial PRIMARY KEY, chat int, body text);"
            "CREATE TABLE writes (id bigserial PRIMARY KEY, at double precision, body text)"
        )
        target = size_mb * 1024 * 1024
        n = 0
        while await conn.fetchval("SELECT pg_database_size(current_database())") < target:
            await conn.execute(
                "INSERT INTO messages (chat, body) SELECT g % 500, "
                "'BIST ' || g || ' dolar ' || (g * 7 % 1000) || ' ' || repeat(md5(g::text), 30) "
                "FROM generate_series($1::bigint, $1::bigint + 19999) g",
                n,
            )
            n += 20000
    finally:
        await conn.close()


async def _writer(url: str, rate: float, stop: threading.Event, marks: list) -> None:
    """Commits on its own connection, in its own thread and loop (the backup's work in
    this loop must not count as a database stall)."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(url, DB))
    try:
        period = 1.0 / rate
        nxt = time.monotonic()
        while not stop.is_set():
            start = time.monotonic()
            await conn.execute("INSERT INTO writes (at, body) VALUES ($1, $2)", start, "x" * 200)
            marks.append((start, (time.monotonic() - start) * 1000))
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    finally:
        await conn.close()


def _stalls(marks: list, t0: float, t1: float) -> dict[str, float]:
    inside = sorted(ms for at, ms in marks if t0 <= at <= t1)
    if not inside:
        return {"max_ms": 0.0, "p99_ms": 0.0}
    p99 = inside[min(len(inside) - 1, int(len(inside) * 0.99))]
    return {"max_ms": round(inside[-1], 2), "p99_ms": round(p99, 2)}


async def bench_pg(url: str, size_mb: int, rate: float, work: Path) -> dict[str, Any]:
    from piyasa.backup import archive, dump

    secret = "bench-secret-key"
    t = time.monotonic()
    await _fill(url, size_mb)
    fill_s = time.monotonic() - t
    live = make_url(url).set(database=DB).render_as_string(hide_password=False)
    stop = threading.Event()
    marks: list = []
    writer = threading.Thread(target=lambda: asyncio.run(_writer(url, rate, stop, marks)))
    writer.start()
    payload, arch = work / "pg.dump", work / "pg.pbk"
    try:
        t0 = time.monotonic()
        snap = await dump.pg_snapshot(live, payload)

        def pack() -> None:
            with arch.open("wb") as out:
                archive.pack(payload, out, {"rows": snap.rows}, secret_key=secret)
                out.flush()
                os.fsync(out.fileno())

        await asyncio.to_thread(pack)
        t1 = time.monotonic()
        size = await _db_size(live)
        payload_size = payload.stat().st_size
        payload.unlink()
        t2 = time.monotonic()
        await asyncio.to_thread(archive.check, arch, secret_key=secret)
        verify_s = time.monotonic() - t2
        t3 = time.monotonic()
        await asyncio.to_thread(archive.unpack_to, arch, payload, secret_key=secret)
        restored = await dump.pg_restore_into(live, payload, f"{DB}_restored")
        restore_s = time.monotonic() - t3
    finally:
        stop.set()
        await asyncio.to_thread(writer.join)
        payload.unlink(missing_ok=True)
        arch_size = arch.stat().st_size if arch.exists() else 0
        arch.unlink(missing_ok=True)
        await dump.pg_drop(live, f"{DB}_restored")
        await dump.pg_drop(live, DB)
    mb = size / 1e6
    stall = _stalls(marks, t0, t1)
    return {
        "database_mb": round(mb, 1),
        "fill_s": round(fill_s, 1),
        "backup_mb_s": round(mb / (t1 - t0), 1),
        "backup_seconds": round(t1 - t0, 2),
        "dump_mb": round(payload_size / 1e6, 1),
        "archive_size_ratio_to_database": round(arch_size / size, 3),
        "writer_max_stall_ms": stall["max_ms"],
        "writer_p99_stall_ms": stall["p99_ms"],
        "verify_mb_s": round(mb / verify_s, 1),
        "restore_mb_s": round(mb / restore_s, 1),
        "rows_match_after_restore": restored.rows == snap.rows,
    }


async def _db_size(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(_dsn(url, DB))
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()
