"""A small known history of bot messages in the last day, folded into rollups by the real
rollup job, for the chat tests of ``/analytics``.

Three bots in one chat: Ayşe (busy, a few Telegram failures), Mehmet (a third of its
messages fail on LLM 429s: an "error rate" issue) and Zeynep (a handful). Timestamps are
relative to the current time, as ``/analytics 24h`` is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from piyasa.analytics.maintenance import Upkeep
from piyasa.db.models import Bot, Chat, Message
from piyasa.runtime.llm import price_of

BOTS = {1: "Ayşe", 2: "Mehmet", 3: "Zeynep"}
# bot -> (sent, failed, error class, base latency ms, model)
PLAN = {
    1: (30, 2, "telegram", 600, "gpt-4o-mini"),
    2: (10, 5, "quota", 1400, "gpt-4.1"),
    3: (4, 0, None, 900, "gpt-4o-mini"),
}
TOPICS = ("bist", "fx", "crypto")


async def seed_history(services: Any) -> None:
    """Bots, a chat and their messages; then the rollup job catches up."""
    now = datetime.now(UTC)
    async with services.sessions() as s, s.begin():
        s.add_all(
            Bot(
                id=i,
                token_encrypted="x",
                token_fingerprint=f"a15-{i}",
                username=f"{name.lower()}_bot",
                display_name=name,
                enabled=True,
            )
            for i, name in BOTS.items()
        )
        s.add(Chat(id=1, telegram_id=-1005150000001, title="Piyasa Sohbet"))
    rows = []
    for bot, (sent, failed, error, latency, model) in PLAN.items():
        for i in range(sent + failed):
            at = now - timedelta(hours=2 + i % 18, minutes=i % 50)
            ok = i < sent
            tin, cached, tout = 1000 + 10 * i, (500 if i % 3 == 0 else 0), 100 + i
            rows.append(
                Message(
                    chat_id=1,
                    bot_id=bot,
                    author_kind="bot",
                    created_at=at,
                    topic=TOPICS[i % len(TOPICS)],
                    model=model,
                    latency_ms=latency + 7 * i if ok or error != "quota" else None,
                    tokens_in=tin if ok else None,
                    tokens_out=tout if ok else None,
                    tokens_cached=cached if ok else None,
                    cost_usd=price_of(model, tin, cached, tout, {}) if ok else None,
                    status="sent" if ok else "failed",
                    error_class=None if ok else error,
                )
            )
    async with services.sessions() as s, s.begin():
        s.add_all(rows)
    job = Upkeep(services.sessions, services.engine.dialect.name)
    await job.catch_up()
