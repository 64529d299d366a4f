"""Analytics tables as CSV: the one definition the chat ``[CSV]`` button, ``piyasa analytics
export`` and ``GET /api/analytics?format=csv`` all write.

Cells carry machine numbers (``1247``, ``0.973``, ``2.47``: a spreadsheet reads them in any
locale), UTC ISO times, and text cells neutralised against formula injection as ``/audit``
does (a leading ``= + - @`` becomes text). Output is UTF-8 bytes with a header row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from piyasa.admin.audit_search import _cell as formula_safe
from piyasa.analytics.types import BotDetail, BotRow, Figures, Period, Share

FIGURE_COLUMNS = (
    "messages",
    "sent",
    "failed",
    "success_rate",
    "cost_usd",
    "tokens_in",
    "tokens_cached",
    "tokens_out",
    "avg_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "min_ms",
    "rate_limited",
)


def _value(v: Any) -> Any:
    """A machine-readable cell: "" for None, Decimal as its exact text, floats rounded."""
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return formula_safe(v)


def figure_cells(f: Figures) -> list[Any]:
    return [_value(getattr(f, c)) for c in FIGURE_COLUMNS]


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(header)
    for row in rows:
        out.writerow([_value(c) for c in row])
    return buf.getvalue().encode("utf-8")


def overview_csv(p: Period, figures: Figures, previous: Figures) -> bytes:
    prev = p.previous()
    return to_csv(
        ("period", "start_utc", "end_utc", *FIGURE_COLUMNS),
        [
            (p.label, p.start, p.end, *figure_cells(figures)),
            ("previous", prev.start, prev.end, *figure_cells(previous)),
        ],
    )


def bots_csv(rows: Iterable[BotRow]) -> bytes:
    return to_csv(
        ("bot_id", "bot", "enabled", *FIGURE_COLUMNS),
        [(r.bot_id, r.name, r.enabled, *figure_cells(r.figures)) for r in rows],
    )


def details_csv(details: Iterable[BotDetail]) -> bytes:
    return to_csv(
        ("bot_id", "bot", "enabled", *FIGURE_COLUMNS, "per_hour", "cost_per_message_usd"),
        [
            (
                d.row.bot_id,
                d.row.name,
                d.row.enabled,
                *figure_cells(d.row.figures),
                d.per_hour,
                d.cost_per_message,
            )
            for d in details
        ],
    )


def bot_csv(d: BotDetail) -> bytes:
    """One bot in long form: its figures, then topics, chats, models and error classes."""
    rows: list[Sequence[Any]] = [
        ("figure", c, getattr(d.row.figures, c), "", "", "") for c in FIGURE_COLUMNS
    ]
    rows.append(("figure", "per_hour", d.per_hour, "", "", ""))
    rows.append(("figure", "cost_per_message_usd", d.cost_per_message, "", "", ""))
    for section, shares in (("topic", d.topics), ("chat", d.chats), ("model", d.models)):
        rows += [(section, s.name, s.messages, s.share, s.cost_usd, "") for s in shares]
    rows += [("error", e.error_class, e.count, "", "", e.last_seen) for e in d.errors]
    return to_csv(("section", "name", "value", "share", "cost_usd", "last_seen_utc"), rows)


def shares_csv(what: str, shares: Iterable[Share]) -> bytes:
    return to_csv(
        (what, "messages", "share", "cost_usd"),
        [(s.name, s.messages, s.share, s.cost_usd) for s in shares],
    )
