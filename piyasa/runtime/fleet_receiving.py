"""The fleet's roster and receivers: tokens, reloads, and polling or webhooks per bot."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from piyasa.runtime.intake import Poller, PollerRegistry
from piyasa.runtime.ownership import spreadable
from piyasa.runtime.receiver import WebhookReceiver
from piyasa.runtime.roster import load_roster


class FleetReceiving:
    """Part of :class:`piyasa.runtime.fleet.Fleet`; uses the attributes its ``__init__`` sets."""

    async def _start_receivers(self) -> None:
        mode = self.receive_mode or str(self.settings_store.get("fleet_receive_mode"))
        if mode == "off" or self.clients is None or self.ingest is None:
            return
        if mode == "webhook":
            self.webhooks = WebhookReceiver(
                self.services.settings.secret_key.reveal(),
                self.ingest,
                self.clients.sender,
                self._error,
            )
            base = str(self.settings_store.get("fleet_webhook_url"))
            for bot in self.roster.bots.values():
                if bot.enabled and self.clients.has(bot.id) and base:
                    try:
                        await self.webhooks.register(bot.id, base)
                    except Exception as exc:
                        self._error(
                            f"webhook bot={bot.id}", f"setWebhook failed: {type(exc).__name__}"
                        )
            return
        registry = PollerRegistry(self.services.sessions, self.services.engine.dialect.name)
        cluster = self.services.extras.get("cluster")
        if cluster is not None and self.spreader is None:
            cluster.local_bots = spreadable(self)
        for bot in self.roster.bots.values():
            if (
                bot.enabled
                and self.clients.has(bot.id)
                and bot.id not in self.pollers
                and self.owns(bot.id)
            ):
                poller = Poller(
                    bot.id,
                    bot.username,
                    functools.partial(self.clients.poller, bot.id),
                    self.ingest,
                    registry,
                    self.instance,
                    self._error,
                    functools.partial(self.disabler.refused, bot.id, None),
                    self._event,
                )
                self.pollers[bot.id] = poller
                self.supervisor.add(f"poll-{bot.id}", poller.run, group="receivers")

    @property
    def webhook_handler(self) -> Any:
        """aiohttp handler for ``/telegram/webhook/{bot_id}`` (webhook mode)."""
        return self.webhooks.handler if self.webhooks else None

    def _load_tokens(self) -> None:
        assert self.clients is not None
        for bot in self.roster.bots.values():
            try:
                self.clients.set_token(bot.id, self.services.box.decrypt(bot.token_encrypted))
            except Exception:
                self._error(
                    f"bot={bot.id}", "cannot decrypt the bot token (wrong PIYASA_SECRET_KEY?)"
                )

    # ---- roster

    async def _roster_loop(self) -> None:
        while True:
            await asyncio.sleep(self.roster_refresh_s)
            await self.reload_roster()

    async def reload_roster(self) -> None:
        roster = await load_roster(self.services.sessions)
        self.disabler.apply(roster)  # disables decided here but not yet written
        self.follower.apply(roster)  # chat moves likewise
        self.roster = roster
        if self.planner is not None:
            self.planner.roster = roster
        self._disable_invalid()
        stale = [b for b in self.pollers if b not in roster.bots or not roster.bots[b].enabled]
        for bot_id in stale:  # disabled or removed meanwhile, here or by another instance
            self._unpoll(bot_id)
        self._load_tokens()
        await self._start_receivers()

    def _disable_invalid(self) -> None:
        """Bad data in one bot's row disables that bot only (recorded, with an event)."""
        for bot_id, reason in list(self.roster.invalid.items()):
            self.disabler.disable_bot(bot_id, reason)

    def _unpoll(self, bot_id: int) -> None:
        """A disabled bot stops polling (a revoked token would only get 401s)."""
        if self.pollers.pop(bot_id, None) is not None:
            self._spawn(self.supervisor.remove(f"poll-{bot_id}"))
