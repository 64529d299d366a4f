"""Entry point `piyasa up` uses to run the chat surfaces.

    surfaces = Surfaces(services, web_app)   # before web_app starts: mounts routes
    await surfaces.start()                   # admin bot polling (or webhook), Slack
    await surfaces.stop()

Telegram runs when an admin bot token is configured; Slack when both its bot token and
signing secret are. Routes are mounted in the constructor because aiohttp freezes its
router once the app starts; they answer 503 until the surface is up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from chatops.web.paths import SLACK_EVENTS_PATH as EVENTS_PATH
from chatops.web.paths import TELEGRAM_WEBHOOK_PATH as WEBHOOK_PATH

if TYPE_CHECKING:  # the surfaces import aiogram / slack_bolt: only when configured
    from chatops.commands.registry import Registry
    from chatops.slack.surface import SlackSurface
    from chatops.telegram.surface import TelegramSurface
    from piyasa.services import Services

log = logging.getLogger(__name__)


class Surfaces:
    def __init__(
        self,
        services: Services,
        web_app: web.Application | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.services = services
        self._registry = registry
        self.telegram: TelegramSurface | None = None
        self.slack: SlackSurface | None = None
        self._telegram_ready = False
        if web_app is not None:
            web_app.router.add_post(EVENTS_PATH, self._slack_events)
            web_app.router.add_post(WEBHOOK_PATH, self._telegram_webhook)

    async def _slack_events(self, request: web.Request) -> web.StreamResponse:
        if self.slack is None:
            return web.json_response({"error": "slack is not configured"}, status=503)
        return await self.slack.handle(request)

    async def _telegram_webhook(self, request: web.Request) -> web.StreamResponse:
        if self.telegram is None or not self._telegram_ready or not self.telegram.webhook_url:
            return web.json_response({"error": "telegram webhook is not enabled"}, status=503)
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler

        handler = SimpleRequestHandler(
            dispatcher=self.telegram.dp,
            bot=self.telegram.bot,
            secret_token=self.telegram.webhook_secret,
        )
        return await handler.handle(request)

    @property
    def registry(self) -> Registry:
        """The command registry, loaded on first use (every command module)."""
        if self._registry is None:
            from chatops.commands import load_all

            self._registry = load_all()
        return self._registry

    async def start(self) -> list[str]:
        """Start what is configured; returns one line per surface for the banner."""
        settings = self.services.settings
        lines = []
        if settings.admin_bot_token:
            from chatops.telegram.surface import TelegramSurface

            self.telegram = TelegramSurface(self.services, self.registry)
            await self.telegram.start()
            self._telegram_ready = True
            mode = "webhook" if self.telegram.webhook_url else "long polling"
            lines.append(
                f"Telegram admin bot @{self.telegram.username} ({mode}); "
                f"admin chats: {', '.join(map(str, settings.admin_chat_ids)) or 'none'}"
            )
        if settings.slack_bot_token and settings.slack_signing_secret:
            from chatops.slack.surface import SlackSurface

            self.slack = SlackSurface(self.services, self.registry)
            await self.slack.start()
            lines.append(f"Slack app: slash command /piyasa at {EVENTS_PATH}")
        for line in lines:
            log.info("%s", line)
        return lines

    async def stop(self) -> None:
        self._telegram_ready = False
        if self.telegram is not None:
            await self.telegram.stop()
            self.telegram = None
        if self.slack is not None:
            await self.slack.stop()
            self.slack = None
