"""Who hears of an incident: routes (matchers on source/severity/bot/... -> destinations),
the default destinations (the admin chats, the Slack alert channel, enabled channels), and
each subscribed user's preferences (severities, chat surfaces, quiet hours, language).

Destinations are strings: ``telegram:<chat id>``, ``slack:<channel>``,
``channel:<name>`` (a configured email/webhook/Apprise channel) and
``user:<user id>:<telegram|slack>`` (that user's DM). Quiet hours hold what is not
critical until they end; critical always passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin.notify.rules import NotifyError, matches, parse_matchers, parse_quiet_hours
from piyasa.admin.setup.checks import alert_destinations
from piyasa.config import Settings
from piyasa.db.models import Identity, User
from piyasa.db.notify_models import NotifyChannel, NotifyPreference, NotifyRoute
from piyasa.services import Services

SURFACES = ("telegram", "slack")
DEFAULT_SEVERITIES = ("critical",)
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
DESTINATION = re.compile(r"^(telegram:-?\d+|slack:[A-Za-z0-9_#.-]+|channel:[a-z0-9][a-z0-9_.-]*)$")


@dataclass(frozen=True)
class Target:
    """One destination of one notice, in the reader's language, held until ``hold_until``."""

    destination: str
    lang: str
    hold_until: datetime | None = None


@dataclass
class Prefs:
    """A user's notification preferences (defaults when never set: not subscribed)."""

    user_id: int
    subscribed: bool = False
    severities: list[str] = field(default_factory=lambda: list(DEFAULT_SEVERITIES))
    channels: list[str] = field(default_factory=lambda: list(SURFACES))
    quiet_hours: str | None = None
    timezone: str = "UTC"
    language: str | None = None
    digest: str | None = None  # "daily 09:00" / "weekly mon 09:00" in ``timezone``
    analytics_digest: str | None = None  # the analytics digest, same form


@dataclass
class RoutingTable:
    """Everything routing reads, loaded once per flush."""

    settings: Settings
    routes: list[NotifyRoute]
    channels: list[str]
    prefs: list[tuple[Prefs, str | None, set[str]]]  # (prefs, user language, surfaces)

    def targets(self, labels: dict[str, str], severity: str, now: datetime) -> list[Target]:
        """Every destination of an incident with ``labels`` and ``severity`` at ``now``."""
        lang = self.settings.lang
        out: dict[str, Target] = {}
        routed = [r for r in self.routes if matches(r.matchers, labels)]
        wanted = (
            [d for r in routed for d in r.destinations]
            if routed
            else [*alert_destinations(self.settings), *(f"channel:{c}" for c in self.channels)]
        )
        for dest in wanted:
            out.setdefault(dest, Target(dest, lang))
        for prefs, user_lang, surfaces in self.prefs:
            if not prefs.subscribed or severity not in prefs.severities:
                continue
            hold = None
            quiet = parse_quiet_hours(prefs.quiet_hours, prefs.timezone)
            if quiet is not None and severity != "critical":
                hold = quiet.holds(now)
            who = prefs.language or user_lang or lang
            for surface in prefs.channels:
                if surface in surfaces:
                    dest = f"user:{prefs.user_id}:{surface}"
                    out[dest] = Target(dest, who, hold)
        failing = labels.get("destination")
        return [t for t in out.values() if t.destination != failing]


def _prefs(row: NotifyPreference) -> Prefs:
    return Prefs(
        row.user_id,
        row.subscribed,
        list(row.severities or DEFAULT_SEVERITIES),
        list(row.channels or SURFACES),
        row.quiet_hours,
        row.timezone or "UTC",
        row.language,
        row.digest,
        row.analytics_digest,
    )


async def load_table(session: AsyncSession, settings: Settings) -> RoutingTable:
    routes = list(await session.scalars(select(NotifyRoute).order_by(NotifyRoute.id)))
    channels = list(
        await session.scalars(select(NotifyChannel.name).where(NotifyChannel.enabled.is_(True)))
    )
    prefs = []
    rows = await session.execute(
        select(NotifyPreference, User.language, User.locked)
        .join(User, User.id == NotifyPreference.user_id)
        .where(NotifyPreference.subscribed.is_(True))
    )
    for row, language, locked in rows:
        if locked:
            continue
        surfaces = set(
            await session.scalars(select(Identity.provider).where(Identity.user_id == row.user_id))
        )
        prefs.append((_prefs(row), language, surfaces))
    return RoutingTable(settings, routes, channels, prefs)


async def chat_of(session: AsyncSession, user_id: int, surface: str) -> str | None:
    """The user's chat id on ``surface`` (their DM: Telegram's private chat id is the
    user id; Slack's ``chat.postMessage`` to a user id opens the app's DM)."""
    return await session.scalar(
        select(Identity.external_id).where(
            Identity.user_id == user_id, Identity.provider == surface
        )
    )


# -- preferences ------------------------------------------------------------------------------

SETTINGS = ("on", "off", "severities", "channels", "quiet", "tz", "lang", "digest", "analytics")
DEFAULT_AT, DEFAULT_DAY = "09:00", "mon"  # what `/notify analytics daily|weekly` leaves out


def parse_digest(value: str, timezone: str = "UTC") -> str | None:
    """``daily 09:00`` / ``weekly mon 09:00`` / ``off`` -> the stored form (None for off);
    NotifyError ``bad_digest`` for anything else (a cadence, time or weekday that does
    not parse)."""
    from piyasa.admin.notify.digest import WEEKDAYS, DigestPlanError, parse_plan

    words = value.strip().lower().split()
    if words in (["off"], ["none"]):
        return None
    try:
        if len(words) == 2 and words[0] == "daily":
            plan = parse_plan(0, "daily", words[1], timezone)
            return f"daily {plan.at:%H:%M}"
        if len(words) == 3 and words[0] == "weekly":
            plan = parse_plan(0, "weekly", words[2], timezone, weekday=words[1])
            return f"weekly {WEEKDAYS[plan.weekday]} {plan.at:%H:%M}"
    except DigestPlanError as exc:
        raise NotifyError("bad_digest", str(exc), value=value) from None
    raise NotifyError(
        "bad_digest", f"{value!r}: use daily HH:MM, weekly DAY HH:MM or off", value=value
    )


def parse_analytics_digest(value: str, timezone: str = "UTC") -> str | None:
    """Like :func:`parse_digest`, with the time (09:00) and weekday (mon) optional:
    ``daily``, ``daily 18:30``, ``weekly``, ``weekly 08:00``, ``weekly fri 08:00``, ``off``."""
    words = value.strip().lower().split()
    if words[:1] == ["daily"] and len(words) == 1:
        words.append(DEFAULT_AT)
    elif words[:1] == ["weekly"] and len(words) <= 2:
        words[1:] = [DEFAULT_DAY, *(words[1:] or [DEFAULT_AT])]
    return parse_digest(" ".join(words) if words else value, timezone)


async def get_prefs(services: Services, user_id: int) -> Prefs:
    """``user_id``'s preferences; the defaults (deployment timezone) when never set."""
    async with services.sessions() as session:
        row = await session.get(NotifyPreference, user_id)
    return _prefs(row) if row is not None else Prefs(user_id, timezone=services.settings.timezone)


def _list(value: str, allowed: tuple[str, ...], code: str) -> list[str]:
    items = [v for v in re.split(r"[,\s]+", value.strip().lower()) if v]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise NotifyError(
            code,
            f"{value!r}: use one or more of {', '.join(allowed)}",
            value=value,
            allowed=", ".join(allowed),
        )
    return list(dict.fromkeys(items))


async def set_pref(services: Services, user_id: int, setting: str, value: str = "") -> Prefs:
    """Change one preference of ``user_id``; NotifyError (nothing changed) on bad input.

    ``on``/``off`` subscribe; ``severities critical,warning``; ``channels telegram,slack``;
    ``quiet 22:00-07:00`` or ``quiet off``; ``tz Europe/Istanbul``; ``lang tr|en``;
    ``digest daily 09:00`` / ``digest weekly mon 09:00`` / ``digest off``;
    ``analytics daily [HH:MM]`` / ``analytics weekly [DAY] [HH:MM]`` / ``analytics off``."""
    from piyasa.admin.notify.events import SEVERITIES

    async with services.sessions() as session, session.begin():
        row = await session.get(NotifyPreference, user_id)
        if row is None:
            p = Prefs(user_id, timezone=services.settings.timezone)
            row = NotifyPreference(
                user_id=user_id,
                subscribed=p.subscribed,
                severities=p.severities,
                channels=p.channels,
                timezone=p.timezone,
            )
            session.add(row)
        if setting in ("on", "off"):
            row.subscribed = setting == "on"
        elif setting == "severities":
            row.severities = _list(value, SEVERITIES, "bad_severity")
        elif setting == "channels":
            row.channels = _list(value, SURFACES, "bad_surface")
        elif setting == "quiet":
            quiet = parse_quiet_hours(value, row.timezone or "UTC")
            row.quiet_hours = str(quiet) if quiet else None
        elif setting == "tz":
            parse_quiet_hours("00:00-01:00", value.strip())  # validates the zone
            row.timezone = value.strip()
        elif setting == "lang":
            if value.strip().lower() not in ("tr", "en"):
                raise NotifyError("bad_lang", f"{value!r}: use tr or en", value=value)
            row.language = value.strip().lower()
        elif setting == "digest":
            row.digest = parse_digest(value, row.timezone or "UTC")
        elif setting == "analytics":
            row.analytics_digest = parse_analytics_digest(value, row.timezone or "UTC")
        else:
            raise NotifyError("bad_setting", f"unknown setting {setting!r}", value=setting)
        from piyasa.db.base import utcnow

        row.updated_at = utcnow()
        return _prefs(row)


# -- routes -----------------------------------------------------------------------------------


async def add_route(
    services: Services, name: str, matchers: str, destinations: str, actor: str
) -> NotifyRoute:
    """A route ``name``: events matching ``matchers`` go to ``destinations`` (comma
    separated); NotifyError for a bad name, matcher or destination, or an unknown channel."""
    name = name.strip().lower()
    if not NAME.match(name):
        raise NotifyError("bad_name", f"{name!r} is not a name (a-z, 0-9, _ . -)", value=name)
    parsed = parse_matchers(matchers)
    dests = [d for d in re.split(r"[,\s]+", destinations.strip()) if d]
    if not dests:
        raise NotifyError("bad_destination", "name at least one destination", value="")
    async with services.sessions() as session, session.begin():
        known = set(await session.scalars(select(NotifyChannel.name)))
        for dest in dests:
            if not DESTINATION.match(dest):
                raise NotifyError(
                    "bad_destination",
                    f"{dest!r}: use telegram:<chat id>, slack:<channel> or channel:<name>",
                    value=dest,
                )
            if dest.startswith("channel:") and dest.split(":", 1)[1] not in known:
                raise NotifyError(
                    "unknown_channel",
                    f"no channel named {dest.split(':', 1)[1]!r}; see `piyasa alerts channels`",
                    value=dest.split(":", 1)[1],
                )
        if await session.scalar(select(NotifyRoute.id).where(NotifyRoute.name == name)):
            raise NotifyError("route_exists", f"a route named {name!r} exists", value=name)
        route = NotifyRoute(
            name=name, matchers=[list(m) for m in parsed], destinations=dests, created_by=actor
        )
        session.add(route)
    return route


async def delete_route(services: Services, name: str) -> bool:
    async with services.sessions() as session, session.begin():
        route = await session.scalar(select(NotifyRoute).where(NotifyRoute.name == name))
        if route is None:
            return False
        await session.delete(route)
    return True


async def list_routes(services: Services) -> list[NotifyRoute]:
    async with services.sessions() as session:
        return list(await session.scalars(select(NotifyRoute).order_by(NotifyRoute.name)))
