"""The world of the fault matrix (tests/e2e/test_fault_matrix.py): one real `piyasa up`
on a private PostgreSQL and Redis (tests/servers.py), the Telegram sandbox, the local Slack
and the fake OpenAI server, all started by the test, and an operator who looks at all three
places an operator can look: the admin Telegram group, Slack, and the status page.

The local servers run on the test's event loop, so every wait here is async (aiohttp and
``until``): a blocking wait would stop the very servers the process talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from piyasa.admin.users import CLI, add_user, regenerate_api_key
from piyasa.config import load_settings
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.db.migrate import upgrade
from piyasa.db.models import AuditEntry
from piyasa.sandbox.llm_server import FakeOpenAIServer
from piyasa.services import Services
from tests.chatops.harness import ADMIN_BOT_TOKEN, ADMIN_GROUP, PEOPLE
from tests.chatops.slack_server import SIGNING_SECRET, SlackClient, SlackServer, slack_text
from tests.e2e.procs import PiyasaProcess, base_env, free_port
from tests.servers import OwnPostgres, OwnRedis
from tests.waiting import PatientSandbox, until

OPERATOR_TG, OPERATOR_SLACK = PEOPLE["operator"]
ALERT_CHANNEL = "C0ALERTS"
# Rounds of 1 s instead of 5, so a fault shows within seconds; a slow answer from a loaded
# machine is no outage (latency bounds and the probe timeout far above any loopback round
# trip: CI once saw the in-test Slack fake take over 2 s to answer), down is down (every
# fault here refuses connections, nothing hangs).
HEALTH_ENV = {
    "PIYASA_HEALTH_INTERVAL_S": "1",
    "PIYASA_HEALTH_PROBE_TIMEOUT_S": "15",
    "PIYASA_HEALTH_LATENCY_WARNING_MS": "14000",
    "PIYASA_HEALTH_LATENCY_CRITICAL_MS": "15000",
    # Alertmanager-style timers in seconds, not minutes: a recovery is told within seconds
    # (the defaults, 5 min group_interval, would hold "Resolved" past the test's ceiling)
    "PIYASA_NOTIFY_GROUP_WAIT_S": "1",
    "PIYASA_NOTIFY_GROUP_INTERVAL_S": "2",
    "PIYASA_NOTIFY_RESOLVE_WAIT_S": "1",
}
CRITICAL, RESOLVED = "🔴 Critical: ", "✅ Resolved: "


@dataclass
class FaultWorld:
    """Everything a fault test drives; see :func:`fault_world`."""

    proc: PiyasaProcess
    sb: PatientSandbox
    telegram_url: str
    slack: SlackServer
    llm: FakeOpenAIServer
    llm_port: int
    pg: OwnPostgres
    redis: OwnRedis
    http: aiohttp.ClientSession
    api_key: str
    sent: Counter[str] = field(default_factory=Counter)  # chat commands sent, by action

    # -- the status page ------------------------------------------------------------

    async def component(self, name: str) -> dict[str, Any]:
        """The component ``name`` as /api/health shows it to the operator's API key (state,
        summary: the reason); the public view must show the same state."""
        url = self.proc.http_url + "/api/health"
        async with self.http.get(url, headers={"Authorization": f"Bearer {self.api_key}"}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        async with self.http.get(url) as r:
            public = await r.json()
        full = next((c for c in body["components"] if c["name"] == name), {})
        shown = next((c for c in public["components"] if c["name"] == name), {})
        if full.get("state") != shown.get("state"):  # read at different moments: again
            return {}
        return full

    async def page_until(self, name: str, critical: bool) -> dict[str, Any]:
        """Wait until the status page shows ``name`` critical (or not critical)."""

        async def seen() -> dict[str, Any] | None:
            self.proc._alive(f"{name} critical={critical}")
            comp = await self.component(name)
            return comp if comp and (comp.get("state") == "critical") == critical else None

        what = f"/api/health: {name} {'critical' if critical else 'not critical'}"
        return await until(seen, what, interval=0.2, output=self.proc.output)

    # -- Telegram -------------------------------------------------------------------

    async def say(self, text: str) -> int:
        """The operator writes ``text`` in the admin group; returns the mark before it."""
        mark = self.sb.mark()
        await self.sb.send_user_message(OPERATOR_TG, ADMIN_GROUP, text)
        self.sent[text.lstrip("/").split()[0]] += 1
        return mark

    async def answer(self, mark: int, starts: str) -> dict[str, Any]:
        """The bot's first message in the admin group after ``mark`` starting ``starts``."""
        return await self.sb.wait_for_message(
            lambda m: _plain(m).startswith(starts), chat_id=ADMIN_GROUP, after=mark
        )

    async def tg_health(self) -> str:
        """/health in the admin group: the answer's text."""
        mark = await self.say("/health")
        msg = await self.sb.wait_for_message(
            lambda m: (
                "Health" in _plain(m).split("\n", 1)[0]
                and not _plain(m).startswith((CRITICAL, RESOLVED))
            ),
            chat_id=ADMIN_GROUP,
            after=mark,
        )
        return _plain(msg)

    def group_texts(self, after: int = 0) -> list[str]:
        bot_id = int(ADMIN_BOT_TOKEN.split(":")[0])
        return [
            _plain(m)
            for m in self.sb.messages(ADMIN_GROUP)
            if (m.get("from") or {}).get("id") == bot_id and m["message_id"] > after
        ]

    async def tg_alert(self, kind: str, title: str) -> str:
        """Wait for the alert (``CRITICAL`` or ``RESOLVED``) about ``title`` in the group."""
        msg = await self.sb.wait_for_message(
            lambda m: _plain(m).startswith(kind + title), chat_id=ADMIN_GROUP, after=0
        )
        return _plain(msg)

    def tg_count(self, kind: str, title: str) -> int:
        return sum(t.startswith(kind + title) for t in self.group_texts())

    # -- Slack ----------------------------------------------------------------------

    async def slack_health(self) -> str:
        """``/piyasa health`` by the operator: the answer (ack, or through response_url)."""
        client = SlackClient(self.slack, self.proc.http_url + "/slack/events")
        status, ack, url = await client.slash(OPERATOR_SLACK, "health")
        assert status == 200, ack
        self.sent["slack:health"] += 1
        if isinstance(ack, dict) and ack.get("blocks"):
            return slack_text(ack)
        return slack_text((await self.slack.wait_response(url))[-1])

    def slack_alerts(self, kind: str, title: str) -> list[dict[str, Any]]:
        label = kind.split(" ", 1)[1] + title
        return [
            m
            for m in self.slack.posted
            if m["channel"] == ALERT_CHANNEL and label in slack_text(m).split("\n", 1)[0]
        ]

    async def slack_alert(self, kind: str, title: str) -> str:
        found = await until(
            lambda: self.slack_alerts(kind, title),
            f"Slack alert {kind}{title} in {ALERT_CHANNEL}",
            output=self.proc.output,
        )
        return slack_text(found[0])

    # -- the database -----------------------------------------------------------------

    async def audit_counts(self) -> Counter[str]:
        """Audit rows of the operator's chat commands, by action (slack ones prefixed)."""
        engine = create_engine(self.pg.url)
        try:
            async with make_sessionmaker(engine)() as session:
                rows = await session.execute(
                    select(AuditEntry.surface, AuditEntry.action, func.count())
                    .where(AuditEntry.surface.in_(("telegram", "slack")))
                    .group_by(AuditEntry.surface, AuditEntry.action)
                )
                out: Counter[str] = Counter()
                for surface, action, n in rows:
                    out[("slack:" if surface == "slack" else "") + action] += n
                return out
        finally:
            await engine.dispose()


def _plain(message: dict[str, Any]) -> str:
    return message.get("text") or message.get("caption") or ""


async def _seed(env: dict[str, str]) -> str:
    """Schema and one operator linked on Telegram and Slack, written before the process
    starts (through the product's own migrations and user service); returns the
    operator's API key (the status page's full view)."""
    services = Services.build(load_settings(env))
    try:
        await upgrade(services.engine)
        await add_user(
            services, "ops", "operator", telegram_id=OPERATOR_TG, slack_id=OPERATOR_SLACK
        )
        return (await regenerate_api_key(services, CLI, "ops"))[1]
    finally:
        await services.close()


def world_env(
    tmp_path: Path,
    pg: OwnPostgres,
    redis: OwnRedis,
    telegram_url: str,
    slack: SlackServer,
    llm_url: str,
) -> dict[str, str]:
    """The environment of a `piyasa up` on these servers: the admin bot and group, the
    Slack app with its alert channel, the fake OpenAI endpoint, and HEALTH_ENV's timers."""
    return base_env(
        tmp_path / "data",
        PIYASA_LANG="en",
        PIYASA_DATABASE_URL=pg.url,
        PIYASA_REDIS_URL=redis.url(0),
        PIYASA_ADMIN_BOT_TOKEN=ADMIN_BOT_TOKEN,
        PIYASA_ADMIN_CHAT_IDS=str(ADMIN_GROUP),
        PIYASA_TELEGRAM_API_URL=telegram_url,
        PIYASA_SLACK_BOT_TOKEN=slack.token,
        PIYASA_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PIYASA_SLACK_API_URL=slack.base + "/api/",
        PIYASA_SLACK_ALERT_CHANNEL=ALERT_CHANNEL,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=llm_url,
        PIYASA_LLM_MODEL="gpt-4o-mini",
        **HEALTH_ENV,
    )


@contextlib.asynccontextmanager
async def fault_world(
    tmp_path: Path, pg: OwnPostgres, redis: OwnRedis, *, telegram_up: bool = True
) -> AsyncIterator[FaultWorld]:
    """Start the servers and one `piyasa up` on them; with ``telegram_up=False`` the Bot
    API is not listening yet (``world.sb.start("127.0.0.1", port of world.telegram_url)``
    brings it up). Stops everything, and checks the process stopped cleanly."""
    sb = PatientSandbox()
    sb.add_bot(token=ADMIN_BOT_TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin")
    sb.add_user(user_id=OPERATOR_TG, first_name="Oya", username="oya_ops", language_code="en")
    sb.add_group(
        chat_id=ADMIN_GROUP,
        title="Piyasa Ops",
        members=[*_bot_ids(), OPERATOR_TG],
        admins=_bot_ids(),
    )
    if telegram_up:
        telegram_url = await sb.start("127.0.0.1", 0)
    else:
        telegram_url = f"http://127.0.0.1:{free_port()}"
    slack = SlackServer()
    await slack.start()
    llm, llm_port = FakeOpenAIServer(latency=(0.0, 0.01)), free_port()
    llm_url = await llm.start("127.0.0.1", llm_port)
    env = world_env(tmp_path, pg, redis, telegram_url, slack, llm_url)
    api_key = await _seed(env)
    proc = PiyasaProcess(["up"], env, tmp_path / "up.log")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            world = FaultWorld(
                proc, sb, telegram_url, slack, llm, llm_port, pg, redis, http, api_key
            )
            await _until_serving(world)
            yield world
    finally:
        code = await asyncio.to_thread(proc.stop)
        await sb.stop()
        await slack.stop()
        await llm.stop()
    output = proc.output()
    assert code == 0 and "Traceback" not in output, output[-3000:]
    # No fault here touches the backup schedule: it never read "stopped" (it once did for
    # the moment between winning the backups role and the schedule's start, under load).
    assert "health alert: scheduler firing" not in output, output[-3000:]
    assert ADMIN_BOT_TOKEN.split(":")[1] not in output and slack.token not in output


def _bot_ids() -> list[int]:
    return [int(ADMIN_BOT_TOKEN.split(":")[0])]


async def _until_serving(world: FaultWorld) -> None:
    """Until /api/health answers (the full web app is attached)."""

    async def serving() -> bool:
        world.proc._alive("/api/health")
        try:
            async with world.http.get(world.proc.http_url + "/api/health") as r:
                return r.status == 200 and bool((await r.json()).get("components"))
        except (aiohttp.ClientError, ValueError):
            return False

    await until(serving, "/api/health to serve components", interval=0.2, output=world.proc.output)


async def readyz(world: FaultWorld) -> tuple[int, dict[str, Any]]:
    async with world.http.get(world.proc.http_url + "/readyz") as r:
        return r.status, await r.json()
