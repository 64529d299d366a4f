"""Analytics figures as plain data, for the shell (``piyasa analytics … --json``) and the web
API (``GET /api/analytics``): one shape for both, read from the rollups only.

Shapes (``view``):

- ``overview``: ``{"period": PERIOD, "figures": FIGURES, "previous": FIGURES,
  "top": [BOT_ROW…], "issues": [{"kind", "bot_id", "value", "threshold"}…]}``
- ``bots``: ``{"period": PERIOD, "sort": str, "total": int, "bots": [BOT_ROW…]}``
- ``bot``: ``{"period": PERIOD, "bot": {"row": BOT_ROW, "per_hour": float,
  "cost_per_message": USD | null, "topics"|"chats"|"models": [{"name", "messages",
  "share" (0..1), "cost_usd"}…], "errors": [{"error_class", "count", "last_seen"}…]}}``

``PERIOD`` is ``{"start", "end", "label"}`` (UTC ISO 8601, ``[start, end)``); ``BOT_ROW`` is
``{"bot_id", "name", "enabled", "figures"}``; ``FIGURES`` holds counts (ints),
``success_rate`` (0..1 or null), ``cost_usd`` (USD as an exact decimal string, e.g.
``"2.470000"``), tokens (ints) and latencies ``avg_ms``/``p50_ms``/``p95_ms``/``p99_ms``/
``min_ms``/``max_ms`` (milliseconds, floats or null). Issue values: rates 0..1, ms, or a
cost ratio (see ``piyasa.analytics.queries``).

Errors are the query API's :class:`~piyasa.analytics.types.AnalyticsError` (bad period,
unknown bot), plus ``ValueError`` for an unknown view, table or sort.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from piyasa.analytics import csvout
from piyasa.analytics.queries import SORTS, Analytics, BotRow, Period, UnknownBot
from piyasa.analytics.types import EXPORT_TABLES
from piyasa.db.models import Bot

VIEWS = ("overview", "bots", "bot")
TABLES = EXPORT_TABLES
PAGE = 100  # bots read per query when a whole table is wanted


def plain(value: Any) -> Any:
    """Dataclasses, lists, Decimals (exact strings) and datetimes (ISO) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def all_bots(q: Analytics, p: Period, sort: str = "messages") -> list[BotRow]:
    """Every row of the bots table for ``p`` sorted by ``sort``, read a page at a time."""
    rows: list[BotRow] = []
    page = 0
    while True:
        chunk, total = await q.bots(p, sort=sort, page=page, page_size=PAGE)
        rows.extend(chunk)
        page += 1
        if not chunk or len(rows) >= total:
            return rows


async def resolve_bot(sessions: Any, ref: str) -> int:
    """A bot's id from its id, Telegram id, @username or display name (case-insensitive).

    An id with no bot row is returned as is (a deleted bot may still have rollups; the
    query API then says whether it is known). Raises ``UnknownBot`` otherwise."""
    text = ref.strip().lstrip("@")
    if not text:
        raise UnknownBot("analytics.err.unknown_bot", f"no bot {ref!r}", bot=ref)
    async with sessions() as session:
        if text.lstrip("-").isdigit():
            n = int(text)
            if 0 < n < 2**31:
                return n
            found = await session.scalar(select(Bot.id).where(Bot.telegram_id == n))
        else:
            low = text.lower()
            found = await session.scalar(
                select(Bot.id).where(
                    (func.lower(Bot.username) == low) | (func.lower(Bot.display_name) == low)
                )
            )
    if found is None:
        raise UnknownBot("analytics.err.unknown_bot", f"no bot {ref!r}", bot=ref)
    return int(found)


def _sort(sort: str | None) -> str:
    sort = sort or "messages"
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    return sort


async def figures(
    sessions: Any,
    view: str,
    p: Period,
    *,
    bot: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The JSON-ready figures of ``view`` (see the module docstring) for period ``p``.

    ``bot`` (id or name) is required for ``view="bot"``; ``sort``/``limit`` apply to
    ``bots`` (``limit`` None: every bot); ``sessions`` is the app's async session factory.
    Raises ``AnalyticsError`` or ``ValueError``."""
    q = Analytics(sessions)
    if view == "overview":
        return plain(await q.overview(p))
    if view == "bots":
        order = _sort(sort)
        if limit is not None and limit < 1:
            raise ValueError("limit takes a number of bots, at least 1")
        if limit is None:
            rows = await all_bots(q, p, order)
            total = len(rows)
        else:
            rows, total = await q.bots(p, sort=order, page=0, page_size=limit)
        return {"period": plain(p), "sort": order, "total": total, "bots": plain(rows)}
    if view == "bot":
        if not bot:
            raise ValueError("the bot view needs a bot (id or name)")
        detail = await q.bot_detail(await resolve_bot(sessions, bot), p)
        return {"period": plain(p), "bot": plain(detail)}
    raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")


async def table_csv(
    sessions: Any, table: str, p: Period, *, bot: str | None = None, sort: str | None = None
) -> bytes:
    """The CSV of ``table`` (one of TABLES) exactly as the chat ``[CSV]`` button writes it."""
    q = Analytics(sessions)
    if table == "overview":
        ov = await q.overview(p)
        return csvout.overview_csv(p, ov.figures, ov.previous)
    if table == "bots":
        return csvout.bots_csv(await all_bots(q, p, _sort(sort)))
    if table == "bot":
        if not bot:
            raise ValueError("the bot table needs a bot (id or name)")
        return csvout.bot_csv(await q.bot_detail(await resolve_bot(sessions, bot), p))
    if table == "chats":
        return csvout.shares_csv("chat", await q.chats(p))
    if table == "models":
        return csvout.shares_csv("model", await q.models(p))
    raise ValueError(f"table must be one of {', '.join(TABLES)}, not {table!r}")
