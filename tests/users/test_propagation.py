"""A change to a user, a chat link, an API key or a step-up made by one process applies on
the very next request of every other process on the same database, without Redis: two
Services with a memory cache each, and the `piyasa user` CLI as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest

from chatops import pipeline
from chatops.context import Client
from piyasa.admin import auth, identity
from piyasa.admin import users as svc
from piyasa.admin.health.apikeys import verify_api_key
from piyasa.cache import MemoryCache
from piyasa.config import Settings
from piyasa.db import migrate
from piyasa.db.availability import db_down
from piyasa.db.engine import create_engine
from piyasa.services import Services
from piyasa.tasks import wait_for

A = svc.Actor("boss", surface="cli")
OPS_TG = 4242


@pytest.fixture
async def other(settings: Settings, db_url: str, services: Services) -> AsyncIterator[Services]:
    """A second process on the same database: its own engine and its own memory cache."""
    svc_b = Services.build(settings, engine=create_engine(db_url))
    assert isinstance(svc_b.cache, MemoryCache) and svc_b.cache is not services.cache
    yield svc_b
    await svc_b.close()


async def request_as(services: Services, telegram_id: int) -> identity.Principal | None:
    """What the pipeline's first stage sees for a message from ``telegram_id``."""
    return await pipeline.identify(services, Client("telegram", str(telegram_id)))


async def test_role_lock_link_key_and_step_up_changes_reach_the_other_process(
    services: Services, other: Services
) -> None:
    await svc.add_user(services, "boss", "admin")
    ops = await svc.add_user(services, "ops", "operator", telegram_id=OPS_TG)
    seed = await auth.enroll_totp(services, ops.id)

    seen = await request_as(services, OPS_TG)
    assert seen is not None and seen.role == "operator" and not seen.locked

    await svc.set_role(other, A, "ops", "viewer")
    assert (await request_as(services, OPS_TG)).role == "viewer"

    await svc.set_locked(other, A, "ops", True)
    assert (await request_as(services, OPS_TG)).locked
    await svc.set_locked(other, A, "ops", False)
    assert not (await request_as(services, OPS_TG)).locked

    # a chat account this process has seen as unknown, linked by the other one
    assert await request_as(services, 4343) is None
    code = await identity.create_link_code(other, ops.id)
    assert (await identity.redeem_link_code(other, code, "telegram", 4343)).ok
    assert (await request_as(services, 4343)).username == "ops"

    # step-up granted here, revoked there (what `piyasa user revoke --elevation` does)
    assert (await auth.verify_step_up(services, ops.id, pyotp.TOTP(seed).now())).ok
    assert await auth.is_elevated(services, ops.id)
    await svc.revoke_elevation(other, A, "ops")
    assert not await auth.is_elevated(services, ops.id)
    # granted there, seen here; a lock there ends it here
    await auth.grant_elevation(other, ops.id)
    assert await auth.is_elevated(services, ops.id)
    assert (await svc.card(services, "ops")).elevated_until is not None
    await svc.set_locked(other, A, "ops", True)
    assert not await auth.is_elevated(services, ops.id)
    await svc.set_locked(other, A, "ops", False)

    _name, key, _prefix = await svc.regenerate_api_key(other, A, "ops")
    owner = await verify_api_key(services.sessions, key)
    assert owner is not None and owner.username == "ops"
    await svc.revoke_api_key(other, A, "ops", owner.key_id)
    assert await verify_api_key(services.sessions, key) is None

    card = await svc.card(services, "ops")
    await svc.unlink_identity(other, A, "ops", card.identities[0].id)
    assert await request_as(services, OPS_TG) is None


async def test_a_change_by_sql_alone_applies_too(services: Services) -> None:
    """Nothing in Piyasa's code has to announce a change: an operator's UPDATE in psql
    moves the principals version as well."""
    from sqlalchemy import text

    await svc.add_user(services, "boss", "admin")
    await svc.add_user(services, "ops", "operator", telegram_id=OPS_TG)
    assert not (await request_as(services, OPS_TG)).locked
    async with services.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET locked = :t WHERE username = 'ops'"), {"t": True})
    assert (await request_as(services, OPS_TG)).locked


async def piyasa(data_dir: Path, database_url: str, *args: str) -> str:
    """Run `piyasa ...` as its own process (its own memory cache, no Redis)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    env.update(PIYASA_DATA_DIR=str(data_dir), PIYASA_DATABASE_URL=database_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "piyasa.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_cli_lock_set_role_and_revoke_reach_a_running_service(
    settings: Settings, db_url: str
) -> None:
    """The report of issue 11: `piyasa user lock`/`set-role` took 30 s to reach `piyasa up`,
    and `piyasa user revoke NAME --elevation` left the user elevated."""
    engine = create_engine(db_url)
    await migrate.upgrade(engine)  # the CLI checks the schema like `piyasa up` does
    running = Services.build(settings, engine=engine)
    try:
        await svc.add_user(running, "boss", "admin")
        ops = await svc.add_user(running, "ops", "admin", telegram_id=OPS_TG)
        assert (await request_as(running, OPS_TG)).role == "admin"
        await auth.grant_elevation(running, ops.id)

        await piyasa(settings.data_dir, db_url, "user", "set-role", "ops", "viewer")
        assert (await request_as(running, OPS_TG)).role == "viewer"
        out = await piyasa(settings.data_dir, db_url, "user", "revoke", "ops", "--elevation")
        assert "step-up ended" in out
        assert not await auth.is_elevated(running, ops.id)
        await piyasa(settings.data_dir, db_url, "user", "lock", "ops")
        assert (await request_as(running, OPS_TG)).locked
    finally:
        await running.close()


async def test_the_last_known_principal_serves_while_the_database_is_down(
    services: Services,
) -> None:
    """Degraded mode: read-only chat keeps working for people this process has seen."""
    from piyasa.db.engine import make_sessionmaker

    await svc.add_user(services, "ops", "operator", telegram_id=OPS_TG)
    assert (await request_as(services, OPS_TG)).username == "ops"
    down = create_engine("postgresql+asyncpg://piyasa@127.0.0.1:1/down")  # nothing listens
    services.sessions = make_sessionmaker(down)
    try:
        assert (await request_as(services, OPS_TG)).username == "ops"
        assert db_down(services)  # the pipeline now runs read-only commands only
        # someone never seen is nobody: the pipeline answers "database unavailable"
        # (tests/health_chat/test_chat_outage.py), never "link your account"
        assert await request_as(services, 4343) is None
        # a snapshot past its age bound is not trusted
        memo = identity.principal_memo(services)
        memo.confirmed_at = time.monotonic() - identity.SNAPSHOT_MAX_AGE_S - 1
        assert await request_as(services, OPS_TG) is None
    finally:
        await down.dispose()
