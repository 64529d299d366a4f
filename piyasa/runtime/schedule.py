"""A fleet bot's schedule: ``active_hours`` in its own ``timezone``; one validator for both.

``validate_schedule`` is the single check every write path goes through (the ``Bot`` model
runs it whenever either attribute is set, so the CLI, the setup wizard and chat commands
cannot store a value the planner would choke on). A bad value that reached the database
anyway (written by hand, or by an older version) is caught when the roster is loaded: only
that bot is disabled, with the reason, and the rest of the fleet keeps chatting.

Formats: ``active_hours`` is one or more ``HH:MM-HH:MM`` ranges, comma separated, local
to the bot; an end before the start wraps midnight (``22:00-02:00``), ``24:00`` means the
end of the day, ``""`` means all day. ``timezone`` is an IANA name (``Europe/Istanbul``,
``UTC``), looked up in the system's tz database; there is no silent fallback to UTC.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALL_DAY = "00:00-24:00"
MAX_ACTIVE_HOURS_LEN = 32  # bots.active_hours is VARCHAR(32)
MAX_TIMEZONE_LEN = 64  # bots.timezone is VARCHAR(64)
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_EXAMPLE = "write HH:MM-HH:MM ranges separated by commas, e.g. 09:00-18:00 or 22:00-02:00"


class ScheduleError(ValueError):
    """A bad ``active_hours`` or ``timezone``; the message says what to write instead."""


def parse_active_hours(spec: str) -> list[tuple[time, time | None]]:
    """``"09:00-18:00,20:00-22:00"`` -> [(start, end)]; end None = until midnight (24:00).

    Raises ScheduleError naming the bad part and showing the expected format.
    """
    return list(_ranges(spec or ""))


@functools.lru_cache(maxsize=4096)
def _ranges(spec: str) -> tuple[tuple[time, time | None], ...]:
    out: list[tuple[time, time | None]] = []
    text = (spec or "").strip() or ALL_DAY
    for raw in text.split(","):
        part = raw.strip().replace(" ", "")
        m = _RANGE.match(part)
        if not m:
            raise ScheduleError(
                f"active_hours {spec!r}: {raw.strip()!r} is not a range; {_EXAMPLE}"
            )
        sh, sm, eh, em = (int(g) for g in m.groups())
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em):
            raise ScheduleError(
                f"active_hours {spec!r}: {part!r} is not a time of day (00:00 to 24:00); {_EXAMPLE}"
            )
        if (sh, sm) == (eh, em):
            raise ScheduleError(f"active_hours {spec!r}: {part!r} is an empty range; {_EXAMPLE}")
        out.append((time(sh, sm), None if eh == 24 else time(eh, em)))
    return tuple(out)


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ScheduleError when the tz database does not know it."""
    key = (name or "").strip()
    try:
        if not key or len(key) > MAX_TIMEZONE_LEN:
            raise ZoneInfoNotFoundError(key)
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"timezone {name!r} is not a known IANA time zone name; "
            "write e.g. Europe/Istanbul, Europe/London or UTC"
        ) from None


def validate_active_hours(spec: str | None) -> str:
    """The normalized spec (``"9:00 - 18:00"`` -> ``"09:00-18:00"``), or ScheduleError."""
    ranges = parse_active_hours(spec or "")
    text = ",".join(f"{s:%H:%M}-{'24:00' if e is None else format(e, '%H:%M')}" for s, e in ranges)
    if len(text) > MAX_ACTIVE_HOURS_LEN:
        raise ScheduleError(
            f"active_hours {spec!r} is longer than {MAX_ACTIVE_HOURS_LEN} characters; "
            "use fewer ranges"
        )
    return text


def validate_timezone(name: str | None) -> str:
    """The zone name as stored (stripped), or ScheduleError."""
    return str(zone_of(name or "").key)


def validate_schedule(active_hours: str | None, timezone: str | None) -> tuple[str, str]:
    """Both fields at once: ``(active_hours, timezone)`` normalized, or ScheduleError."""
    return validate_active_hours(active_hours), validate_timezone(timezone)


def is_active(spec: str, tz: str, now_utc: datetime) -> bool:
    """Is ``now_utc`` inside the bot's active hours in its own timezone?

    Raises ScheduleError on a bad spec or zone (the roster disables such a bot first).
    """
    local = now_utc.astimezone(zone_of(tz)).time().replace(tzinfo=None)
    for start, end in _ranges(spec or ""):
        if end is None:
            if local >= start:
                return True
        elif start <= end:
            if start <= local < end:
                return True
        elif local >= start or local < end:  # wraps midnight
            return True
    return False


def active_hours_between(
    spec: str, tz: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)
) -> float:
    """How many hours of ``[start, end)`` (aware datetimes) fall inside the active hours,
    sampled every ``step`` (15 min: ranges are minute-exact, so this is within one step per
    range edge). Raises ScheduleError like ``is_active``."""
    at, count = start, 0
    while at < end:
        count += is_active(spec, tz, at)
        at += step
    return count * step / timedelta(hours=1)
