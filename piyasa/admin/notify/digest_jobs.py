"""The digest, wired: each user's choice from `/notify digest` becomes an APScheduler job in
`piyasa up`, which queries the notification tables, renders the digest in the user's
language and timezone (:mod:`.digest`) and posts it to the user's own chats.

- :func:`summaries` — the notifications a digest over ``[start, end)`` needs: those last
  seen in it, and every incident still open (whenever it began);
- :func:`plan_of` — a stored preference (``"daily 09:00"``, ``"weekly mon 09:00"``) as a
  :class:`~.digest.DigestPlan`;
- :class:`DigestJobs` — schedules every user's digest on a running scheduler, re-schedules
  one when the user changes it, and sends one (:meth:`DigestJobs.send`) through the
  notification service's text senders (``telegram``/``slack``: the user's DMs).

Time comes from the notification service's clock, so a test fires a job at a chosen
instant without waiting for it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin.notify import analytics_digest as ad
from piyasa.admin.notify import digest as dg
from piyasa.admin.notify.routing import Prefs, _prefs, chat_of
from piyasa.db.models import User
from piyasa.db.notify_models import Notification, NotifyPreference

log = logging.getLogger(__name__)
EXTRAS_KEY = "notify.digests"


async def summaries(
    session: AsyncSession, start: datetime, lang: str, translate: Any
) -> list[dg.NotificationSummary]:
    """Every notification last seen at or after ``start``, and every open one; titles in
    ``lang`` through ``translate`` (``chatops.i18n.t``)."""
    rows = await session.scalars(
        select(Notification).where(
            or_(Notification.last_seen >= start, Notification.state == "open")
        )
    )
    return [
        dg.NotificationSummary(
            fingerprint=r.fingerprint,
            title=translate(lang, r.title_key, **(r.params or {})),
            severity=r.severity,
            source=r.source,
            state=r.state,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            count=r.count,
        )
        for r in rows
    ]


def plan_of(prefs: Prefs, lang: str) -> dg.DigestPlan | None:
    """The user's digest plan, or None when they chose none (or it no longer parses)."""
    words = (prefs.digest or "").split()
    try:
        if len(words) == 2:
            return dg.parse_plan(prefs.user_id, words[0], words[1], prefs.timezone, lang=lang)
        if len(words) == 3:
            return dg.parse_plan(
                prefs.user_id, words[0], words[2], prefs.timezone, weekday=words[1], lang=lang
            )
    except dg.DigestPlanError as exc:
        log.warning("digest of user %d not scheduled: %s", prefs.user_id, exc)
    return None


class DigestJobs:
    """Every user's digest on ``scheduler`` (an APScheduler 3 ``AsyncIOScheduler``),
    sent through ``notify`` (a :class:`~piyasa.admin.notify.service.NotifyService`)."""

    def __init__(self, notify: Any, scheduler: Any) -> None:
        self.notify = notify
        self.scheduler = scheduler

    @property
    def services(self) -> Any:
        return self.notify.services

    async def _plan(
        self, session: AsyncSession, user_id: int, analytics: bool = False
    ) -> dg.DigestPlan | None:
        """The user's incident digest plan (or, with ``analytics``, their analytics one)."""
        row = await session.get(NotifyPreference, user_id)
        user = await session.get(User, user_id)
        choice = None if row is None else row.analytics_digest if analytics else row.digest
        if row is None or user is None or user.locked or not choice:
            return None
        prefs = _prefs(row)
        prefs.digest = choice
        return plan_of(prefs, prefs.language or user.language or self.services.settings.lang)

    async def sync(self) -> int:
        """Schedule every user's digest (replacing older jobs); how many are scheduled."""
        async with self.services.sessions() as session:
            ids = list(
                await session.scalars(
                    select(NotifyPreference.user_id).where(
                        or_(
                            NotifyPreference.digest.is_not(None),
                            NotifyPreference.analytics_digest.is_not(None),
                        )
                    )
                )
            )
        n = 0
        for uid in ids:
            n += await self.reschedule(uid)
        return n

    async def reschedule(self, user_id: int) -> bool:
        """(Re)schedule ``user_id``'s digests (incident and analytics) after a change;
        False when they have neither."""
        async with self.services.sessions() as session:
            plan = await self._plan(session, user_id)
            analytics = await self._plan(session, user_id, analytics=True)
        if plan is None:
            dg.unschedule(self.scheduler, user_id)
        else:
            dg.schedule(self.scheduler, plan, self._fire)
        if analytics is None:
            dg.unschedule(self.scheduler, user_id, ad.JOB_PREFIX)
        else:
            dg.schedule(self.scheduler, analytics, self._fire_analytics, ad.JOB_PREFIX)
        return plan is not None or analytics is not None

    async def _fire(self, plan: dg.DigestPlan, _wall: datetime) -> None:
        try:
            await self.send(plan, self.notify.now())
        except Exception as exc:  # a job that raises is only logged by APScheduler
            log.warning("digest of user %d not sent: %s", plan.user_id, type(exc).__name__)

    async def send(self, plan: dg.DigestPlan, now: datetime) -> int:
        """Compute the digest ending at ``now`` and post it to each of the user's chat
        surfaces (their DMs); how many posts went. A surface that is not running or a
        user not linked there is skipped."""
        translate = self.notify.translate
        async with self.services.sessions() as session:
            rows = await summaries(session, now - plan.period, plan.lang, translate)
            prefs = await session.get(NotifyPreference, plan.user_id)
            surfaces = list(_prefs(prefs).channels) if prefs is not None else []
            chats = {s: await chat_of(session, plan.user_id, s) for s in surfaces}
        digest = dg.build_digest(rows, now - plan.period, now)
        message = dg.render_digest(digest, plan, translate)
        sent = 0
        for surface, chat in chats.items():
            sender = self.notify.text_senders.get(surface)
            if chat is None or sender is None:
                continue
            await sender(chat, message, plan.lang)
            sent += 1
        return sent

    async def _fire_analytics(self, plan: dg.DigestPlan, _wall: datetime) -> None:
        try:
            await self.send_analytics(plan, self.notify.now())
        except Exception as exc:  # the database is away: this slot is lost, logged
            log.warning("analytics digest of user %d not queued: %s", plan.user_id, exc)

    async def send_analytics(self, plan: dg.DigestPlan, now: datetime) -> int:
        """Queue the analytics digest for the period ending at ``now`` (its minute) to each
        of the user's chat surfaces they are linked on, in the outbox (sent, and retried,
        by the notification service); how many rows were added (0: that minute was queued
        already — another instance, a restart)."""
        async with self.services.sessions() as session:
            prefs = await session.get(NotifyPreference, plan.user_id)
            surfaces = list(_prefs(prefs).channels) if prefs is not None else []
            chats = {s: await chat_of(session, plan.user_id, s) for s in surfaces}
        added = await ad.enqueue(self.services, plan, now, chats, now)
        if added:
            self.notify.wake()
        return added
