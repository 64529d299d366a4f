"""Text typed in a chat, checked at the edge before any handler or database sees it.

The pipeline runs :func:`check` on the parsed arguments of every command, button and
dialog answer (a dialog answer is the ``text`` argument of ``<command>.input``), so no
handler has to remember to. What it refuses:

* control characters: C0 (except tab, line feed, carriage return), DEL and C1. PostgreSQL
  cannot store a NUL byte in text or JSONB at all ("invalid byte sequence for encoding
  UTF8: 0x00", "unsupported Unicode escape sequence"), so one NUL used to break a query
  *and* the audit row about it; the others have no business in a name or a search either;
* lone UTF-16 surrogates (U+D800-U+DFFF), which JSON can carry but UTF-8 cannot encode;
* text longer than the argument's cap: ``Arg.max_len`` characters, else :data:`ARG_MAX`
  for a single word and :data:`REST_MAX` (Telegram's 4096-character message limit) for
  the rest of a line or a dialog answer.

The refusal is audited like any other: :func:`piyasa.admin.audit.record` stores a NUL
as a visible escape and cuts long values, so the row is written on every database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatops.commands.registry import Arg

ARG_MAX = 256
REST_MAX = 4096
UNSAFE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Problem:
    """Why an argument was refused: ``code`` is ``control`` or ``too_long``."""

    arg: str
    code: str
    limit: int = 0


def limit_of(arg: Arg) -> int:
    """The most characters ``arg`` accepts."""
    return arg.max_len or (REST_MAX if arg.rest else ARG_MAX)


def problem(value: str, limit: int) -> str | None:
    """``"control"``, ``"too_long"`` or None for one value."""
    if UNSAFE_RE.search(value):
        return "control"
    if len(value) > limit:
        return "too_long"
    return None


def check(args: Iterable[Arg], parsed: Mapping[str, str]) -> Problem | None:
    """The first refused argument of ``parsed`` (as declared by ``args``), or None."""
    for arg in args:
        value = parsed.get(arg.name)
        if value is None:
            continue
        code = problem(value, limit_of(arg))
        if code is not None:
            return Problem(arg.name, code, limit_of(arg))
    return None
