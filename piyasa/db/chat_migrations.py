"""Telegram chat ids that moved: a basic group upgraded to a supergroup.

One row per old chat id (``chat_migrations``), written by whoever learns of the move first
(a ``migrate_to_chat_id``/``migrate_from_chat_id`` service message, or a 400 whose
``parameters.migrate_to_chat_id`` names the new id: Bot API, ResponseParameters). Writing
the same move twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.db.base import utcnow
from piyasa.db.models import ChatMigration

MAX_HOPS = 8  # a chat migrates once; a longer chain would be a loop in bad data


async def record(session: AsyncSession, old: int, new: int, source: str) -> bool:
    """Add the move ``old`` -> ``new`` (inside the caller's transaction); True when it is
    new. ``source`` is "admin" or "fleet" (who learned it)."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(ChatMigration)
        .values(old_chat_id=old, new_chat_id=new, source=source[:32], migrated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["old_chat_id"])
        .returning(ChatMigration.old_chat_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def load(session: AsyncSession) -> dict[int, int]:
    """Every recorded move, old id -> new id."""
    rows = (
        await session.execute(select(ChatMigration.old_chat_id, ChatMigration.new_chat_id))
    ).all()
    return {int(old): int(new) for old, new in rows}


def resolve(chat_ids: Iterable[int], moves: Mapping[int, int]) -> tuple[int, ...]:
    """``chat_ids`` with each moved id replaced by where it went (following chains),
    without duplicates, in order."""
    out: list[int] = []
    for chat_id in chat_ids:
        current = int(chat_id)
        for _ in range(MAX_HOPS):
            if current not in moves:
                break
            current = moves[current]
        if current not in out:
            out.append(current)
    return tuple(out)
