"""The demo sandbox cannot touch production and cannot be driven by a stranger.

Regression tests for the security review (issue 11, items 1 and 2): an anonymous
cross-site POST to `/sandbox/api/messages` used to get a link code for a real admin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from piyasa import app
from piyasa.admin.users import add_user
from piyasa.config import load_settings
from piyasa.db import migrate
from piyasa.db.engine import create_engine
from piyasa.db.models import Bot, Chat, Identity, User
from piyasa.sandbox import demo
from piyasa.sandbox.guard import COOKIE, HEADER, SECURITY_HEADERS, SandboxGuard
from piyasa.sandbox.telegram import TelegramSandbox
from piyasa.services import Services

ATTACK = {"user_id": demo.ADMIN_USER_ID, "bot_id": 7000000000, "text": "/linkcode realadmin"}


def _settings(data: Path, **extra: str) -> Any:
    return load_settings(
        {
            "PIYASA_DATA_DIR": str(data),
            "PIYASA_HTTP_PORT": "0",
            "PIYASA_SANDBOX_PORT": "0",
            **extra,
        }
    )


@pytest.fixture
async def guarded_sandbox() -> Any:
    sb = TelegramSandbox(guard=SandboxGuard(key="k" * 32))
    demo.seed_sandbox(sb)
    async with TestClient(TestServer(sb.make_app())) as client:
        yield sb, client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # no key at all: the reproduced attack
        ({"Origin": "http://evil.example", HEADER: "k" * 32}, 403),  # cross-site, even keyed
        ({"Sec-Fetch-Site": "cross-site", HEADER: "k" * 32}, 403),
        ({"Host": "evil.example", HEADER: "k" * 32}, 421),  # DNS rebinding
        ({HEADER: "wrong"}, 401),
    ],
)
async def test_strangers_cannot_drive_the_sandbox_api(
    guarded_sandbox: Any, headers: dict[str, str], status: int
) -> None:
    sb, client = guarded_sandbox
    before = len(sb.world.events)
    resp = await client.post(
        "/sandbox/api/messages",
        data=json.dumps(ATTACK),
        headers={"Content-Type": "text/plain", **headers},
    )
    assert resp.status == status
    assert "error" in await resp.json()
    assert len(sb.world.events) == before  # nothing was sent
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    messages = await client.get(f"/sandbox/api/chats/{demo.ADMIN_USER_ID}/messages")
    assert messages.status == 401


async def test_the_key_holder_drives_it_and_the_link_sets_a_cookie(guarded_sandbox: Any) -> None:
    _sb, client = guarded_sandbox
    ok = await client.get("/sandbox/api/state", headers={HEADER: "k" * 32})
    assert ok.status == 200 and (await ok.json())["bots"]
    bad_link = await client.get("/sandbox?key=nope", allow_redirects=False)
    assert bad_link.status == 401
    entry = await client.get("/sandbox?key=" + "k" * 32, allow_redirects=False)
    assert entry.status == 303 and entry.headers["Location"] == "/sandbox"
    cookie = entry.cookies[COOKIE]
    assert cookie.value == "k" * 32
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/sandbox"
    again = await client.get("/sandbox/api/state", cookies={COOKIE: "k" * 32})
    assert again.status == 200


async def test_piyasa_up_demo_runs_on_its_own_database(tmp_path: Path) -> None:
    """A real admin added from the shell is invisible to the demo, and no demo row
    reaches the configured database."""
    data = tmp_path / "data"
    settings = _settings(data)
    prod = create_engine(settings.database_url)
    await migrate.upgrade(prod)
    services = Services.build(settings, engine=prod)
    await add_user(services, "realadmin", "admin", telegram_id=777001)
    lines: list[str] = []
    running = await app.start(settings, printer=lines.append)
    try:
        demo_services = running.services
        assert demo_services is not None
        assert demo_services.settings.database_url != settings.database_url
        assert "demo" in demo_services.settings.database_url
        async with demo_services.sessions() as s:
            assert await s.scalar(select(User).where(User.username == "realadmin")) is None
            assert await s.scalar(select(User).where(User.username == demo.ADMIN_USERNAME))
        assert any("sandbox chat: http://127.0.0.1:" in line for line in lines)
        assert running.sandbox.base_url.startswith("http://127.0.0.1:")
    finally:
        await running.stop()
    async with services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Bot)) == 0
        assert await s.scalar(select(func.count()).select_from(Chat)) == 0
        names = (await s.scalars(select(User.username))).all()
        assert names == ["realadmin"]
    await prod.dispose()


async def test_the_page_is_not_served_on_a_public_address_unless_asked(tmp_path: Path) -> None:
    lines: list[str] = []
    settings = _settings(tmp_path / "data", PIYASA_HTTP_HOST="0.0.0.0")
    running = await app.start(settings, printer=lines.append)
    try:
        assert "sandbox" not in running.services.extras
        assert running.sandbox.base_url.startswith("http://127.0.0.1:")
        assert any("sandbox chat page not served" in line for line in lines)
        port = running.web_url.rsplit(":", 1)[1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/sandbox") as resp,
        ):
            assert resp.status == 404
    finally:
        await running.stop()


async def _add_later_columns(engine: Any) -> list[tuple[str, str]]:
    """Add, nullable, every column the models map that the schema in place lacks; returns
    (table, column) pairs so they can be dropped again."""
    from sqlalchemy import inspect

    from piyasa.db.base import Base

    def missing(sync_conn: Any) -> list[tuple[str, Any]]:
        found = inspect(sync_conn)
        out = []
        for table in Base.metadata.sorted_tables:
            if found.has_table(table.name):
                have = {c["name"] for c in found.get_columns(table.name)}
                out += [(table.name, c) for c in table.columns if c.name not in have]
        return out

    async with engine.begin() as conn:
        columns = await conn.run_sync(missing)
        for table, column in columns:
            kind = column.type.compile(dialect=engine.dialect)
            await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"))
    return [(table, column.name) for table, column in columns]


async def test_migration_removes_demo_rows_an_older_version_left(
    db_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine, "0007")  # the revision before 0008
        # Later revisions add columns the models map (last seen, chat budgets, ...): add
        # them for the seeding below, and take them off before the upgrade adds them for real.
        later = await _add_later_columns(engine)
        settings = _settings(tmp_path / "data")
        services = Services.build(settings, engine=engine)
        await demo.seed_database(services)  # what 0.1 did to the database in use
        await add_user(services, "realadmin", "admin", telegram_id=777001)
        async with services.sessions() as s, s.begin():
            real = await s.scalar(select(User).where(User.username == "realadmin"))
            real.identities.append(Identity(provider="telegram", external_id="900002"))
        async with engine.begin() as conn:
            for table, column in later:
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        await migrate.upgrade(engine)
        assert "migration 0008: removed demo rows" in capfd.readouterr().out
        async with engine.connect() as conn:
            users = (await conn.execute(text("SELECT username FROM users"))).scalars().all()
            ids = (await conn.execute(text("SELECT external_id FROM identities"))).scalars().all()
            bots = (await conn.execute(text("SELECT count(*) FROM bots"))).scalar()
            chats = (await conn.execute(text("SELECT count(*) FROM chats"))).scalar()
        assert users == ["realadmin"]
        assert ids == ["777001"]  # the demo account linked to a real user is gone too
        assert bots == 0 and chats == 0
    finally:
        await engine.dispose()
