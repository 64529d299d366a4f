"""The digest: a daily or weekly summary per user, at their chosen time in their timezone.

Three parts, each testable alone:

- **When** — :func:`parse_plan` checks a user's choice (cadence, ``HH:MM``, weekday,
  IANA timezone) into a :class:`DigestPlan`; :func:`trigger` is its APScheduler
  ``CronTrigger`` in the user's timezone (so 09:00 stays 09:00 across daylight-saving
  changes), :func:`next_run` the next time it fires after a given instant, and
  :func:`schedule` puts it on a running scheduler as job ``digest:<user_id>``.
- **What** — :func:`build_digest` turns :class:`NotificationSummary` rows (a small input
  type, so this module needs none of the notification tables; the core queries them) into a
  :class:`Digest`: counts by severity, the open incidents, the top sources.
- **How it reads** — :func:`render_digest` makes the :class:`OutgoingMessage` in the
  reader's language: words from the chat catalogues (``notify.digest.*`` in
  ``chatops/locales/<lang>/notify_digest.json``, through the ``t`` the caller passes, so
  the core imports no chat code), numbers, dates and durations by Babel (CLDR).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_decimal

from piyasa.admin.notify.channels.base import SEVERITIES, OutgoingMessage

CADENCES = ("daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's names, 0 = Monday
OPEN_LISTED = 10  # open incidents shown by name; the rest are counted
TOP_SOURCES = 5
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

ERRORS: dict[str, str] = {  # English text of ``notify.digest.error.<key>``
    "cadence": "the digest is daily or weekly (got {value!r})",
    "time": "the digest time is HH:MM, 24-hour (got {value!r})",
    "weekday": "the digest weekday is one of mon, tue, wed, thu, fri, sat, sun (got {value!r})",
    "timezone": "unknown timezone {value!r}: use an IANA name such as Europe/Istanbul or UTC",
}

Translate = Callable[..., str]  # chatops.i18n.t: (lang, key, /, **params) -> text


class DigestPlanError(ValueError):
    """A digest choice that does not parse; ``key`` / ``params`` translate it through
    ``notify.digest.error.<key>``."""

    def __init__(self, key: str, value: str) -> None:
        super().__init__(ERRORS[key].format(value=value))
        self.key = key
        self.params = {"value": value}

    @property
    def catalog_key(self) -> str:
        return f"notify.digest.error.{self.key}"


@dataclass(frozen=True)
class DigestPlan:
    """One user's digest: ``cadence`` daily/weekly at ``at`` (local wall time) on
    ``weekday`` (0 = Monday, weekly only) in ``timezone`` (IANA), in ``lang``."""

    user_id: int
    cadence: str
    at: time
    weekday: int
    timezone: str
    lang: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def period(self) -> timedelta:
        """How far back a digest looks: a day or a week."""
        return timedelta(days=7 if self.cadence == "weekly" else 1)


@dataclass(frozen=True)
class NotificationSummary:
    """What the digest needs of one notification (an incident, deduplicated by
    fingerprint). Times are timezone-aware; ``title`` is already in the reader's language;
    ``count`` is how many events it gathered."""

    fingerprint: str
    title: str
    severity: str
    source: str
    state: str  # "open" | "acknowledged" | "resolved" | "silenced"
    first_seen: datetime
    last_seen: datetime
    count: int = 1


@dataclass(frozen=True)
class Digest:
    """The figures of one digest over [start, end)."""

    start: datetime
    end: datetime
    by_severity: dict[str, int]  # notifications seen in the period, per severity
    events: int  # events those notifications gathered
    open: list[NotificationSummary]  # worst first, at most OPEN_LISTED
    open_total: int
    top_sources: list[tuple[str, int]]  # (source, notifications), most first

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


def parse_plan(
    user_id: int,
    cadence: str,
    at: str,
    timezone: str,
    weekday: str = "mon",
    lang: str = "en",
) -> DigestPlan:
    """A :class:`DigestPlan` from what the user typed; raises :class:`DigestPlanError`
    (a ValueError, translatable) for a cadence, ``HH:MM`` time, weekday or timezone that
    does not parse."""
    cadence = cadence.strip().lower()
    if cadence not in CADENCES:
        raise DigestPlanError("cadence", cadence)
    match = _HHMM.match(at.strip())
    if not match:
        raise DigestPlanError("time", at)
    day = weekday.strip().lower()[:3]
    if day not in WEEKDAYS:
        raise DigestPlanError("weekday", weekday)
    try:
        ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise DigestPlanError("timezone", timezone) from None
    return DigestPlan(
        user_id=user_id,
        cadence=cadence,
        at=time(int(match[1]), int(match[2])),
        weekday=WEEKDAYS.index(day),
        timezone=timezone.strip(),
        lang=lang,
    )


def trigger(plan: DigestPlan) -> Any:
    """The plan as an APScheduler 3 ``CronTrigger`` in the user's timezone."""
    from apscheduler.triggers.cron import CronTrigger

    day = WEEKDAYS[plan.weekday] if plan.cadence == "weekly" else "*"
    return CronTrigger(
        day_of_week=day, hour=plan.at.hour, minute=plan.at.minute, timezone=plan.zone
    )


def next_run(plan: DigestPlan, now: datetime) -> datetime:
    """When the plan fires next, strictly after ``now`` (aware), in the user's timezone."""
    return trigger(plan).get_next_fire_time(None, now + timedelta(microseconds=1))


def schedule(
    scheduler: Any,
    plan: DigestPlan,
    send: Callable[[DigestPlan, datetime], Awaitable[None]],
    prefix: str = "digest",
) -> Any:
    """Adds (or replaces) job ``<prefix>:<user_id>`` on an APScheduler 3 scheduler (the
    ``AsyncIOScheduler`` of ``piyasa up``): at each fire, ``await send(plan, now)``. A
    digest missed by less than an hour (a restart) still goes out, once (coalesced)."""
    return scheduler.add_job(
        _fire,
        trigger(plan),
        args=(send, plan),
        id=f"{prefix}:{plan.user_id}",
        name=f"{prefix} for user {plan.user_id}",
        replace_existing=True,
        misfire_grace_time=3600,
        coalesce=True,
    )


async def _fire(send: Callable[[DigestPlan, datetime], Awaitable[None]], plan: DigestPlan) -> None:
    await send(plan, datetime.now(UTC))


def unschedule(scheduler: Any, user_id: int, prefix: str = "digest") -> None:
    """Removes the user's job ``<prefix>:<user_id>``, if there is one."""
    if scheduler.get_job(f"{prefix}:{user_id}") is not None:
        scheduler.remove_job(f"{prefix}:{user_id}")


def build_digest(
    summaries: Iterable[NotificationSummary], start: datetime, end: datetime
) -> Digest:
    """The figures over [start, end): notifications last seen in it, by severity and by
    source, and every incident still open (whenever it began), worst and newest first."""
    by_severity = dict.fromkeys(SEVERITIES, 0)
    sources: Counter[str] = Counter()
    events = 0
    still_open = []
    for item in summaries:
        if item.state == "open":
            still_open.append(item)
        if start <= item.last_seen < end:
            by_severity[item.severity] = by_severity.get(item.severity, 0) + 1
            sources[item.source] += 1
            events += item.count
    still_open.sort(key=lambda s: (_SEVERITY_RANK.get(s.severity, 9), -s.last_seen.timestamp()))
    return Digest(
        start=start,
        end=end,
        by_severity=by_severity,
        events=events,
        open=still_open[:OPEN_LISTED],
        open_total=len(still_open),
        top_sources=sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOURCES],
    )


def render_digest(
    digest: Digest, plan: DigestPlan, t: Translate, link: str | None = None
) -> OutgoingMessage:
    """The digest as a message in ``plan.lang`` and ``plan.timezone``: title with the
    period, counts by severity, open incidents with how long they have been open, top
    sources. ``t`` is ``chatops.i18n.t``."""
    lang = plan.lang

    def n(value: int) -> str:
        return format_decimal(value, locale=lang)

    def when(moment: datetime) -> str:
        local = moment.astimezone(plan.zone)
        return f"{format_date(local, 'medium', locale=lang)} {format_time(local, 'short', locale=lang)}"

    title = t(lang, f"notify.digest.title.{plan.cadence}", end=when(digest.end))
    period = t(lang, "notify.digest.period", start=when(digest.start), end=when(digest.end))
    lines = [period, ""]
    if not digest.total and not digest.open_total:
        lines.append(t(lang, "notify.digest.quiet"))
    else:
        counts = [
            t(lang, f"notify.digest.severity.{s}", n=n(c)) for s, c in digest.by_severity.items()
        ]
        lines.append(
            t(lang, "notify.digest.counts", n=n(digest.total), events=n(digest.events))
            + " — "
            + ", ".join(counts)
        )
        lines += ["", t(lang, "notify.digest.open", n=n(digest.open_total))]
        for item in digest.open:
            since = format_timedelta(
                digest.end - item.first_seen, locale=lang, format="short", threshold=1.1
            )
            severity = t(lang, f"notify.digest.severity_name.{item.severity}")
            lines.append(
                t(
                    lang,
                    "notify.digest.open_item",
                    severity=severity,
                    title=item.title,
                    source=item.source,
                    since=since,
                    n=n(item.count),
                )
            )
        if digest.open_total > len(digest.open):
            lines.append(
                t(lang, "notify.digest.open_more", n=n(digest.open_total - len(digest.open)))
            )
        if digest.top_sources:
            top = ", ".join(f"{source} ({n(count)})" for source, count in digest.top_sources)
            lines += ["", t(lang, "notify.digest.sources", sources=top)]
    text = "\n".join(lines)
    body_html = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    return OutgoingMessage(
        title=title,
        body_text=text,
        body_html=body_html,
        severity="info",
        fingerprint=f"digest:{plan.user_id}:{digest.end.astimezone(UTC):%Y%m%dT%H%M}",
        source="digest",
        link=link,
    )
