"""What a starting fleet remembers from the database: who spoke last in each chat, how
much each bot said in the last hour, what is still undelivered, and recent history."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.base import utcnow
from piyasa.db.models import Message
from piyasa.db.runtime_models import OutboxItem
from piyasa.runtime.planner import Planner
from piyasa.runtime.roster import Roster


def speaker(roster: Roster, kind: str, bot_id: int | None, human: str | None) -> str:
    """How a message's author appears in a prompt's history."""
    if kind == "human":
        return human or "user"
    bot = roster.bots.get(bot_id or -1)
    return f"{bot.name} (bot)" if bot else "bot"


async def seed_planner(
    sessions: async_sessionmaker[AsyncSession],
    roster: Roster,
    planner: Planner,
    history: dict[int, deque[tuple[str, str]]],
    hist_n: int,
) -> None:
    """Last speakers, hourly counts, pending per chat (into ``planner``) and the last
    ``hist_n`` messages of each chat (into ``history``), from the DB."""
    since = utcnow() - timedelta(hours=1)
    async with sessions() as session:
        hourly = (
            await session.execute(
                select(Message.bot_id, func.count())
                .where(
                    Message.author_kind == "bot",
                    Message.created_at >= since,
                    Message.status != "failed",
                )
                .group_by(Message.bot_id)
            )
        ).all()
        per_chat = (
            await session.execute(
                select(Message.chat_id, func.count())
                .where(
                    Message.author_kind == "bot",
                    Message.created_at >= since,
                    Message.status != "failed",
                )
                .group_by(Message.chat_id)
            )
        ).all()
        pending = (
            await session.execute(
                select(OutboxItem.chat_id, func.count())
                .where(OutboxItem.state.in_(("queued", "claimed", "sending")))
                .group_by(OutboxItem.chat_id)
            )
        ).all()
        for chat_id in roster.chats:
            rows = (
                await session.execute(
                    select(Message.author_kind, Message.bot_id, Message.human_name, Message.text)
                    .where(Message.chat_id == chat_id, Message.status != "failed")
                    .order_by(Message.id.desc())
                    .limit(hist_n)
                )
            ).all()
            dq = history.setdefault(chat_id, deque(maxlen=hist_n))
            for kind, bot_id, human, text in reversed(rows):
                dq.append((speaker(roster, kind, bot_id, human), text))
            if rows:
                kind, bot_id, _h, _t = rows[0]
                if kind == "human":
                    planner.note_human(chat_id)
                elif bot_id is not None:
                    planner.note_bot(chat_id, bot_id)
    for bot_id, n in hourly:
        if bot_id is not None:
            planner.note_hourly(bot_id, int(n))
    for chat_id, n in per_chat:
        planner.note_chat_hourly(chat_id, int(n))
    for chat_id, n in pending:
        planner.seed_pending(chat_id, int(n))
