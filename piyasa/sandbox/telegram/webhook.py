"""Webhook delivery: POST each pending update, in order, until the endpoint says 2xx.

Telegram keeps an update until the webhook accepts it and retries with growing delays,
recording the failure in getWebhookInfo; the sandbox does the same, one update at a time.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from piyasa.tasks import cancel_and_wait

from .state import BotAccount, Webhook, World

log = logging.getLogger(__name__)


class WebhookDelivery:
    def __init__(
        self,
        world: World,
        allow_http: bool = True,
        retry_delays: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self.world = world
        self.allow_http = allow_http
        self.retry_delays = retry_delays
        self._session: aiohttp.ClientSession | None = None

    def start(self, bot: BotAccount) -> None:
        hook = bot.webhook
        assert hook is not None
        hook.task = asyncio.get_running_loop().create_task(self._run(bot, hook))

    async def stop(self, bot: BotAccount) -> None:
        hook = bot.webhook
        if hook is not None and hook.task is not None:
            await cancel_and_wait(hook.task)
            hook.task = None

    async def close(self) -> None:
        for bot in self.world.bots.values():
            await self.stop(bot)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, hook: Webhook, update: dict) -> str | None:
        """Deliver one update; returns an error message, or None when accepted."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._session.post(hook.url, json=update, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"Connection failed: {type(exc).__name__}"

    async def _run(self, bot: BotAccount, hook: Webhook) -> None:
        delay = self.retry_delays[0]
        while bot.webhook is hook:
            waiter = bot.notifier.waiter()
            self.world.prune_updates(bot)
            if not bot.updates:
                await waiter.wait()
                continue
            update = bot.updates[0][1]
            error = await self._post(hook, update)
            if error is None:
                if bot.updates and bot.updates[0][1] is update:
                    bot.updates.pop(0)
                delay = self.retry_delays[0]
                continue
            hook.last_error_date = self.world.date()
            hook.last_error_message = error
            log.debug("webhook delivery for bot %s failed: %s", bot.id, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_delays[1])
