"""The wizard's database switch loses nothing (issue 12 item 9).

A real detached `piyasa up` on SQLite, driven through the Telegram wizard to [Migrate now]
to a fresh PostgreSQL database and [Start system]; then messages and audit rows written
after the copy, `piyasa restart` (a real new process), and a look into the new database:
everything the wizard stored is there, the post-copy rows exactly once, and the old SQLite
database is left as it was.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pyotp
import pytest
from sqlalchemy import func, make_url, select, text

from piyasa.admin import auth
from piyasa.admin.setup.codes import create_setup_code
from piyasa.admin.users import add_user
from piyasa.config import load_settings
from piyasa.crypto import SecretBox
from piyasa.db import migrate
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.db.models import AuditEntry, Message, Setting, User
from piyasa.services import Services
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, postgres_available, skip_or_fail
from tests.e2e.procs import base_env, run_cli
from tests.setup.helpers import (
    ADMIN_TOKEN,
    FLEET_TOKEN,
    GROUP,
    LLM_KEY,
    NEWCOMER,
    PASSWORD,
    Person,
    start_sandbox,
)
from tests.waiting import until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def fresh_pg() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (``CREATE DATABASE``), dropped afterwards."""
    if not postgres_available():
        skip_or_fail(SKIP_POSTGRES)
    name = "piyasa_switch_" + uuid.uuid4().hex[:10]
    await _as_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _as_admin(sql: str) -> None:
    """Run ``sql`` on the test server with no client-side time limit (the product's
    engine stops a command after 30 s; on a loaded machine this DROP once took longer)."""
    url = make_url(POSTGRES_URL).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=60)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def cli(args: list[str], env: dict[str, str]) -> str:
    """`piyasa ARGS` as a real process, off the loop (the sandbox answers it meanwhile)."""
    done = await asyncio.to_thread(run_cli, args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Db:
    """Read one database the way an operator would after the fact."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = make_sessionmaker(self.engine)

    @classmethod
    def on(cls, engine: Any, sessions: Any) -> Db:
        """A reader over an engine someone else owns (do not close it)."""
        db = cls.__new__(cls)
        db.engine, db.sessions = engine, sessions
        return db

    async def scalar(self, stmt: Any) -> Any:
        async with self.sessions() as s:
            return await s.scalar(stmt)

    async def count(self, model: Any, *where: Any) -> int:
        return int(await self.scalar(select(func.count()).select_from(model).where(*where)))

    async def close(self) -> None:
        await self.engine.dispose()


async def test_switch_to_postgresql_keeps_everything_across_a_restart(
    tmp_path: Path, fresh_pg: str
) -> None:
    box = await start_sandbox()
    data = tmp_path / "data"
    env = base_env(
        data,
        PIYASA_ADMIN_BOT_TOKEN=ADMIN_TOKEN,
        PIYASA_TELEGRAM_API_URL=box.url,
        PIYASA_LANG="en",
    )
    settings = load_settings({"PIYASA_DATA_DIR": str(data)})
    old_url = settings.database_url
    # the first admin and the one-time code, as `piyasa setup` leaves them
    services = Services.build(settings)
    try:
        await migrate.upgrade(services.engine)
        info = await add_user(services, "boss", "admin")
        code = await create_setup_code(services, info.id)
    finally:
        await services.close()
    sb = box.sb
    me = Person(sb, NEWCOMER, box.admin_bot_id)
    old, new = Db(old_url), Db(fresh_pg)
    try:
        await cli(["up", "--detach"], env)
        await sb.wait_for_poller(box.admin_bot_id)

        # steps 1-3: password and two-factor, the LLM, a fleet bot in a group
        await me.say(f"/setup {code}", expect="Step 1/7")
        await me.tap("Set password")
        await me.say(PASSWORD, expect="Password saved")
        mark = sb.mark()
        await me.tap("Turn on two-factor", expect="6-digit code")
        photo = await sb.wait_for_message(
            lambda m: "photo" in m, chat_id=NEWCOMER, bot_id=box.admin_bot_id, after=mark
        )
        totp = pyotp.TOTP(photo["caption"].rsplit(" ", 1)[-1])
        await me.say(totp.now(), expect="Two-factor codes work")
        await me.tap("Next", expect="Step 2/7")
        await me.tap("Other provider")
        await me.say(box.llm_url, expect="Base URL saved")
        await me.say(LLM_KEY, expect="offers 3 models")
        await me.tap("gpt-4o-mini", expect="Step 3/7")
        await me.say(FLEET_TOKEN, expect="@borsa_sohbet_bot")
        await me.say(str(GROUP), expect="Chat added")
        await me.tap("Next", expect="Step 4/7")

        # step 4: PostgreSQL, [Migrate now]; then the summary and [Start system]
        await me.tap("PostgreSQL")
        await me.say(fresh_pg.replace("postgresql+asyncpg://", "postgresql://"), "Connected")
        await me.tap("Migrate now", expect="Copied")
        await me.tap("Next", expect="Step 5/7")
        await me.tap("Next", expect="Step 6/7")
        await me.tap("Skip (no alerts)", expect="Step 7/7")
        mark = sb.mark()
        reply = await me.tap("Start system", expect="System started")
        live = f"PostgreSQL 127.0.0.1:5432/{make_url(fresh_pg).database} is live now"
        assert live in reply["text"] and "kept unchanged as a fallback" in reply["text"]

        # written after the copy: a bot message, a human's message, an audit row
        spoken = await sb.wait_for_message(chat_id=GROUP, bot_id=box.fleet_bot_id, after=mark)
        said = f"after the switch {uuid.uuid4().hex[:8]}"
        await sb.send_user_message(NEWCOMER, GROUP, said)
        await until(
            lambda: _somewhere([old, new], Message, Message.text == said),
            "the human's message stored in either database",
        )
        await me.say("/whoami", expect="boss")
        await until(
            lambda: _somewhere([old, new], AuditEntry, AuditEntry.action == "whoami"),
            "the /whoami audit row in either database",
        )

        out = await cli(["restart"], env)
        # the operator sees which database is live
        assert (
            f"database: postgresql (postgresql+asyncpg://postgres@127.0.0.1:5432/{make_url(fresh_pg).database})"
            in out
        ), out
        await sb.wait_for_poller(box.admin_bot_id)

        # the new database holds what the wizard stored
        box_ = SecretBox(load_settings({"PIYASA_DATA_DIR": str(data)}).secret_key.reveal())
        key = await new.scalar(select(Setting.value).where(Setting.key == "llm_api_key_encrypted"))
        assert key and box_.decrypt(key) == LLM_KEY
        assert await new.scalar(select(Setting.value).where(Setting.key == "llm_model")) == (
            "gpt-4o-mini"
        )
        boss = await new.scalar(select(User).where(User.username == "boss"))
        assert auth.verify_password(boss.password_hash, PASSWORD) and boss.totp_enabled
        assert await new.count(Setting, Setting.key == "setup.completed") == 1
        assert await new.count(Setting, Setting.key.like("setup.wizard.%")) == 0
        # ... and every row written after the copy, exactly once
        assert await new.count(Message, Message.text == said) == 1
        sent = spoken["message_id"]
        assert await new.count(Message, Message.telegram_message_id == sent) == 1
        assert await new.count(AuditEntry, AuditEntry.action == "whoami") == 1

        # the restarted process runs on it: no wizard to resume, two-factor works
        reply = await me.say("/setup")
        assert "Welcome back" not in reply["text"] and "Step 4/7" not in reply["text"]
        reply = await me.say(f"/stepup {totp.at(time.time() + 30)}", expect="Confirmed")
        # the old SQLite database is kept as it was, as a fallback
        assert await old.count(User, User.username == "boss") == 1
        assert await old.count(Message, Message.text == said) == 0
    finally:
        await asyncio.to_thread(run_cli, ["stop"], env)
        await old.close()
        await new.close()
        await box.stop()
        if (data / "piyasa.log").exists():  # shown by pytest when the test failed
            print((data / "piyasa.log").read_text()[-4000:])


async def _somewhere(dbs: list[Db], model: Any, *where: Any) -> bool:
    for db in dbs:
        try:
            if await db.count(model, *where):
                return True
        except Exception:  # the target has no tables yet on today's code path
            continue
    return False


async def test_a_switch_whose_copy_fails_changes_nothing_and_says_why(world, pg_url) -> None:  # type: ignore[no-untyped-def]
    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    await me.tap("Next")
    await me.tap("Later")
    await me.tap("Later")
    await me.tap("PostgreSQL")
    await me.say(pg_url.replace("postgresql+asyncpg://", "postgresql://"), expect="Connected")
    await me.tap("Migrate now", expect="Copied")
    target = Db(pg_url)
    try:
        # the target now refuses a row the switch will send (the completed wizard)
        async with target.engine.begin() as conn:
            await conn.execute(
                text("ALTER TABLE settings ADD CONSTRAINT refuse CHECK (key <> 'setup.completed')")
            )
        async with target.sessions() as s:
            before = sorted((await s.scalars(select(Setting.key))).all())
        await me.tap("Next")
        await me.tap("Next")
        await me.tap("Next")  # the admin chat
        reply = await me.tap("Start system", expect="System started")
        assert "Database not switched: the copy stopped (IntegrityError)" in reply["text"]
        assert "Piyasa stays on SQLite" in reply["text"]
        # nothing changed: the target as it was, the config and the process on SQLite
        async with target.sessions() as s:
            assert sorted((await s.scalars(select(Setting.key))).all()) == before
        assert load_settings({"PIYASA_DATA_DIR": str(world.data_dir)}).sqlite_default
        assert world.services.settings.sqlite_default
        await me.say("/whoami", expect="boss")
        live = Db.on(world.services.engine, world.services.sessions)
        await until(  # later writes still land in SQLite
            lambda: live.count(AuditEntry, AuditEntry.action == "whoami"),
            "the /whoami audit row in SQLite",
        )
        assert await live.count(Setting, Setting.key == "setup.completed") == 1
        assert world.services.extras["fleet"].started  # the fleet runs again, on SQLite
    finally:
        await target.close()
