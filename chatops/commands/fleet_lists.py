"""What /bots and /chats lists share: the list state a button carries (search, status
filter, page), the status filter's cycle, a grid of card buttons, and the list state a card
keeps to go back to. Not a command module: it registers nothing."""

from __future__ import annotations

from typing import Any

from chatops.context import Context
from chatops.views import Button


def as_int(value: Any) -> int | None:
    """``value`` as an int (button params and typed refs), None when it is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def list_state(ctx: Context, statuses: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """``{"q": search (≤ 64 chars), "s": a status of ``statuses`` or None, "p": page ≥ 1}``
    from the pressed button's params, or the typed search; ``extra`` adds more keys."""
    p = ctx.params
    return {
        "q": str(p.get("q") or ctx.args.get("search", "") or "")[:64],
        "s": p.get("s") if p.get("s") in statuses else None,
        **extra,
        "p": as_int(p.get("page", p.get("p"))) or 1,
    }


def next_status(statuses: tuple[str, ...], current: str | None) -> str | None:
    """The status filter after ``current`` in the cycle all → each status → all."""
    cycle = (None, *statuses)
    return cycle[(cycle.index(current) + 1) % len(cycle)]


def card_rows(
    rows: list[Any], icon: str, action: str, state: dict[str, Any], per_row: int = 2
) -> list[list[Button]]:
    """One ``{icon} {name}`` button a row of ``rows`` (each with ``id`` and ``name``),
    opening its card (``action``) with the list ``state`` to come back to."""
    cards = [Button(f"{icon} {r.name}", action, {"id": r.id, "back": state}) for r in rows]
    return [cards[i : i + per_row] for i in range(0, len(cards), per_row)]


def back_state(ctx: Context) -> dict[str, Any]:
    """The list state a card's button carried (``back``), {} when none."""
    back = ctx.params.get("back")
    return back if isinstance(back, dict) else {}
