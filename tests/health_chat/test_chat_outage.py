"""Chat during outages: kill PostgreSQL or Redis for real and keep talking.

With the database gone, /health, /help, /whoami and the alert's [Details] and [Run checks]
still answer on Telegram and Slack (from the last-known-good principals), a command that
writes says "database unavailable" in the caller's language, and the audit rows of the
outage reach the database after recovery exactly once, from a 0600 spool. With Redis gone,
buttons made before still work, and new ones too.

Each test owns its servers (tests/health/test_faults.py); the shared ones are never
touched. Answers are awaited up to the hang ceiling; how fast they come (the 2 s product
target) is not asserted here.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from chatops import i18n
from piyasa.admin import audit_spool
from piyasa.admin.health.server_probes import DatabaseProbe, RedisProbe
from piyasa.cache import RedisCache
from piyasa.config import Settings
from piyasa.db.availability import db_down
from piyasa.db.base import Base
from piyasa.db.engine import create_engine
from piyasa.db.models import AuditEntry
from piyasa.services import Services
from tests.chatops.conftest import start_slack, start_telegram
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, seed_people
from tests.chatops.slack_server import SlackServer, slack_buttons, slack_text
from tests.health.conftest import EventWaiter
from tests.health_chat.conftest import button, kb, start_alerter, start_health
from tests.health_chat.test_faults import FAULT, critical_alert
from tests.servers import OwnPostgres, OwnRedis
from tests.waiting import until

DB_DOWN_EN = i18n.t("en", "refuse.db_unavailable", help_cmd="/help")
DB_DOWN_TR_START = i18n.t("tr", "refuse.db_unavailable", help_cmd="/help").split(".")[0]


def slack_value(message: dict, label: str) -> str:
    return next(v for text, v in slack_buttons(message) if label in text)


async def slack_world(services: Services) -> Any:
    server = SlackServer()
    await server.start()
    gen = start_slack(services, server)
    client, _surface = await gen.__anext__()
    return server, gen, client


async def refusals(services: Services) -> int:
    async with services.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.result == "refused_db_unavailable")
            )
            or 0
        )


async def test_postgres_down_chat_answers_read_only_and_audit_lands_once(
    settings: Settings,
    own_postgres: OwnPostgres,
) -> None:
    engine = create_engine(own_postgres.url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    try:
        people = await seed_people(services)
        health = await start_health(services, [DatabaseProbe()], thresholds=FAULT)
        waiter = EventWaiter(health)
        async for tg in start_telegram(services):
            tg.user_ids = people
            server, slack_gen, slack = await slack_world(services)
            alerter = await start_alerter(services, tg.surface)
            try:
                # The viewer speaks Turkish (a change of users: it moves the principals
                # version), then everyone is seen once: that is the last-known-good state.
                await tg.say("viewer", "/lang tr")
                for role in ("viewer", "operator"):
                    assert "user_" + role in (await tg.say(role, "/whoami"))["text"]
                    _, ack, _ = await slack.slash(PEOPLE[role][1], "whoami")
                    assert "user_" + role in slack_text(ack)
                _, before, _ = await slack.slash("U0OPERATOR", "health")
                details_before = slack_value(before, "Database")

                own_postgres.kill()
                alert = await critical_alert(tg, waiter, "database", "Database")

                # -- Telegram -------------------------------------------------------
                answer = await tg.say("operator", "/health", group=True)
                assert "🔴 Database" in answer["text"], answer["text"]
                assert db_down(services)  # chat found out; requests no longer wait on it
                assert "/whoami" in (await tg.say("operator", "/help", group=True))["text"]
                who = await tg.say("viewer", "/whoami")
                assert "user_viewer" in who["text"]
                assert i18n.t("tr", "whoami.snapshot") in who["text"]

                mark = await tg.press("operator", ADMIN_GROUP, alert, button(alert, "Details"))
                shown = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
                assert shown["text"].startswith("🔎 Database"), shown["text"]
                assert "🩺 Run all checks now" in kb(shown)
                mark = await tg.press("operator", ADMIN_GROUP, alert, button(alert, "Run all"))
                ran = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
                assert ran["text"].startswith("🔴 Health") and "🔴 Database" in ran["text"]

                assert DB_DOWN_EN in (await tg.say("operator", "/lang tr"))["text"]
                assert DB_DOWN_TR_START in (await tg.say("viewer", "/lang en"))["text"]

                # -- Slack ----------------------------------------------------------
                _, ack, _ = await slack.slash("U0OPERATOR", "health")
                assert "🔴 Database" in slack_text(ack)
                _, ack, _ = await slack.slash("U0OPERATOR", "help")
                assert "/piyasa whoami" in slack_text(ack)
                _, ack, _ = await slack.slash("U0OPERATOR", "whoami")
                assert "user_operator" in slack_text(ack)
                _, url = await slack.press("U0OPERATOR", details_before)
                (pressed,) = await server.wait_response(url)
                assert "🔎 Database" in slack_text(pressed)
                _, ack, _ = await slack.slash("U0OPERATOR", "lang tr")
                assert i18n.t("en", "refuse.db_unavailable", help_cmd="/piyasa help") in (
                    slack_text(ack)
                )
                _, ack, _ = await slack.slash("U0VIEWER", "lang en")
                assert DB_DOWN_TR_START in slack_text(ack)

                # -- the audit rows of the outage -------------------------------------
                spool = audit_spool.spool_path(services)
                assert stat.S_IMODE(spool.stat().st_mode) == 0o600
                spooled = len(spool.read_text().splitlines())
                assert spooled >= 10  # every command and press above

                own_postgres.start()
                await until(lambda: not audit_spool.pending(services), "the spool replayed")
                await until(lambda: not db_down(services), "the database marked up again")
                assert await refusals(services) == 4
                # after recovery, writes go straight through and nothing is replayed twice
                assert "user_operator" in (await tg.say("operator", "/whoami"))["text"]
                set_en = i18n.t("en", "lang.set", name="English")
                assert set_en in (await tg.say("operator", "/lang en"))["text"]
                await audit_spool.replay(services)
                assert await refusals(services) == 4
                async with services.sessions() as session:
                    whoamis = await session.scalar(
                        select(func.count())
                        .select_from(AuditEntry)
                        .where(AuditEntry.action == "whoami")
                    )
                assert whoamis == 4 + 2 + 1  # before, during (tg viewer, slack op), after
            finally:
                await alerter.stop()
                await health.stop()
                await slack_gen.aclose()
                await server.stop()
    finally:
        await services.close()


async def test_redis_down_old_and_new_buttons_work(
    settings: Settings,
    own_redis: OwnRedis,
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    services = Services.build(dataclasses.replace(settings, redis_url=url), engine=engine)
    assert isinstance(services.cache, RedisCache)
    try:
        people = await seed_people(services)
        health = await start_health(services, [RedisProbe(), DatabaseProbe()], thresholds=FAULT)
        waiter = EventWaiter(health)
        async for tg in start_telegram(services):
            tg.user_ids = people
            server, slack_gen, slack = await slack_world(services)
            alerter = await start_alerter(services, tg.surface)
            try:
                old = await tg.say("operator", "/lang")
                _, old_slack, _ = await slack.slash("U0OPERATOR", "lang")

                own_redis.kill()
                alert = await critical_alert(tg, waiter, "redis", "Redis")
                mark = await tg.press("operator", ADMIN_GROUP, alert, button(alert, "Details"))
                shown = await tg.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
                assert shown["text"].startswith("🔎 Redis"), shown["text"]

                # a button made before Redis died
                mark = await tg.press("operator", PEOPLE["operator"][0], old, button(old, "Türkçe"))
                done = await tg.sb.wait_for_message(
                    chat_id=PEOPLE["operator"][0], edits=True, after=mark
                )
                assert "Türkçe" in done["text"], done["text"]
                _, url = await slack.press("U0OPERATOR", slack_value(old_slack, "English"))
                (pressed,) = await server.wait_response(url)
                assert "English" in slack_text(pressed)

                for text in ("/health", "/help", "/whoami"):
                    assert (await tg.say("viewer", text))["text"]
                _, ack, _ = await slack.slash("U0VIEWER", "whoami")
                assert "user_viewer" in slack_text(ack)

                # buttons made while Redis is down
                new = await tg.say("operator", "/lang")
                mark = await tg.press(
                    "operator", PEOPLE["operator"][0], new, button(new, "English")
                )
                done = await tg.sb.wait_for_message(
                    chat_id=PEOPLE["operator"][0], edits=True, after=mark
                )
                assert "English" in done["text"], done["text"]
                _, new_slack, _ = await slack.slash("U0OPERATOR", "lang")
                later = slack_value(new_slack, "Türkçe")
                _, url = await slack.press("U0OPERATOR", slack_value(new_slack, "English"))
                (pressed,) = await server.wait_response(url)
                assert "English" in slack_text(pressed)

                # and after Redis is back, a button made during the outage still works
                own_redis.start()

                async def redis_again() -> bool:
                    await services.cache.get("probe")  # a call is what finds Redis back
                    return not services.cache.down

                await until(redis_again, "the cache to use Redis again")
                _, url = await slack.press("U0OPERATOR", later)
                (pressed,) = await server.wait_response(url)
                assert "Türkçe" in slack_text(pressed)
            finally:
                await alerter.stop()
                await health.stop()
                await slack_gen.aclose()
                await server.stop()
    finally:
        await services.close()
