"""Notifications in chat: the Telegram and Slack senders of the notification service
(``piyasa.admin.notify``), and its start for ``piyasa up`` (with the digest scheduler).

A sender renders a flush (``chatops.alert_views.notice_view``) in the recipient's
language and posts it with buttons anyone in that chat may press (each press is
authorized by role). A surface that is not running (yet) raises, and the outbox retries.
Slack DMs go to the conversation ``conversations.open`` gives for the user, so the
buttons are bound to the channel the presses will come from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chatops import i18n
from chatops.alert_views import notice_view
from chatops.alerts import post_slack, post_telegram
from chatops.analytics_digest import analytics_sender
from chatops.views import Text, View
from piyasa.admin.notify.analytics_digest import KIND
from piyasa.admin.notify.channels.base import OutgoingMessage
from piyasa.admin.notify.digest_jobs import EXTRAS_KEY as DIGESTS
from piyasa.admin.notify.digest_jobs import DigestJobs
from piyasa.admin.notify.service import NotifyService
from piyasa.admin.notify.store import Item
from piyasa.services import Services

log = logging.getLogger(__name__)
Sender = Callable[[str, list[Item], str, str], Awaitable[None]]
TextSender = Callable[[str, OutgoingMessage, str], Awaitable[None]]


def _readings(services: Services) -> dict[str, Any]:
    health = services.extras.get("health")
    return dict(health.snapshot().components) if health is not None else {}


def telegram_sender(services: Services, surfaces: Any) -> Sender:
    async def send(chat: str, items: list[Item], lang: str, kind: str) -> None:
        surface = surfaces.telegram
        if surface is None:
            raise ConnectionError("the Telegram admin bot is not running")
        view = notice_view(lang, items, kind, _readings(services))
        await post_telegram(surface, int(chat), view, lang)

    return send


def _text_view(message: OutgoingMessage) -> View:
    return View(title=message.title, blocks=[Text(message.body_text)])


def telegram_text_sender(surfaces: Any) -> TextSender:
    """Posts a plain message (the digest) to a Telegram chat (a user's DM)."""

    async def send(chat: str, message: OutgoingMessage, lang: str) -> None:
        if surfaces.telegram is None:
            raise ConnectionError("the Telegram admin bot is not running")
        await post_telegram(surfaces.telegram, int(chat), _text_view(message), lang)

    return send


def slack_text_sender(surfaces: Any) -> TextSender:
    """Posts a plain message (the digest) to a Slack user's DM with the app."""

    async def send(chat: str, message: OutgoingMessage, lang: str) -> None:
        surface = surfaces.slack
        if surface is None:
            raise ConnectionError("the Slack app is not running")
        if chat.startswith(("U", "W")):
            chat = (await surface.client.conversations_open(users=chat))["channel"]["id"]
        await post_slack(surface, chat, _text_view(message), lang)

    return send


def slack_sender(services: Services, surfaces: Any) -> Sender:
    async def send(chat: str, items: list[Item], lang: str, kind: str) -> None:
        surface = surfaces.slack
        if surface is None:
            raise ConnectionError("the Slack app is not running")
        if chat.startswith(("U", "W")):  # a user: their DM with the app
            resp = await surface.client.conversations_open(users=chat)
            chat = resp["channel"]["id"]
        view = notice_view(lang, items, kind, _readings(services))
        await post_slack(surface, chat, view, lang)

    return send


async def start_notifications(services: Services, surfaces: Any) -> NotifyService:
    """The notification service with both chat senders, translating through the
    catalogues for configured channels; running in the background."""
    svc = services.extras.get("notify")
    if not isinstance(svc, NotifyService):
        svc = NotifyService(services, translate=i18n.t, has_key=i18n.has)
    svc.add_sender("telegram", telegram_sender(services, surfaces), telegram_text_sender(surfaces))
    svc.add_sender("slack", slack_sender(services, surfaces), slack_text_sender(surfaces))
    svc.rich_senders[KIND] = analytics_sender(services, surfaces)
    await svc.start()
    return svc


async def start_digests(svc: NotifyService) -> Callable[[], Awaitable[None]]:
    """Every user's digest on an APScheduler ``AsyncIOScheduler`` in this loop
    (``services.extras["notify.digests"]``, re-scheduled by `/notify digest`); returns
    the stopper."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    jobs = DigestJobs(svc, scheduler)
    svc.services.extras[DIGESTS] = jobs
    try:
        n = await jobs.sync()
    except Exception as exc:  # the database is away: /notify digest schedules it later
        log.warning("digests not scheduled at start: %s", type(exc).__name__)
        n = 0
    log.info("notify: %d digest(s) scheduled", n)

    async def stop() -> None:
        svc.services.extras.pop(DIGESTS, None)
        scheduler.shutdown(wait=False)

    return stop
