"""Notifications end to end (issue 13, "Done when"), under a real `piyasa up`.

One world (tests/e2e/faultworld.py's servers: a private PostgreSQL and Redis, the Telegram
sandbox, the Slack fake, the fake OpenAI server) plus a local SMTP server (aiosmtpd), and
one subscribed admin ("boss") who hears of incidents in their Telegram DM, their Slack DM
and by email (an email channel). The scenarios walk one timeline, so the suite pays for
one process and one restart:

1. a silence (`/silence key=redis 1m`) mutes a Redis outage: no notice anywhere, the
   incident shows as silenced;
2. quiet hours (`/notify quiet ...` around now): the LLM endpoint dies (critical) and the
   SMTP server is down: the critical passes quiet hours to both DMs at once; the email
   waits visible as pending in `/alerts`, `/health`, /api/health and the status page; the
   channel's own "keeps failing" warning reaches the admin group but is held from the
   boss's DMs; the email arrives once the SMTP server is back;
3. the silence has expired: Redis goes down again and the boss hears of it on Telegram,
   Slack and email; Ack pressed on the Slack notice shows acknowledged in Telegram's
   `/alerts`; `piyasa up` restarts in the middle of the outage; Redis recovers; each of
   the three got exactly one alert and one recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from chatops import i18n
from piyasa.admin.notify import destinations, routing
from piyasa.admin.notify.service import default_channel_factory
from piyasa.admin.users import CLI, add_user, regenerate_api_key
from piyasa.config import load_settings
from piyasa.db.migrate import upgrade
from piyasa.db.notify_models import Notification, NotifyDelivery, NotifySilence
from piyasa.sandbox.llm_server import FakeOpenAIServer
from piyasa.services import Services
from tests.chatops.harness import ADMIN_BOT_TOKEN, ADMIN_GROUP, PEOPLE, buttons
from tests.chatops.slack_server import (
    SlackClient,
    SlackServer,
    dm_of,
    slack_buttons,
    slack_text,
)
from tests.e2e.faultworld import _plain, world_env
from tests.e2e.procs import PiyasaProcess, free_port
from tests.notify.channels.conftest import Inbox
from tests.servers import OwnPostgres, OwnRedis
from tests.waiting import PatientSandbox, until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BOSS_TG, BOSS_SLACK = PEOPLE["admin"]
BOT_ID = int(ADMIN_BOT_TOKEN.split(":")[0])
SILENCE = "1m"  # the shortest a silence can be; it expires while scenario 2 runs
FAILING = "Notifications to channel:mail keep failing"


class Smtp:
    """aiosmtpd on a fixed port that the test can stop and start again (an outage)."""

    def __init__(self) -> None:
        self.inbox = Inbox(free_port())
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.inbox.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def mails(self, fingerprint: str) -> list[Any]:
        return [
            m for _to, m, _tls in self.inbox.received if m["X-Piyasa-Fingerprint"] == fingerprint
        ]


@dataclass
class World:
    proc: PiyasaProcess
    env: dict[str, str]
    tmp: Path
    sb: PatientSandbox
    slack: SlackServer
    llm: FakeOpenAIServer
    llm_port: int
    redis: OwnRedis
    smtp: Smtp
    http: aiohttp.ClientSession
    db: Services  # the test's own view of the database
    boss_id: int
    api_key: str  # the boss's: /api/health's full view

    # -- what the boss sees ------------------------------------------------------------

    def dm(self) -> list[str]:
        """The bot's messages in the boss's Telegram DM."""
        return [
            _plain(m)
            for m in self.sb.messages(BOSS_TG, bot_id=BOT_ID)
            if (m.get("from") or {}).get("id") == BOT_ID
        ]

    def group(self) -> list[str]:
        return [
            _plain(m)
            for m in self.sb.messages(ADMIN_GROUP)
            if (m.get("from") or {}).get("id") == BOT_ID
        ]

    def slack_dm(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.posted if m["channel"] == dm_of(BOSS_SLACK)]

    def slack_dm_heads(self) -> list[str]:
        return [slack_text(m).split("\n", 1)[0] for m in self.slack_dm()]

    async def say(self, text: str) -> dict[str, Any]:
        """The boss writes ``text`` to the bot in private; the bot's answer (a notice pushed
        to the DM meanwhile is no answer: the outages here push them on their own time)."""
        mark = self.sb.mark()
        await self.sb.send_user_message(BOSS_TG, BOSS_TG, text, bot_id=BOT_ID)
        return await self.sb.wait_for_message(
            lambda m: not is_notice(m), chat_id=BOSS_TG, bot_id=BOT_ID, after=mark
        )

    async def say_until(self, text: str, wanted: str) -> str:
        """Send ``text`` until the answer holds ``wanted`` (a state the process reaches)."""

        async def answered() -> str | None:
            got = _plain(await self.say(text))
            return got if wanted in got else None

        return await until(answered, f"{text!r} answering {wanted!r}", interval=0.5,
                           output=self.proc.output)  # fmt: skip

    # -- the database and the status page ------------------------------------------------

    async def incident(self, fingerprint: str) -> Notification | None:
        async with self.db.sessions() as session:
            return await session.scalar(
                select(Notification)
                .where(Notification.fingerprint == fingerprint)
                .order_by(Notification.id.desc())
            )

    async def deliveries(self, nid: int) -> list[NotifyDelivery]:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(NotifyDelivery).order_by(NotifyDelivery.id))
            return [r for r in rows if nid in (r.notification_ids or [])]

    async def active_silences(self) -> int:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(NotifySilence))
            now = datetime.now(UTC)
            return sum(1 for s in rows if _aware(s.ends_at) > now)

    async def api_health(self, *, full: bool = False) -> dict[str, Any]:
        auth = {"Authorization": f"Bearer {self.api_key}"} if full else {}
        async with self.http.get(self.proc.http_url + "/api/health", headers=auth) as r:
            return await r.json()

    async def component_critical(self, name: str, critical: bool) -> None:
        async def seen() -> bool:
            self.proc._alive(f"{name} critical={critical}")
            comps = (await self.api_health()).get("components") or []
            comp = next((c for c in comps if c["name"] == name), {})
            return bool(comp) and (comp.get("state") == "critical") == critical

        what = f"/api/health: {name} {'critical' if critical else 'not critical'}"
        await until(seen, what, interval=0.2, output=self.proc.output)

    async def serving(self) -> None:
        async def up() -> bool:
            self.proc._alive("/api/health")
            try:
                return bool((await self.api_health()).get("components"))
            except (aiohttp.ClientError, ValueError):
                return False

        await until(up, "/api/health to serve components", interval=0.2, output=self.proc.output)


NOTICE_BUTTONS = {i18n.t("en", "alerts.btn.view"), i18n.t("en", "alerts.btn.open_center")}


def is_notice(message: dict[str, Any]) -> bool:
    """Whether a DM message is a pushed notice (chatops/alert_views.notice_view): one
    incident carries "View details", a group "Open alerts", a recovery reads "✅ Resolved: …"."""
    labels = {text for text, _data in buttons(message)}
    return bool(labels & NOTICE_BUTTONS) or _plain(message).startswith("✅ Resolved: ")


def _mail_text(mail: Any) -> str:
    return mail.get_body(("plain",)).get_content()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _seed(env: dict[str, str], smtp: Smtp) -> tuple[int, str]:
    """The schema, the boss (admin, linked on Telegram and Slack, subscribed to critical
    and warning on both) and the email channel, through the product's own services."""
    services = Services.build(load_settings(env))
    try:
        await upgrade(services.engine)
        boss = await add_user(services, "boss", "admin", telegram_id=BOSS_TG, slack_id=BOSS_SLACK)
        for setting, value in (("on", ""), ("severities", "critical,warning")):
            await routing.set_pref(services, boss.id, setting, value)
        config = {
            "host": "127.0.0.1",
            "port": str(smtp.inbox.port),
            "from": "Piyasa <piyasa@example.test>",
            "to": "boss@example.test",
            "starttls": "false",
        }
        await destinations.add_channel(services, "mail", "email", config, default_channel_factory)
        return boss.id, (await regenerate_api_key(services, CLI, "boss"))[1]
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def notify_world(tmp_path: Path, pg: OwnPostgres, redis: OwnRedis) -> AsyncIterator[World]:
    sb = PatientSandbox()
    sb.add_bot(token=ADMIN_BOT_TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin")
    sb.add_user(user_id=BOSS_TG, first_name="Bora", username="boss", language_code="en")
    sb.add_group(
        chat_id=ADMIN_GROUP, title="Piyasa Ops", members=[BOT_ID, BOSS_TG], admins=[BOT_ID]
    )
    telegram_url = await sb.start("127.0.0.1", 0)
    slack = SlackServer()
    await slack.start()
    llm, llm_port = FakeOpenAIServer(latency=(0.0, 0.01)), free_port()
    llm_url = await llm.start("127.0.0.1", llm_port)
    smtp = Smtp()
    smtp.start()
    env = world_env(tmp_path, pg, redis, telegram_url, slack, llm_url)
    boss_id, api_key = await _seed(env, smtp)
    db = Services.build(load_settings(env))
    procs = [PiyasaProcess(["up"], env, tmp_path / "up-1.log")]
    world: World | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            world = World(
                procs[0],
                env,
                tmp_path,
                sb,
                slack,
                llm,
                llm_port,
                redis,
                smtp,
                http,
                db,
                boss_id,
                api_key,
            )
            await world.serving()
            yield world
    finally:
        if world is not None and world.proc is not procs[0]:
            procs.append(world.proc)  # the process a restart started
        codes = [await asyncio.to_thread(p.stop) for p in procs]
        await db.close()
        smtp.stop()
        await sb.stop()
        await slack.stop()
        await llm.stop()
    for proc, code in zip(procs, codes, strict=True):
        output = proc.output()
        assert code == 0 and "Traceback" not in output, output[-3000:]


async def restart(world: World) -> None:
    """Stop `piyasa up` and start a new one on the same database and data dir."""
    code = await asyncio.to_thread(world.proc.stop)
    assert code == 0, world.proc.output()[-3000:]
    world.proc = PiyasaProcess(["up"], world.env, world.tmp / "up-2.log")
    await world.serving()


# -- the scenarios ------------------------------------------------------------------------------


async def silenced_outage(world: World) -> None:
    """1. A silence mutes a matching event: the incident is kept, silenced, told nowhere."""
    answer = await world.say(f"/silence key=redis {SILENCE} maintenance")
    assert "key=redis" in _plain(answer), _plain(answer)
    world.redis.kill()
    await world.component_critical("redis", True)

    async def silenced() -> Notification | None:
        row = await world.incident("health:redis")
        return row if row is not None and row.state == "silenced" else None

    row = await until(silenced, "the Redis incident stored as silenced", output=world.proc.output)
    center = await world.say("/alerts")
    assert "🔕" in _plain(center) and "silenced" in _plain(center), _plain(center)
    world.redis.start()
    await world.component_critical("redis", False)

    async def resolved() -> bool:
        again = await world.incident("health:redis")
        return again is not None and again.state == "resolved"

    await until(resolved, "the silenced incident to resolve", output=world.proc.output)
    assert await world.deliveries(row.id) == []  # decided in the database: never owed
    assert Counts(world).all() == {"telegram": (0, 0), "slack": (0, 0), "email": (0, 0)}
    assert not any(
        t.startswith(("🔴 Critical: Redis", "✅ Resolved: Redis")) for t in world.group()
    )


async def quiet_hours_and_pending(world: World) -> None:
    """2. Quiet hours hold a warning and pass a critical; an email that cannot go out is
    visible as pending everywhere an operator looks, and goes once the server is back."""
    now = datetime.now(UTC)
    span = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    answer = await world.say(f"/notify quiet {span}")
    assert span in _plain(answer), _plain(answer)
    world.smtp.stop()
    await world.llm.stop()
    await world.component_critical("llm", True)
    # the critical passes quiet hours, at once, to both of the boss's DMs
    await until(lambda: any(t.startswith("🔴 Critical: LLM provider") for t in world.dm()),
                "the LLM alert in the boss's Telegram DM", output=world.proc.output)  # fmt: skip
    await until(lambda: any("Critical: LLM provider" in h for h in world.slack_dm_heads()),
                "the LLM alert in the boss's Slack DM", output=world.proc.output)  # fmt: skip
    # the email cannot go: pending in /alerts, /health, /api/health and the status page
    pending = await world.say_until("/alerts", "not delivered yet")
    assert "notification(s) not delivered yet" in pending, pending
    assert "waiting to be delivered" in await world.say_until("/health", "waiting to be delivered")
    assert (await world.api_health(full=True))["undelivered_notifications"] >= 1
    async with world.http.get(world.proc.http_url + "/?lang=en") as r:
        assert "could not be delivered yet" in await r.text()
    # the failing channel warns the others: the group hears it, the boss's DMs hold it
    await until(lambda: any(FAILING in t for t in world.group()),
                "the failing-channel warning in the admin group", output=world.proc.output)  # fmt: skip
    warning = await world.incident("notify:delivery:channel:mail")
    assert warning is not None and warning.severity == "warning"
    held = [d for d in await world.deliveries(warning.id) if d.destination.startswith("user:")]
    assert held and all(d.state == "pending" and d.sent_at is None for d in held), held
    assert not any(FAILING in t for t in world.dm())
    assert not any(FAILING in h for h in world.slack_dm_heads())
    # the SMTP server is back: the held email goes, once
    world.smtp.start()
    await until(lambda: world.smtp.mails("health:llm"), "the LLM alert by email",
                output=world.proc.output)  # fmt: skip
    await world.llm.start("127.0.0.1", world.llm_port)
    await world.component_critical("llm", False)

    def recovered() -> bool:  # told everywhere before the next scenario's outage begins
        mails = world.smtp.mails("health:llm")
        return (
            any(t.startswith("✅ Resolved: LLM provider") for t in world.dm())
            and any("Resolved: LLM provider" in h for h in world.slack_dm_heads())
            and any("— resolved" in _mail_text(m) for m in mails)
        )

    await until(recovered, "the LLM recovery in both DMs and by email", output=world.proc.output)
    answer = await world.say("/notify quiet off")
    assert "Quiet hours" in _plain(answer)


class Counts:
    """Alerts and recoveries about Redis the boss got, per place."""

    def __init__(self, world: World) -> None:
        self.world = world

    def telegram(self) -> tuple[int, int]:
        dm = self.world.dm()
        return (
            sum(t.startswith("🔴 Critical: Redis") for t in dm),
            sum(t.startswith("✅ Resolved: Redis") for t in dm),
        )

    def slack(self) -> tuple[int, int]:
        heads = self.world.slack_dm_heads()
        return (
            sum("Critical: Redis" in h for h in heads),
            sum("Resolved: Redis" in h for h in heads),
        )

    def email(self) -> tuple[int, int]:
        mails = self.world.smtp.mails("health:redis")
        resolved = sum("— resolved" in _mail_text(m) for m in mails)
        return len(mails) - resolved, resolved

    def all(self) -> dict[str, tuple[int, int]]:
        return {"telegram": self.telegram(), "slack": self.slack(), "email": self.email()}

    def report(self) -> str:
        """What each place got (for a failed wait): the counts, the messages, the log."""
        mails = [m["Subject"] for _to, m, _tls in self.world.smtp.inbox.received]
        return (
            f"counts {self.all()}\nTelegram DM {self.world.dm()}\n"
            f"Slack DM {self.world.slack_dm_heads()}\nemail {mails}\n" + self.world.proc.output()
        )


async def outage_ack_restart(world: World) -> None:
    """3. Redis down then up: the boss hears each exactly once on Telegram, Slack and
    email, through an Ack from Slack and a restart in the middle of the outage."""
    await until(_no_silence(world), "the 1-minute silence to expire", output=world.proc.output)
    counts = Counts(world)
    world.redis.kill()
    await world.component_critical("redis", True)
    await until(lambda: all(c[0] >= 1 for c in counts.all().values()),
                "the Redis alert on Telegram, Slack and email", output=counts.report)  # fmt: skip
    # Ack pressed on the Slack DM's notice
    notice = next(m for m in world.slack_dm() if "Critical: Redis" in slack_text(m))
    ack = next(value for label, value in slack_buttons(notice) if "Ack" in label)
    client = SlackClient(world.slack, world.proc.http_url + "/slack/events")
    status, url = await client.press(BOSS_SLACK, ack, channel=dm_of(BOSS_SLACK))
    assert status == 200
    (answer,) = await world.slack.wait_response(url)
    assert "acknowledged" in slack_text(answer), slack_text(answer)
    center = await world.say("/alerts")
    line = next(x for x in _plain(center).splitlines() if "Critical: Redis" in x)
    assert line.lstrip("• ").startswith("✋") and "acknowledged" in line, _plain(center)
    # a restart in the middle of the outage: the new process sees Redis down again
    await restart(world)
    await world.component_critical("redis", True)
    world.redis.start()
    await world.component_critical("redis", False)
    await until(lambda: all(c[1] >= 1 for c in counts.all().values()),
                "the Redis recovery on Telegram, Slack and email", output=counts.report)  # fmt: skip
    assert counts.all() == {"telegram": (1, 1), "slack": (1, 1), "email": (1, 1)}, counts.all()


def _no_silence(world: World) -> Any:
    async def none_left() -> bool:
        return await world.active_silences() == 0

    return none_left


async def test_notifications_under_piyasa_up(
    tmp_path: Path, own_postgres: OwnPostgres, own_redis: OwnRedis
) -> None:
    async with notify_world(tmp_path, own_postgres, own_redis) as world:
        await silenced_outage(world)
        await quiet_hours_and_pending(world)
        await outage_ack_restart(world)
