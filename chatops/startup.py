"""Entry point `piyasa up` uses to run the chat surfaces.

    surfaces = Surfaces(services, web_app)   # before web_app starts: mounts routes
    await surfaces.start()                   # admin bot polling (or webhook), Slack
    await surfaces.stop()

Telegram runs when an admin bot token is configured; Slack when both its bot token and
signing secret are. Routes are mounted in the constructor because aiohttp freezes its
router once the app starts; they answer 503 until the surface is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
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
RETRY_DELAYS_S = (2.0, 5.0, 15.0, 30.0, 60.0)  # between attempts to start a failed surface


def describe_failure(exc: BaseException) -> str:
    """One line an operator can act on, secrets redacted (it is shown on /readyz)."""
    from piyasa.logs import REDACTOR

    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    name = type(exc).__name__
    if name == "TelegramUnauthorizedError" or status == 401:
        return "the admin bot token was refused (401 Unauthorized): revoked or wrong"
    text = (str(exc).splitlines() or [""])[0][:200]
    if name == "TelegramNetworkError":
        text = text.removeprefix("HTTP Client says - ")
        return REDACTOR(f"cannot reach the Telegram Bot API ({text})")
    return REDACTOR(f"{name}: {text}" if text else name)


class Surfaces:
    def __init__(
        self,
        services: Services,
        web_app: web.Application | None = None,
        registry: Registry | None = None,
        on_state: Callable[[str, str | None], None] | None = None,
    ) -> None:
        """``on_state(surface, problem)``: told when a surface starts (problem None) or
        fails to (problem: why, with secrets redacted)."""
        self.services = services
        self._registry = registry
        self._on_state = on_state
        self._retry: asyncio.Task[None] | None = None
        self.problems: dict[str, str | None] = {}
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
        """Start what is configured; returns one line per surface for the banner.

        Never raises for Telegram: an unreachable Bot API or a revoked admin token (401)
        is reported through ``on_state`` and retried in the background with backoff
        (``RETRY_DELAYS_S``), while the status page keeps serving.
        """
        settings = self.services.settings
        lines = []
        if settings.admin_bot_token:
            from chatops.telegram.surface import TelegramSurface

            self.telegram = TelegramSurface(self.services, self.registry)
            try:
                lines.append(await self._start_telegram())
            except Exception as exc:
                reason = describe_failure(exc)
                self._report("telegram", reason)
                lines.append(
                    f"Telegram admin bot not started: {reason}; retrying in the background"
                )
                self._retry = asyncio.create_task(self._retry_telegram(), name="telegram-retry")
        if settings.slack_bot_token and settings.slack_signing_secret:
            from chatops.slack.surface import SlackSurface

            self.slack = SlackSurface(self.services, self.registry)
            await self.slack.start()
            self._report("slack", None)
            lines.append(f"Slack app: slash command /piyasa at {EVENTS_PATH}")
        for line in lines:
            log.info("%s", line)
        return lines

    async def _start_telegram(self) -> str:
        assert self.telegram is not None
        await self.telegram.start()
        self._telegram_ready = True
        self._report("telegram", None)
        mode = "webhook" if self.telegram.webhook_url else "long polling"
        admin_chats = ", ".join(map(str, self.services.settings.admin_chat_ids)) or "none"
        return f"Telegram admin bot @{self.telegram.username} ({mode}); admin chats: {admin_chats}"

    async def _retry_telegram(self) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            try:
                log.info("%s", await self._start_telegram())
                return
            except Exception as exc:
                reason = describe_failure(exc)
                self._report("telegram", reason)
                log.warning("Telegram admin bot still not started: %s", reason)

    def _report(self, surface: str, problem: str | None) -> None:
        self.problems[surface] = problem
        if self._on_state is not None:
            self._on_state(surface, problem)

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        self._telegram_ready = False
        if self.telegram is not None:
            await self.telegram.stop()
            self.telegram = None
        if self.slack is not None:
            await self.slack.stop()
            self.slack = None
