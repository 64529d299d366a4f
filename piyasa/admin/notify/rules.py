"""The small languages of notifications: matchers, durations, quiet hours, timers and
inhibition rules. Each parser raises :class:`NotifyError` with a code the surfaces turn
into a message in the reader's language (``alerts.error.<code>`` in the catalogues).

Matchers follow Alertmanager: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex`` (a regex matches the whole value), separated by commas or spaces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MATCHER = re.compile(r"^([a-z_][a-z0-9_]*)(=~|!~|!=|=)(.+)$")
DURATION = re.compile(r"^(\d{1,4})([mhdw])$")
UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SILENCE_S = 90 * 86400
QUIET = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)\s*-\s*([01]?\d|2[0-4])[:.]([0-5]\d)$")

Matcher = tuple[str, str, str]  # (label, op, value)


class NotifyError(ValueError):
    """Bad input: ``code`` names the catalogue entry ``alerts.error.<code>``, ``params``
    fill it; the English text is the exception message (CLI, logs)."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def parse_matchers(text: str) -> list[Matcher]:
    """``"source=health, severity=~warning|critical"`` -> matchers; NotifyError
    ``empty_matcher`` for nothing, ``bad_matcher`` for a part that is not one."""
    parts = [p for p in re.split(r"[,\s]+", (text or "").strip()) if p]
    if not parts:
        raise NotifyError("empty_matcher", "a silence needs at least one matcher (name=value)")
    out: list[Matcher] = []
    for part in parts:
        m = MATCHER.match(part)
        if m is None:
            raise NotifyError(
                "bad_matcher", f"{part!r} is not a matcher; write name=value", part=part
            )
        name, op, value = m.groups()
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error:
                raise NotifyError(
                    "bad_matcher", f"{part!r}: the regex does not compile", part=part
                ) from None
        out.append((name, op, value))
    return out


def matches(matchers: list[Matcher] | list[list[str]], labels: dict[str, str]) -> bool:
    """All matchers hold for ``labels`` (a missing label reads as "")."""
    for name, op, value in matchers:
        got = labels.get(name, "")
        if op == "=" and got != value:
            return False
        if op == "!=" and got == value:
            return False
        if op == "=~" and not re.fullmatch(value, got):
            return False
        if op == "!~" and re.fullmatch(value, got):
            return False
    return True


def format_matchers(matchers: list[Matcher] | list[list[str]]) -> str:
    return ", ".join(f"{n}{op}{v}" for n, op, v in matchers) or "*"


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"4h"``, ``"1d"``, ``"2w"`` -> timedelta; NotifyError ``no_expiry``
    when missing, ``bad_duration`` otherwise (at most 90 days)."""
    text = (text or "").strip().lower()
    if not text:
        raise NotifyError("no_expiry", "a silence needs an expiry, e.g. 4h or 1d")
    m = DURATION.match(text)
    seconds = int(m.group(1)) * UNIT_S[m.group(2)] if m else 0
    if not m or seconds <= 0 or seconds > MAX_SILENCE_S:
        raise NotifyError(
            "bad_duration", f"{text!r} is not a duration like 30m, 4h, 1d (at most 90d)", value=text
        )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class QuietHours:
    """A daily span in a timezone; it may cross midnight ("22:00-07:00")."""

    start: time
    end: time
    tz: str = "UTC"

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def holds(self, now: datetime) -> datetime | None:
        """When quiet hours end, if ``now`` (aware) is inside them; else None."""
        local = now.astimezone(ZoneInfo(self.tz))
        t = local.time().replace(tzinfo=None)
        inside = (
            self.start <= t < self.end
            if self.start < self.end
            else (t >= self.start or t < self.end)
        )
        if not inside:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(now.tzinfo)


def parse_quiet_hours(text: str | None, tz: str = "UTC") -> QuietHours | None:
    """``"22:00-07:00"`` -> QuietHours; ``"off"``/empty -> None; NotifyError
    ``bad_quiet_hours`` / ``bad_timezone`` otherwise."""
    text = (text or "").strip().lower()
    if text in ("", "off", "none"):
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise NotifyError("bad_timezone", f"{tz!r} is not a timezone", value=tz) from None
    m = QUIET.match(text)
    if m is None:
        raise NotifyError(
            "bad_quiet_hours",
            f"{text!r} is not a time span like 22:00-07:00",
            value=text,
        )
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end:
        raise NotifyError("bad_quiet_hours", "quiet hours must not start when they end", value=text)
    return QuietHours(start, end, tz)


@dataclass(frozen=True)
class Timers:
    """Alertmanager's timers (REFERENCE.md: group_wait 30 s, group_interval 5 min,
    repeat_interval 4 h) and Gatus-style thresholds: ``failure_threshold`` firing events
    in a row confirm an incident, ``success_threshold`` resolved events in a row end it.
    ``resolve_wait_s``: a recovery is told only once it held this long, so a check that
    flaps inside it is one incident and no message."""

    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    resolve_wait_s: float = 30.0
    failure_threshold: int = 1
    success_threshold: int = 1
    group_by: tuple[str, ...] = ("source",)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Timers:
        """Read ``PIYASA_NOTIFY_<FIELD>`` overrides of the numeric timers, e.g.
        ``PIYASA_NOTIFY_GROUP_INTERVAL_S=60`` (seconds; thresholds are counts).

        Raises :class:`piyasa.errors.ConfigError` naming the variable for a value that is
        not a number or is negative."""
        from dataclasses import fields

        from piyasa.config import ConfigError

        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "PIYASA_NOTIFY_" + f.name.upper()
            raw = str(env.get(name) or "").strip()
            if not raw or f.name == "group_by":
                continue
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if value < 0:
                raise ConfigError(f"{name}={raw!r} must be a number >= 0; e.g. {name}={f.default}")
            values[f.name] = int(value) if f.name.endswith("threshold") else value
        return cls(**values)


@dataclass(frozen=True)
class InhibitRule:
    """While an active incident matches ``source``, events matching ``target`` are muted
    (Alertmanager inhibition: the cause is already alerting)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]


DEFAULT_INHIBITIONS = (
    # the database down mutes what it causes (events labelled depends=database)
    InhibitRule(
        source=(("source", "=", "health"), ("key", "=", "database"), ("severity", "=", "critical")),
        target=(("depends", "=", "database"),),
    ),
)
