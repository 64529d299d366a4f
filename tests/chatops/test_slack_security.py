"""Issue 11 items 7 and 12 on the Slack route: signed HTTP requests into the running aiohttp
app (real slack-bolt behind it). A captured request replayed within Slack's five-minute
window is refused (memory and Redis caches; two processes sharing Redis), and an unsigned,
badly signed or stale request gets 401 with its body neither parsed nor logged.

SQLite only: what is refused does not depend on the database backend (the audit row of a
replay is a plain insert, covered on both backends by tests/chatops/test_slack_flows.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatops.slack.verify import SeenSignatures
from piyasa.cache import RedisCache
from piyasa.tasks import wait_for
from tests.chatops.conftest import start_slack
from tests.chatops.harness import audit_count, with_admin_settings
from tests.chatops.slack_server import TEAM_ID, SlackClient, sign, slack_text
from tests.conftest import REDIS_URL, SKIP_REDIS, redis_available, skip_or_fail
from tests.waiting import HANG_S, until


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


def _namespace() -> str:
    return f"test:{uuid.uuid4().hex[:8]}:"


def _redis_or_skip() -> None:
    if not redis_available():
        skip_or_fail(SKIP_REDIS)


@pytest.fixture(params=["memory", "redis"])
async def slack_on(request, services, people, slack_server) -> AsyncIterator[SlackClient]:  # type: ignore[no-untyped-def]
    """The Slack app on the memory cache, or with Redis as ``services.cache``."""
    with_admin_settings(services, "http://127.0.0.1:9")
    if request.param == "redis":
        _redis_or_skip()
        await services.cache.close()
        services.cache = RedisCache(REDIS_URL, namespace=_namespace())
    async for client, _surface in start_slack(services, slack_server):
        yield client


def slash_body(user_id: str, text: str, response_url: str) -> str:
    return urllib.parse.urlencode(
        {"team_id": TEAM_ID, "channel_id": "C0OPS", "user_id": user_id,
         "user_name": user_id.lower(), "command": "/piyasa", "text": text,
         "api_app_id": "A0PIYASA", "response_url": response_url, "trigger_id": "1.trigger"}
    )  # fmt: skip


async def _audit_rows(services, after: int, result: str) -> list:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from piyasa.db.models import AuditEntry

    async with services.sessions() as session:
        stmt = select(AuditEntry).where(AuditEntry.id > after, AuditEntry.result == result)
        return list(await session.scalars(stmt))


def _dms(server: Any) -> list[dict]:
    return [m for m in server.posted if m["channel"] == "D0ADMIN"]


async def test_a_replayed_request_is_refused_and_audited(slack_on, slack_server, caplog) -> None:
    """A captured `/piyasa linkcode` replayed would mint another link code for the
    attacker's benefit: each run DMs a new code, so the DMs count the runs."""
    slack = slack_on
    caplog.set_level(logging.DEBUG)
    body = slash_body("U0ADMIN", "linkcode user_viewer", slack_server.new_response_url())
    headers = sign(slack.secret, body)
    status, _ = await slack.post(body, headers)
    assert status == 200
    await until(lambda: len(_dms(slack_server)) == 1, "the link code DM")
    before = await audit_count(slack.services)
    status, replay = await slack.post(body, headers)  # the same bytes, within the window
    assert status == 401 and "linkcode" not in replay
    rows = await until(
        lambda: _audit_rows(slack.services, before, "refused_replay"), "the replay's audit row"
    )
    assert rows[0].surface == "slack" and "user_viewer" not in json.dumps(rows[0].params or {})
    # the same command signed afresh (a new timestamp: what Slack sends when it is typed
    # again) runs; had the replay run too, there would be three DMs
    status, _ = await slack.post(body, sign(slack.secret, body, int(time.time()) + 1))
    assert status == 200
    await until(lambda: len(_dms(slack_server)) >= 2, "the second link code DM")
    assert len(_dms(slack_server)) == 2
    refused = [r.getMessage() for r in caplog.records if "replayed signature" in r.getMessage()]
    assert refused and not [line for line in refused if "linkcode" in line]
    assert "linkcode" not in "".join(r.getMessage() for r in caplog.records if r.levelno >= 30)


@pytest.mark.parametrize(
    "case", ["no headers", "bad signature", "stale", "future", "malformed timestamp"]
)
async def test_unsigned_bad_or_stale_requests_get_401_unparsed_and_unlogged(
    slack, slack_server, caplog, case
) -> None:
    """The body is one slack-bolt cannot parse (``payload=`` that is not JSON): before the
    fix, bolt parsed it ahead of the signature check and answered 500."""
    caplog.set_level(logging.DEBUG)
    marker = f"unsigned-{uuid.uuid4().hex}"
    body = urllib.parse.urlencode({"payload": "{not json " + marker})
    now = int(time.time())
    headers = {
        "no headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "bad signature": sign("not-the-signing-secret", body),
        "stale": sign(slack.secret, body, now - 301 - 5),
        "future": sign(slack.secret, body, now + 301 + 5),
        "malformed timestamp": {**sign(slack.secret, body), "X-Slack-Request-Timestamp": "1e9"},
    }[case]
    before = await audit_count(slack.services)
    status, answer = await slack.post(body, headers)
    assert status == 401 and marker not in answer
    assert marker not in caplog.text
    assert "slack request refused (401)" in caplog.text
    assert await audit_count(slack.services) == before  # nothing ran, nothing recorded


async def test_a_signed_slash_command_still_works_after_the_checks(slack, slack_server) -> None:
    """A command signed the way Slack signs it is answered (bolt's own check agrees)."""
    status, ack, _ = await slack.slash("U0VIEWER", "whoami")
    assert status == 200 and "viewer" in slack_text(ack)


def test_the_local_seen_map_is_bounded_and_forgets_after_its_ttl() -> None:
    now = [0.0]
    seen = SeenSignatures(ttl_s=600, max_size=3, clock=lambda: now[0])
    assert seen.add("a") and not seen.add("a")
    assert seen.add("b") and seen.add("c") and seen.add("d")
    assert len(seen) == 3 and seen.add("a")  # the oldest went first to stay within bounds
    now[0] = 601.0
    assert seen.add("d") and len(seen) == 1


def _second_process(tmp_path: Path, api_url: str, namespace: str) -> tuple[Any, int]:
    """Start tests.chatops.slack_proc and wait (in a worker thread) for its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.chatops.slack_proc", str(tmp_path / "proc"), api_url,
         REDIS_URL, namespace],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY "):  # then drain its output, so it never blocks on it
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(line.split()[1])
    raise AssertionError(f"the second process exited {proc.wait()} before serving")


async def test_two_processes_sharing_redis_refuse_each_others_replays(
    services, people, slack_server, tmp_path
) -> None:
    _redis_or_skip()
    namespace = _namespace()
    with_admin_settings(services, "http://127.0.0.1:9")
    await services.cache.close()
    services.cache = RedisCache(REDIS_URL, namespace=namespace)
    api_url = slack_server.base + "/api/"
    proc, port = await wait_for(
        asyncio.to_thread(_second_process, tmp_path, api_url, namespace), HANG_S
    )
    try:
        async for here, _surface in start_slack(services, slack_server):
            there = SlackClient(slack_server, f"http://127.0.0.1:{port}/slack/events")
            for first, second in ((here, there), (there, here)):
                body = slash_body("U0VIEWER", "help", slack_server.new_response_url())
                headers = sign(first.secret, body)
                assert (await first.post(body, headers))[0] == 200
                assert (await second.post(body, headers))[0] == 401
                assert (await first.post(body, headers))[0] == 401
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.to_thread(proc.wait, HANG_S)
