"""Notifications in chat: the Telegram and Slack senders of the notification service
(``piyasa.admin.notify``), and its start for ``piyasa up``.

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
from piyasa.admin.notify.service import NotifyService
from piyasa.admin.notify.store import Item
from piyasa.services import Services

log = logging.getLogger(__name__)
Sender = Callable[[str, list[Item], str, str], Awaitable[None]]


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
        svc = NotifyService(services, translate=i18n.t)
    svc.add_sender("telegram", telegram_sender(services, surfaces))
    svc.add_sender("slack", slack_sender(services, surfaces))
    await svc.start()
    return svc
