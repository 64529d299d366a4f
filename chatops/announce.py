"""Tell the admins something they must know, in the admin chats of every running surface.

A command calls :func:`to_admins` with a builder ``(lang, surface) -> View``; each running
surface registers how it posts (Telegram: every ``PIYASA_ADMIN_CHAT_IDS`` chat; Slack: the
``PIYASA_SLACK_ALERT_CHANNEL``), the way :mod:`chatops.menus` is wired, so a command never
imports a surface. Announcements are text only (no buttons: anyone reads them) and in the
installation's language. A chat that cannot be reached is logged and skipped: the change
being announced has happened already and stays.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chatops.views import Button, View
from piyasa.services import Services

log = logging.getLogger(__name__)
Build = Callable[[str, str], View]  # (language, surface) -> what to post
Poster = Callable[[Build], Awaitable[int]]  # posts; returns how many chats got it
_KEY = "chatops.announcers"


def register(services: Services, surface: str, poster: Poster) -> None:
    services.extras.setdefault(_KEY, {})[surface] = poster


def unregister(services: Services, surface: str) -> None:
    services.extras.get(_KEY, {}).pop(surface, None)


async def to_admins(services: Services, build: Build) -> int:
    """Post ``build`` in every admin chat of every running surface; returns the number of
    chats that got it (0 when none is configured or reachable)."""
    sent = 0
    for surface, poster in list(services.extras.get(_KEY, {}).items()):
        try:
            sent += await poster(build)
        except Exception as exc:
            log.warning("announcing on %s failed: %s", surface, type(exc).__name__)
    return sent


async def _no_buttons(_button: Button) -> str:
    raise AssertionError("announcements carry no buttons")


def telegram_poster(surface: Any) -> Poster:
    """Posts through a running ``TelegramSurface`` to each admin chat."""

    async def post(build: Build) -> int:
        from aiogram.exceptions import TelegramAPIError

        from chatops.telegram import render

        lang = surface.services.settings.lang
        rendered = await render.render(build(lang, "telegram"), lang, _no_buttons)
        sent = 0
        for chat_id in surface.services.settings.admin_chat_ids:
            try:
                for text in rendered.texts:
                    await surface.bot.send_message(chat_id, text)
                sent += 1
            except TelegramAPIError as exc:
                log.warning("announcement to an admin chat failed: %s", type(exc).__name__)
        return sent

    return post


def slack_poster(surface: Any) -> Poster:
    """Posts through a running ``SlackSurface`` to the alert channel, when one is set."""

    async def post(build: Build) -> int:
        from slack_sdk.errors import SlackApiError

        from chatops.slack import render

        settings = surface.services.settings
        if not settings.slack_alert_channel:
            return 0
        messages = await render.render(build(settings.lang, "slack"), settings.lang, _no_buttons)
        try:
            for message in messages:
                await surface.client.chat_postMessage(
                    channel=settings.slack_alert_channel, **message
                )
        except SlackApiError as exc:
            log.warning(
                "announcement to the Slack alert channel failed: %s", exc.response.get("error")
            )
            return 0
        return 1

    return post
