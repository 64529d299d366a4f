"""One-time backup links on the real web server: two concurrent GETs of one link (on
SQLite and PostgreSQL) — exactly one gets the archive; an S3 archive (moto server) is
streamed from the bucket with its exact bytes."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp

from chatops.web.server import make_web_app, start_web
from piyasa.backup import links
from piyasa.backup.service import backup_service
from piyasa.services import Services
from tests.backup.conftest import live_services, s3_settings
from tests.chatops.harness import seed_people


async def serve(services: Services) -> tuple[object, str]:
    runner, port = await start_web(make_web_app(services), "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{port}"


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with http.get(url) as resp:
        return resp.status, await resp.read()


async def test_two_concurrent_gets_one_archive(live: Services) -> None:
    people = await seed_people(live)
    info = await backup_service(live).create()
    runner, base = await serve(live)
    try:
        link = await links.issue(live, info.id, people["admin"], base_url=base)
        async with aiohttp.ClientSession() as http:
            got = await asyncio.gather(*(fetch(http, link.url) for _ in range(4)))
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
    assert sorted(status for status, _ in got) == [200, 404, 404, 404]
    body = next(b for s, b in got if s == 200)
    assert len(body) == info.size_bytes


async def test_s3_archive_is_streamed_from_the_bucket(
    moto_s3: str, sqlite_db_url: str, tmp_path: Path
) -> None:
    async with live_services(sqlite_db_url, tmp_path / "data", **s3_settings(moto_s3)) as live:
        people = await seed_people(live)
        svc = backup_service(live)
        assert svc.storage.name == "s3"
        info = await svc.create()
        path = await svc.open_archive(info.id)
        stored = path.read_bytes()
        svc.storage.release(path)
        runner, base = await serve(live)
        try:
            link = await links.issue(live, info.id, people["admin"], base_url=base)
            async with aiohttp.ClientSession() as http, http.get(link.url) as resp:
                body = await resp.read()
                assert resp.status == 200
                assert resp.headers["Content-Length"] == str(len(stored))
                assert resp.headers["Cache-Control"] == "no-store"
        finally:
            await runner.cleanup()  # type: ignore[attr-defined]
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(stored).hexdigest()
        assert list((tmp_path / "data" / "backups" / ".s3-cache").glob("*")) == []
