"""Quick actions against a real fleet on the sandbox Telegram: they do what they say."""

from __future__ import annotations

import logging
from typing import Any

from piyasa.admin import audit
from piyasa.logs import RING, RedactingFilter
from tests.chatops.harness import ADMIN_GROUP, PEOPLE
from tests.health_chat.conftest import State, button, kb
from tests.runtime.helpers import gate_passes, until

OPERATOR = PEOPLE["operator"][0]


def fleet_sends(fw: Any) -> int:
    return len(fw.sb.sent(chat_id=fw.chat))


async def open_actions(fw: Any) -> dict:
    reply = await fw.say("operator", "/health")
    mark = await fw.press("operator", OPERATOR, reply, button(reply, "Quick actions"))
    return await fw.sb.wait_for_message(chat_id=OPERATOR, edits=True, after=mark)


async def press_confirmed(fw: Any, message: dict, label: str) -> dict:
    """Press ``label``, then "Yes" on the confirmation; returns the result message."""
    mark = await fw.press("operator", OPERATOR, message, button(message, label))
    ask = await fw.sb.wait_for_message(chat_id=OPERATOR, edits=True, after=mark)
    assert "Are you sure?" in ask["text"], ask["text"]
    mark = await fw.press("operator", OPERATOR, ask, button(ask, "Yes"))
    return await fw.sb.wait_for_message(chat_id=OPERATOR, edits=True, after=mark)


async def test_pause_stops_every_send_and_resume_restarts_them(fw) -> None:
    await until(lambda: fleet_sends(fw) >= 2, "the fleet chatting")
    panel = await open_actions(fw)
    done = await press_confirmed(fw, panel, "Pause fleet")
    assert "Fleet paused" in done["text"] and "▶️ Resume fleet" in kb(done)

    async def paused_row() -> bool:  # the audit row follows the reply
        rows = await audit.recent(fw.services, 5)
        return ("health.pause", "ok", "user_operator") in [
            (r.action, r.result, r.actor) for r in rows
        ]

    await until(paused_row, "the audit row of the pause")
    assert fw.fleet.gate.paused

    await fw.fleet.gate.quiesce()  # a send already on the wire may still land
    paused_at = fleet_sends(fw)
    # Watch the gate look at its queues a few times (not a stretch of the clock, which a
    # slow machine could fill with nothing): a paused gate sends nothing in any of them.
    await gate_passes(fw.fleet, 5)
    await fw.fleet.gate.quiesce()
    assert fleet_sends(fw) == paused_at

    snap = await fw.health.run_all_now()
    assert snap.get("runtime").state is State.WARNING and "paused" in snap.get("runtime").summary
    mark = await fw.press("operator", OPERATOR, done, button(done, "Resume fleet"))
    resumed = await fw.sb.wait_for_message(chat_id=OPERATOR, edits=True, after=mark)
    assert "Fleet resumed" in resumed["text"]
    await until(lambda: fleet_sends(fw) > paused_at, "sends after resume")


async def test_restart_workers_restarts_them(fw) -> None:
    panel = await open_actions(fw)
    group = [w for w in fw.fleet.supervisor.workers.values() if w.group == "workers"]
    done = await press_confirmed(fw, panel, "Restart workers")
    assert f"{len(group)} workers restarted" in done["text"]
    restarted = [e for e in fw.fleet.recent_errors if e["kind"] == "restarted"]
    assert {e["where"] for e in restarted} == {w.name for w in group}
    await until(
        lambda: fw.fleet.supervisor.active() == fw.fleet.supervisor.total(), "every worker back"
    )


async def test_an_open_breaker_alerts_and_the_reset_button_fixes_it(fw) -> None:
    bot = fw.bots[0]
    mark = fw.sb.mark()
    fw.fleet.bot_breakers.get(bot.id).trip(300, "TelegramServerError: Bad Gateway")
    await fw.health.run_all_now()
    alert = await fw.sb.wait_for_message(
        lambda m: "Critical: Telegram" in m["text"], chat_id=ADMIN_GROUP, after=mark
    )
    assert "🔌 Reset breaker" in kb(alert)
    mark = await fw.press("operator", ADMIN_GROUP, alert, button(alert, "Reset breaker"))
    done = await fw.sb.wait_for_message(chat_id=ADMIN_GROUP, after=mark)
    assert f"Circuit breaker of @{bot.username} reset" in done["text"]
    assert fw.fleet.bot_breakers.get(bot.id).state == "closed"
    resolved = await fw.sb.wait_for_message(
        lambda m: m["text"].startswith("✅ Resolved"), chat_id=ADMIN_GROUP, after=mark
    )
    assert "Telegram is healthy again" in resolved["text"]


async def test_log_download_is_redacted(fw) -> None:
    token = "123456789:AAEhBOweik9ai2o4bMdpQyVz5dXnA9vYFbU"
    admin_token = fw.services.settings.admin_bot_token.reveal()
    logger = logging.getLogger("piyasa.test.logs")
    redact = RedactingFilter()
    RING.addFilter(redact)
    logger.addHandler(RING)
    try:
        logger.warning("calling https://api.telegram.org/bot%s/getMe failed", token)
    finally:
        logger.removeHandler(RING)
        RING.removeFilter(redact)
    RING.lines.append(f"a line that slipped in unredacted: {admin_token} sk-live1234567890abcd")

    panel = await open_actions(fw)
    mark = await fw.press("operator", OPERATOR, panel, button(panel, "log lines"))
    doc = await fw.sb.wait_for_message(lambda m: "document" in m, chat_id=OPERATOR, after=mark)
    assert doc.get("has_protected_content") is True
    data = fw.sb.world.files[doc["document"]["file_id"]].data.decode()
    assert "getMe failed" in data and "slipped in" in data
    for secret in (token, admin_token, "sk-live1234567890abcd", "AAEhBOweik9ai2o4"):
        assert secret not in data
    assert data.count("***") >= 3
    assert len(data.splitlines()) <= 1001


async def test_clear_cache_drops_derived_data_only(fw) -> None:
    cache = fw.services.cache
    await cache.set("cache:analytics:today", {"n": 1})
    keep = await fw.surface.tokens.issue(
        spec_id="health", surface="telegram", user=str(OPERATOR), chat=str(OPERATOR)
    )
    panel = await open_actions(fw)
    done = await press_confirmed(fw, panel, "Clear cache")
    assert "Cache cleared" in done["text"]
    assert await cache.get("cache:analytics:today") is None
    assert await fw.surface.tokens.resolve(
        keep, surface="telegram", user=str(OPERATOR), chat=str(OPERATOR)
    )  # buttons (state, not cache) survive
