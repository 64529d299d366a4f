"""Entry point `piyasa up` uses to run the chat surfaces.

    surfaces = Surfaces(services, web_app)   # before web_app starts: mounts routes
    await surfaces.start()                   # admin bot polling (or webhook), Slack
    await surfaces.stop()

Telegram runs when an admin bot token is configured; Slack when both its bot token and
signing secret are. Routes are mounted in the constructor because aiohttp freezes its
router once the app starts; they answer 503 until the surface is up.

Neither surface ends `piyasa up`: a Bot API or Slack that is unreachable, or a token it
refuses, is reported (``on_state``: /readyz; the health component, whose state change is
the alert event the other surface posts) and retried with backoff (``RETRY_DELAYS_S``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from chatops.web.paths import SLACK_EVENTS_PATH as EVENTS_PATH
from chatops.web.paths import TELEGRAM_WEBHOOK_PATH as WEBHOOK_PATH
from piyasa.tasks import cancel_and_wait, wait_for

if TYPE_CHECKING:  # the surfaces import aiogram / slack_bolt: only when configured
    from chatops.commands.registry import Registry
    from chatops.slack.surface import SlackSurface
    from chatops.telegram.surface import TelegramSurface
    from piyasa.services import Services

log = logging.getLogger(__name__)
RETRY_DELAYS_S = (2.0, 5.0, 15.0, 30.0, 60.0)  # between attempts to start a failed surface
SLACK_CHECK_TIMEOUT_S = 10.0  # auth.test at start and on each retry


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


def describe_slack_failure(exc: BaseException) -> str:
    """One line for an ``auth.test`` that failed, secrets redacted (shown on /readyz and
    in the health component). Error codes: api.slack.com/methods/auth.test."""
    from chatops.slack.errors import TOKEN_REFUSED, error_code
    from piyasa.logs import REDACTOR

    code = error_code(exc)
    if code in TOKEN_REFUSED:
        return (
            f"Slack refused the bot token ({code}): revoked or wrong; "
            "set a new one in PIYASA_SLACK_BOT_TOKEN"
        )
    if code:
        return REDACTOR(f"Slack auth.test failed ({code})")
    if isinstance(exc, TimeoutError):
        return f"cannot reach the Slack Web API (no answer within {SLACK_CHECK_TIMEOUT_S:g} s)"
    text = (str(exc).splitlines() or [""])[0][:200]
    return REDACTOR(f"cannot reach the Slack Web API ({type(exc).__name__}: {text})")


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
        self._retries: dict[str, asyncio.Task[None]] = {}
        self.problems: dict[str, str | None] = {}
        self.telegram: TelegramSurface | None = None
        self.slack: SlackSurface | None = None
        self._telegram_ready = False
        # piyasa.cluster: with several instances only the admin role's holder long-polls;
        # piyasa up starts with False and lets the election call set_admin_polling
        self.poll_admin_bot = True
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
            self.telegram.poll_enabled = self.poll_admin_bot
            try:
                lines.append(await self._start_telegram())
            except Exception as exc:
                reason = self._telegram_failed(exc)
                lines.append(
                    f"Telegram admin bot not started: {reason}; retrying in the background"
                )
                self._retry_later("telegram", self._start_telegram, self._telegram_failed)
        if settings.slack_bot_token and settings.slack_signing_secret:
            lines.append(await self._start_slack())
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

    async def set_admin_polling(self, enabled: bool) -> None:
        """Start or stop the admin bot's long polling (the admin role was won or lost)."""
        self.poll_admin_bot = enabled
        if self.telegram is not None:
            await self.telegram.set_polling(enabled)

    async def _start_slack(self) -> str:
        """Build the Slack app (its route verifies and answers from now on), then check
        the bot token with ``auth.test``; a failure is reported and retried, never raised."""
        from chatops.slack.health import SlackProbe
        from chatops.slack.surface import SlackSurface

        self.slack = SlackSurface(self.services, self.registry)
        await self.slack.start()
        health = self.services.extras.get("health")
        if health is not None:
            health.add_probe(SlackProbe(self))
        try:
            return await self._check_slack()
        except Exception as exc:
            reason = self._slack_failed(exc)
            self._retry_later("slack", self._check_slack, self._slack_failed)
            return f"Slack app not ready: {reason}; retrying in the background"

    async def _check_slack(self) -> str:
        assert self.slack is not None
        who = await wait_for(self.slack.check_token(), SLACK_CHECK_TIMEOUT_S)
        self.slack.refused = None
        self._report("slack", None)
        team = who.get("team") or who.get("team_id") or "?"
        return f"Slack app @{self.slack.bot_name} in {team}: slash command /piyasa at {EVENTS_PATH}"

    def _slack_failed(self, exc: BaseException) -> str:
        """Report a failed ``auth.test``; a refused token also changes what the Slack
        route answers (see ``SlackSurface.refused``). Returns the reason."""
        from slack_sdk.errors import SlackApiError

        from chatops.slack.errors import TOKEN_REFUSED, error_code

        reason = describe_slack_failure(exc)
        if self.slack is not None and isinstance(exc, SlackApiError):
            self.slack.refused = exc if error_code(exc) in TOKEN_REFUSED else None
        self._report("slack", reason)
        return reason

    async def recheck_slack(self) -> str | None:
        """``auth.test`` again (the health probe, once a minute): None when the token is
        accepted; else the reason, reported, with a retry loop started."""
        if self.slack is None or "slack" in self._retries:
            return self.problems.get("slack")
        try:
            await self._check_slack()
            return None
        except Exception as exc:
            reason = self._slack_failed(exc)
            self._retry_later("slack", self._check_slack, self._slack_failed)
            return reason

    def _retry_later(
        self,
        surface: str,
        start: Callable[[], Awaitable[str]],
        failed: Callable[[BaseException], str],
    ) -> None:
        """Call ``start`` again after each of ``RETRY_DELAYS_S`` (then every last delay)
        until it returns; ``failed(exc)`` reports each failure and returns the reason."""

        async def retry() -> None:
            for attempt in itertools.count():
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                try:
                    log.info("%s", await start())
                    break
                except Exception as exc:
                    reason = failed(exc)
                    log.warning("%s still not started: %s", surface.capitalize(), reason)
            self._retries.pop(surface, None)

        self._retries[surface] = asyncio.create_task(retry(), name=f"{surface}-retry")

    def _telegram_failed(self, exc: BaseException) -> str:
        reason = describe_failure(exc)
        self._report("telegram", reason)
        return reason

    def _report(self, surface: str, problem: str | None) -> None:
        self.problems[surface] = problem
        if self._on_state is not None:
            self._on_state(surface, problem)

    async def stop(self) -> None:
        for task in list(self._retries.values()):
            await cancel_and_wait(task)
        self._retries.clear()
        self._telegram_ready = False
        if self.telegram is not None:
            await self.telegram.stop()
            self.telegram = None
        if self.slack is not None:
            await self.slack.stop()
            self.slack = None
