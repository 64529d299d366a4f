"""Relative times ("2 min ago", "2 dk. önce") in the reader's language, by Babel.

Babel carries the CLDR data for every language the bot speaks, so the words, plurals and
the direction ("ago"/"önce") come from CLDR rather than from our catalogues; only the
two words CLDR has no short form for ("just now", "never") are ours.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_timedelta

JUST_NOW_S = 60  # under a minute reads "just now": second-exact figures would be noise


def ago(
    lang: str,
    when: datetime,
    now: datetime | None = None,
    *,
    just_now: str,
) -> str:
    """How long before ``now`` (default: the current UTC time) ``when`` was, in ``lang``
    (a language code Babel knows: "tr", "en"), CLDR's short width: "2 min. ago",
    "3 gün önce". Under a minute, and for a ``when`` in the future (clock skew between
    instances), returns ``just_now``."""
    delta = (now or datetime.now(UTC)) - when
    if delta.total_seconds() < JUST_NOW_S:
        return just_now
    return format_timedelta(-delta, locale=lang, add_direction=True, format="short")
