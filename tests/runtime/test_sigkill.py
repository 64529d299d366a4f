"""SIGKILL the fleet's process with messages in the outbox, start it again: exactly once.

The Telegram sandbox lives in this (the test's) process, so killing the fleet's process
does not kill the record of what Telegram accepted. Fresh fleet processes are the point
here: each test SIGKILLs one mid-work and lets a second one finish, so none is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from piyasa.db.models import Message, Setting
from piyasa.db.runtime_models import OutboxItem
from tests.runtime.helpers import outbox_states, seed, until
from tests.waiting import finishes

pytestmark = pytest.mark.slow


async def spawn(services, sandbox_url: str, wait: bool = False) -> asyncio.subprocess.Process:
    """A fleet process; with ``wait`` it imports and connects, then waits for ``go()``."""
    s = services.settings
    env = {
        **os.environ,
        "PIYASA_DATA_DIR": str(s.data_dir),
        "PIYASA_DATABASE_URL": str(services.engine.url.render_as_string(hide_password=False)),
        "PIYASA_SECRET_KEY": s.secret_key.reveal(),
        "PIYASA_TELEGRAM_API_URL": sandbox_url,
        "PIYASA_REDIS_URL": "",
        "PIYASA_FLEET_RECEIVE": "off",
        "PIYASA_LOG_LEVEL": "WARNING",
        "PIYASA_FLEET_WAIT_STDIN": "1" if wait else "",
    }
    if "search_path" in env["PIYASA_DATABASE_URL"] or services.engine.dialect.name == "postgresql":
        env["PIYASA_DATABASE_URL"] = os.environ.get(
            "_PIYASA_TEST_DB_URL", env["PIYASA_DATABASE_URL"]
        )
    log = Path(s.data_dir) / f"fleet-{len(_children)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:  # noqa: ASYNC230 - the child keeps its own copy of the fd
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "piyasa.runtime",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    proc.log = log  # type: ignore[attr-defined]
    _children.append(proc)
    return proc


def output(proc: asyncio.subprocess.Process) -> str:
    return proc.log.read_text(errors="replace")  # type: ignore[attr-defined]


def alive(proc: asyncio.subprocess.Process) -> None:
    """Stop waiting at once, with its output, if the fleet process we wait on has exited."""
    if proc.returncode is not None:
        raise AssertionError(f"the fleet process exited {proc.returncode}:\n{output(proc)}")


async def set_rate(services, per_min: float) -> None:
    async with services.sessions() as session, session.begin():
        row = await session.get(Setting, "max_msgs_per_min")
        if row is None:
            session.add(Setting(key="max_msgs_per_min", value=per_min))
        else:
            row.value = per_min
            row.version += 1


async def decided_texts(services) -> list[str]:
    async with services.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(Message.text).join(OutboxItem, OutboxItem.message_id == Message.id)
                )
            ).all()
        )


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it exited, not yet reaped
            os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


async def go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


async def finish(services, sandbox, proc: asyncio.subprocess.Process) -> None:
    """Start the (warm) second process with no new chatter; wait until the outbox is empty."""
    await set_rate(services, 0)
    await go(proc)
    try:

        async def drained():
            alive(proc)
            st = await outbox_states(services)
            return not any(st.get(k) for k in ("queued", "claimed", "sending"))

        await until(
            drained,
            "every decided message delivered after the restart",
            output=lambda: output(proc),
        )
    finally:
        if proc.returncode is None:
            proc.terminate()
        await finishes(proc.wait(), "the second fleet process to exit after SIGTERM")


@pytest.fixture
async def db_env(db_url, monkeypatch):
    """The database URL for child processes; kills any child a failed test left behind."""
    monkeypatch.setenv("_PIYASA_TEST_DB_URL", db_url)
    yield
    for proc in _children:
        await kill(proc)
    _children.clear()


_children: list[asyncio.subprocess.Process] = []


async def test_sigkill_while_sends_are_held_back_then_exactly_once(services, sandbox, db_env):
    await seed(services, sandbox, bots=3, chats=2)
    await set_rate(services, 600)
    sandbox.inject_error(method="sendMessage", error_code=429, retry_after=2, count=None)
    proc = await spawn(services, sandbox.base_url)
    second = await spawn(services, sandbox.base_url, wait=True)
    try:

        async def backlog():
            alive(proc)
            st = await outbox_states(services)
            refused = [c for c in sandbox.calls("sendMessage") if c["error_code"] == 429]
            return sum(st.values()) >= 8 and len(refused) >= 2  # one head per chat

        await until(backlog, "a backlog held back by 429s", output=lambda: output(proc))
    finally:
        await kill(proc)
    assert sandbox.sent() == []  # nothing got through before the kill
    decided = await decided_texts(services)
    sandbox.clear_errors()
    await finish(services, sandbox, second)
    delivered = Counter(m["text"] for m in sandbox.sent())
    assert delivered == Counter(decided)  # every decided message, exactly once


async def test_sigkill_mid_stream_duplicates_only_from_the_ambiguous_rows(
    services, sandbox, db_env
):
    await seed(services, sandbox, bots=3, chats=3)
    await set_rate(services, 6000)
    proc = await spawn(services, sandbox.base_url)
    second = await spawn(services, sandbox.base_url, wait=True)
    try:

        def flowing() -> bool:
            alive(proc)
            return len(sandbox.sent()) >= 15

        await until(flowing, "messages flowing", output=lambda: output(proc))
    finally:
        await kill(proc)
    states = await outbox_states(services)
    ambiguous = states.get("sending", 0)
    decided = await decided_texts(services)
    await finish(services, sandbox, second)
    delivered = Counter(m["text"] for m in sandbox.sent())
    assert set(delivered) == set(decided)  # nothing lost
    extra = sum(n - Counter(decided)[t] for t, n in delivered.items())
    assert 0 <= extra <= ambiguous, (extra, ambiguous, json.dumps(states))
