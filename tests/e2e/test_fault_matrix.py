"""The fault matrix: real faults under one real `piyasa up`, seen where an operator looks.

Every row kills or breaks one dependency for real (tests/e2e/faultworld.py) and records
what the admin Telegram group, Slack and the status page (/api/health) show during the
fault and after recovery, and that nothing was lost: a /whoami sent to the bot during the
fault is answered once, and every chat command's audit row is in the database once. Each
cell is built from what the test asserted; docs/operations.md holds the same rows, and a
row that differs from what was observed fails here with the row to paste.

Two processes: one walks the faults that strike a running Piyasa (each recovers before
the next begins), one starts while the Bot API is unreachable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chatops.harness import ADMIN_BOT_TOKEN
from tests.e2e.faultworld import CRITICAL, RESOLVED, FaultWorld, fault_world, readyz
from tests.servers import OwnPostgres, OwnRedis
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
COLUMNS = ("fault", "tg_during", "tg_after", "slack_during", "slack_after", "page_during",
           "page_after", "kept")  # fmt: skip
WHOAMI = "Your account"
READYZ = "cannot reach the Telegram Bot API ("


def row_line(cells: dict[str, str]) -> str:
    return "| " + " | ".join(cells[c] for c in COLUMNS) + " |"


def check_doc(rows: list[dict[str, str]]) -> None:
    """docs/operations.md must hold each observed row, exactly."""
    lines = [row_line(r) for r in rows]
    print("\n".join(lines))
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    missing = [line for line in lines if line not in doc]
    assert not missing, "docs/operations.md: the fault matrix differs; observed:\n" + "\n".join(
        missing
    )


async def kept(world: FaultWorld, mark: int) -> str:
    """The /whoami sent during the fault (after ``mark``) was answered exactly once; the
    audit rows of every command sent so far reach the database exactly once."""
    await world.answer(mark, WHOAMI)
    answers = [t for t in world.group_texts(mark) if t.startswith(WHOAMI)]
    assert len(answers) == 1, answers
    wanted = ("whoami", "health", "slack:health")

    async def landed() -> bool:
        audit = await world.audit_counts()
        return all(audit[a] == world.sent[a] for a in wanted)

    await until(landed, f"audit rows {dict(world.sent)} in the database", interval=0.5)
    audit = await world.audit_counts()
    assert all(audit[a] == world.sent[a] for a in wanted), (audit, world.sent)  # not more
    return "/whoami sent during the fault answered once; audit rows in the database once"


class Alerts:
    """Counts alerts about ``title`` from now on, in the group and the Slack channel."""

    def __init__(self, world: FaultWorld, title: str) -> None:
        self.world, self.title = world, title
        self.base = {
            (kind, where): self._count(kind, where)
            for kind in (CRITICAL, RESOLVED)
            for where in ("tg", "slack")
        }

    def _count(self, kind: str, where: str) -> int:
        if where == "tg":
            return self.world.tg_count(kind, self.title)
        return len(self.world.slack_alerts(kind, self.title))

    def new(self, kind: str, where: str) -> int:
        return self._count(kind, where) - self.base[(kind, where)]

    async def wait(self, kind: str, where: str) -> None:
        await until(
            lambda: self.new(kind, where) >= 1,
            f"{where} alert {kind}{self.title}",
            output=self.world.proc.output,
        )

    async def both(self, kind: str) -> None:
        await self.wait(kind, "tg")
        await self.wait(kind, "slack")

    def once(self) -> None:
        for key in self.base:
            assert self.new(*key) == 1, (self.title, key, self.new(*key))


async def during(world: FaultWorld, component: str, title: str, why: str) -> dict[str, str]:
    """The operator's view while ``component`` is down: the alert in both chats, /health
    on both surfaces naming it critical, the status page saying why."""
    page = await world.page_until(component, critical=True)
    assert why in page["summary"], page
    health = await world.tg_health()
    assert f"🔴 {title}" in health, health
    slack_health = await world.slack_health()
    assert f"🔴 {title}" in slack_health or f":red_circle: {title}" in slack_health, slack_health
    return {
        "tg_during": f"alert “🔴 Critical: {title}”; /health shows 🔴 {title}",
        "slack_during": f"alert “Critical: {title}” in the alert channel; /piyasa health shows "
        f"🔴 {title}",
        "page_during": f"`{component}` critical: “{why}”",
    }


async def after(world: FaultWorld, component: str, title: str, alerts: Alerts) -> dict[str, str]:
    """After recovery: not critical anywhere, one "resolved" notice in each chat, and no
    alert posted twice."""
    await world.page_until(component, critical=False)
    await alerts.both(RESOLVED)
    health = await world.tg_health()
    assert f"🔴 {title}" not in health, health
    assert f"🔴 {title}" not in await world.slack_health()
    alerts.once()
    return {
        "tg_after": f"“✅ Resolved: {title} is healthy again”; /health: {title} not 🔴",
        "slack_after": f"“Resolved: {title}” in the alert channel; /piyasa health: {title} not 🔴",
        "page_after": f"`{component}` not critical",
    }


async def simple_row(
    world: FaultWorld,
    fault: str,
    component: str,
    title: str,
    why: str,
    down,
    up,  # type: ignore[no-untyped-def]
) -> dict[str, str]:
    """A dependency Piyasa keeps answering without: down, look everywhere, up, look again."""
    alerts = Alerts(world, title)
    await down()
    cells = await during(world, component, title, why)
    await alerts.both(CRITICAL)
    mark = await world.say("/whoami")
    await world.answer(mark, WHOAMI)  # answered during the fault, not only after it
    await up()
    cells.update(await after(world, component, title, alerts))
    return {"fault": fault, **cells, "kept": await kept(world, mark)}


async def slack_429_row(world: FaultWorld) -> dict[str, str]:
    """Slack answers chat.postMessage with 429s while an alert is due (Redis stopped):
    more 429s in a row than the client's own retries, so the alert outbox retries too."""
    storm = 5
    world.slack.rate_limit_storm["chat.postMessage"] = [storm, 1]
    alerts = Alerts(world, "Redis")
    world.redis.kill()
    await alerts.both(CRITICAL)
    limited = [t for t in world.slack.timeline if t[0] == "chat.postMessage" and t[2] == 429]
    assert len(limited) >= storm, limited
    slack = await world.component("slack")
    assert slack["state"] != "critical", slack
    mark = await world.say("/whoami")
    await world.answer(mark, WHOAMI)
    world.redis.start()
    await after(world, "redis", "Redis", alerts)
    return {
        "fault": f"Slack 429 ({storm}× on chat.postMessage, Retry-After 1 s) while a Redis "
        "alert is due",
        "tg_during": "alert “🔴 Critical: Redis” at once",
        "tg_after": "“✅ Resolved: Redis is healthy again”",
        "slack_during": f"the alert lands once, after the {storm} 429s (client retries, then "
        "the alert outbox)",
        "slack_after": "“Resolved: Redis” once",
        "page_during": "`slack` not critical (a rate limit is no outage); `redis` critical",
        "page_after": "`redis` not critical",
        "kept": await kept(world, mark),
    }


async def revoked_row(world: FaultWorld) -> dict[str, str]:
    """BotFather /revoke while running: Telegram cannot show anything, Slack can."""
    alerts = Alerts(world, "Telegram")
    account = world.sb.world.tokens[ADMIN_BOT_TOKEN]
    world.sb.revoke_token(ADMIN_BOT_TOKEN)
    page = await world.page_until("telegram", critical=True)
    assert "admin bot: token refused (401" in page["summary"], page
    await alerts.wait(CRITICAL, "slack")
    slack_health = await world.slack_health()
    assert "🔴 Telegram" in slack_health or ":red_circle: Telegram" in slack_health, slack_health
    mark = await world.say("/whoami")  # kept by Telegram until the bot can fetch it
    assert alerts.new(CRITICAL, "tg") == 0
    # The token works again for the same account, whose pending updates Telegram kept (a
    # new token from BotFather would need PIYASA_ADMIN_BOT_TOKEN and a restart).
    world.sb.world.tokens[ADMIN_BOT_TOKEN] = account
    await alerts.wait(CRITICAL, "tg")  # delivered late, not lost
    cells = await after(world, "telegram", "Telegram", alerts)
    return {
        "fault": "admin bot token revoked (401) while running",
        "tg_during": "nothing can be shown (every call 401); messages wait at Telegram",
        "tg_after": "the held “🔴 Critical: Telegram” alert, then “✅ Resolved: Telegram is "
        "healthy again”",
        "slack_during": "alert “Critical: Telegram” in the alert channel; /piyasa health shows "
        "🔴 Telegram",
        "slack_after": cells["slack_after"],
        "page_during": f"`telegram` critical: “{page['summary']}”",
        "page_after": cells["page_after"],
        "kept": await kept(world, mark),
    }


async def test_faults_while_running(
    tmp_path: Path, own_postgres: OwnPostgres, own_redis: OwnRedis
) -> None:
    rows = []
    async with fault_world(tmp_path, own_postgres, own_redis) as world:
        for name in ("database", "redis", "telegram", "slack", "llm"):
            await world.page_until(name, critical=False)

        async def redis_up() -> None:
            world.redis.start()

        async def redis_down() -> None:
            world.redis.kill()

        async def pg_down() -> None:
            world.pg.kill()

        async def pg_up() -> None:
            world.pg.start()

        async def llm_up() -> None:
            await world.llm.start("127.0.0.1", world.llm_port)

        rows.append(await simple_row(
            world, "Redis down", "redis", "Redis", "unreachable", redis_down, redis_up
        ))  # fmt: skip
        rows.append(await simple_row(
            world, "PostgreSQL down", "database", "Database", "unreachable", pg_down, pg_up
        ))  # fmt: skip
        rows.append(await simple_row(
            world, "LLM endpoint dead", "llm", "LLM provider", "failing", world.llm.stop, llm_up
        ))  # fmt: skip
        rows.append(await slack_429_row(world))
        rows.append(await revoked_row(world))
    check_doc(rows)


async def test_bot_api_unreachable_at_start(
    tmp_path: Path, own_postgres: OwnPostgres, own_redis: OwnRedis
) -> None:
    async with fault_world(tmp_path, own_postgres, own_redis, telegram_up=False) as world:
        alerts = Alerts(world, "Telegram")
        page = await world.page_until("telegram", critical=True)
        code, ready = await readyz(world)
        reason = next(f["reason"] for f in ready["failed"] if f["name"] == "telegram")
        assert code == 503 and reason.startswith(READYZ), ready
        assert "admin bot: cannot reach the Bot API" in page["summary"], page
        await alerts.wait(CRITICAL, "slack")
        slack_health = await world.slack_health()
        assert "Telegram" in slack_health, slack_health
        mark = await world.say("/whoami")  # Telegram keeps it until the bot polls
        port = int(world.telegram_url.rsplit(":", 1)[1])
        await world.sb.start("127.0.0.1", port)
        await alerts.wait(CRITICAL, "tg")
        cells = await after(world, "telegram", "Telegram", alerts)
        code, _ = await readyz(world)
        assert code == 200
        assert "🟢 Slack — " in await world.tg_health()  # named like the other components
        row = {
            "fault": "Bot API unreachable at start",
            "tg_during": "nothing can be shown; messages wait at Telegram",
            "tg_after": "the held “🔴 Critical: Telegram” alert, then “✅ Resolved: Telegram "
            "is healthy again”",
            "slack_during": "alert “Critical: Telegram” in the alert channel; /piyasa health "
            "answers",
            "slack_after": cells["slack_after"],
            "page_during": f"`telegram` critical: “{page['summary']}”; /readyz 503: “{READYZ}…”",
            "page_after": cells["page_after"] + "; /readyz 200",
            "kept": await kept(world, mark),
        }
    check_doc([row])
