"""`piyasa db copy`: SQLite -> PostgreSQL with row counts, safe to re-run; and the wizard's
[Migrate now] with its progress message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, make_url, select, text

from piyasa.admin.setup.dbcopy import CopyError, copy_database
from piyasa.crypto import fingerprint
from piyasa.db import migrate
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.db.models import AuditEntry, Bot, Chat, Message, Setting, User
from tests.conftest import (
    POSTGRES_URL,
)


async def seeded_sqlite(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'src.db'}")
    await migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as s, s.begin():
        s.add(User(username="boss", role="admin", password_hash="x"))
        for i in range(3):
            s.add(
                Bot(
                    telegram_id=100 + i,
                    token_encrypted="enc",
                    token_fingerprint=fingerprint(str(i)),
                )
            )
        chat = Chat(telegram_id=-1001, title="G", topics=["fx"])
        s.add(chat)
        s.add(Setting(key="llm_model", value="gpt-4o-mini"))
        s.add(Setting(key="llm_prices", value={"gpt": {"in": 0.1}}))
    async with sessions() as s, s.begin():
        for i in range(1200):  # more than one batch
            s.add(
                Message(chat_id=chat.id, bot_id=1, author_kind="bot", text=f"m{i}", status="sent")
            )
        s.add(AuditEntry(actor="cli", surface="cli", action="x", result="ok", params={"a": 1}))
    return engine


async def test_copy_counts_match_rerun_is_safe_and_ids_continue(
    tmp_path: Path, pg_url: str
) -> None:
    src = await seeded_sqlite(tmp_path)
    seen: list[str] = []
    try:
        report = await copy_database(src, pg_url, progress=lambda t, *_: seen.append(t))
        assert report.ok, report.as_json()
        counts = report.as_json()["tables"]
        assert counts["messages"] == {"source": 1200, "target": 1200, "ok": True}
        assert counts["bots"]["target"] == 3 and counts["settings"]["target"] == 2
        assert "messages" in seen and seen[-1] == ""  # progress per table, then done
        again = await copy_database(src, pg_url)
        assert again.ok and again.rows == report.rows
        dst = create_engine(pg_url)
        try:
            sessions = make_sessionmaker(dst)
            async with sessions() as s, s.begin():
                s.add(Bot(telegram_id=999, token_encrypted="e", token_fingerprint="new"))
            async with sessions() as s:
                assert await s.scalar(select(func.max(Bot.id))) == 4  # the sequence moved on
                prices = await s.scalar(select(Setting.value).where(Setting.key == "llm_prices"))
                assert prices == {"gpt": {"in": 0.1}}
        finally:
            await dst.dispose()
        grown = await copy_database(src, pg_url)  # target now has a row the source lacks
        assert not grown.ok and [t.name for t in grown.mismatched] == ["bots"]
    finally:
        await src.dispose()


async def test_mirror_copy_converges_exactly_or_leaves_the_target_as_it_was(
    tmp_path: Path, pg_url: str
) -> None:
    src = await seeded_sqlite(tmp_path)
    dst = create_engine(pg_url)
    sessions = make_sessionmaker(dst)
    try:
        assert (await copy_database(src, pg_url)).ok
        async with sessions() as s, s.begin():  # a row the source never had (or deleted)
            s.add(Setting(key="setup.wizard.telegram.1.1", value={"step": 3}))
        mirrored = await copy_database(src, pg_url, mirror=True)
        assert mirrored.ok and mirrored.as_json()["tables"]["settings"]["target"] == 2
        async with sessions() as s:
            assert not await s.get(Setting, "setup.wizard.telegram.1.1")
            assert await s.scalar(select(func.count()).select_from(Message)) == 1200
        async with dst.begin() as conn:  # the target refuses a row half-way through
            await conn.execute(
                text("ALTER TABLE messages ADD CONSTRAINT no_m7 CHECK (text <> 'm7') NOT VALID")
            )
        async with sessions() as s, s.begin():
            s.add(Setting(key="only.in.target", value=1))
        with pytest.raises(CopyError, match=r"stopped \(IntegrityError\); the target was left"):
            await copy_database(src, pg_url, mirror=True)
        async with sessions() as s:  # rolled back as a whole: nothing deleted, nothing added
            assert await s.get(Setting, "only.in.target")
            assert await s.scalar(select(func.count()).select_from(Message)) == 1200
    finally:
        await dst.dispose()
        await src.dispose()


async def test_copy_refuses_an_unreachable_target_with_the_next_step(tmp_path: Path) -> None:
    src = await seeded_sqlite(tmp_path)
    try:
        with pytest.raises(CopyError, match="check the URL and that the server is running"):
            await copy_database(src, "postgresql://nobody:pw@127.0.0.1:1/none")
    finally:
        await src.dispose()


async def test_wizard_migrate_now_copies_with_progress_then_start_system_switches(
    world, pg_url
) -> None:  # type: ignore[no-untyped-def]
    from piyasa.config import load_settings
    from tests.setup.helpers import NEWCOMER

    code = await world.admin_with_code("boss")
    me = world.person(NEWCOMER)
    await me.say(f"/setup {code}")
    await me.tap("Next")
    await me.tap("Later")
    await me.tap("Later")
    await me.tap("PostgreSQL")
    reply = await me.say(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    test_db = make_url(POSTGRES_URL)  # PIYASA_TEST_POSTGRES_URL, whatever it points at
    assert f"Connected to {test_db.host}:{test_db.port or 5432}/{test_db.database}" in reply["text"]
    reply = await me.tap("Migrate now", expect="Copied")
    assert "every table's row count matches" in reply["text"]
    progress = [m for m in world.box.sb.sent(NEWCOMER) if "Copying data" in (m.get("text") or "")]
    assert progress, "no progress message"
    await me.tap("Next")
    await me.tap("Next")
    await me.tap("Next")  # the admin chat step (one is configured)
    reply = await me.tap("Start system", expect="System started")
    # the switch happens here, in the running process: no restart is waited for
    assert "is live now" in reply["text"] and "kept unchanged as a fallback" in reply["text"]
    assert "Waiting for a restart" not in reply["text"]
    assert world.services.settings.database_url.startswith("postgresql+asyncpg://")
    after = load_settings({"PIYASA_DATA_DIR": str(world.data_dir)})
    assert (
        after.database_url.startswith("postgresql+asyncpg://")
        and "search_path" in after.database_url
    )
