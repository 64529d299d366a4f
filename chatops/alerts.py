"""Health alerts in chat: the admin chats on Telegram and the Slack alert channel.

:class:`piyasa.admin.health.alerts.Alerter` decides what to post; this module renders a
notice (``chatops.commands.health.alert_view``) and posts it. One sink per admin chat, so
a chat that fails is retried alone and the others never get a duplicate.

An alert's buttons are bound to its chat and to any presser (``ButtonTokens.ANY_USER``):
whoever presses is identified and authorized by role like any other press, so a viewer
in the admin group can open [Details] but is refused the quick action.

Wiring in ``piyasa up``, after the chat surfaces started::

    running.stoppers.append(("alerts", await start_alerts(services, surfaces)))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from chatops import i18n
from chatops.buttons import ANY_USER, ButtonTokens
from chatops.commands.health import LiveViews, alert_view
from chatops.views import Button, Text, TokenIssuer, View
from piyasa.admin import admin_chats
from piyasa.admin.health.alerts import Alerter, AlertNotice
from piyasa.services import Services

log = logging.getLogger(__name__)
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class ChatAlerts:
    """Posts alert notices through the running surfaces."""

    def __init__(self, services: Services, surfaces: Any) -> None:
        self.services = services
        self.surfaces = surfaces

    def sinks(self) -> dict[str, Callable[[AlertNotice], Awaitable[None]]]:
        out: dict[str, Callable[[AlertNotice], Awaitable[None]]] = {}
        settings = self.services.settings
        if self.surfaces.telegram is not None:
            for chat_id in settings.admin_chat_ids:
                out[f"telegram:{chat_id}"] = self._telegram_sink(int(chat_id))
        channel = settings.slack_alert_channel
        if self.surfaces.slack is not None and channel:
            out[f"slack:{channel}"] = self._slack_sink(channel)
        return out

    def _telegram_sink(self, chat_id: int) -> Callable[[AlertNotice], Awaitable[None]]:
        async def post(notice: AlertNotice) -> None:
            from chatops.telegram import render

            surface = self.surfaces.telegram
            lang = self.services.settings.lang
            view = alert_view(lang, notice)
            try:
                rendered = await render.render(
                    view, lang, _issuer(surface.tokens, "telegram", str(chat_id))
                )
            except Exception as exc:  # the token store (the cache: Redis) is down
                log.warning("alert without buttons: %s", type(exc).__name__)
                rendered = await render.render(_without_buttons(view, lang), lang, _no_tokens)
            for i, text in enumerate(rendered.texts):
                markup = rendered.markup if i == len(rendered.texts) - 1 else None
                await surface.bot.send_message(chat_id, text, reply_markup=markup)

        return post

    def _slack_sink(self, channel: str) -> Callable[[AlertNotice], Awaitable[None]]:
        async def post(notice: AlertNotice) -> None:
            from chatops.slack import render

            surface = self.surfaces.slack
            lang = self.services.settings.lang
            view = alert_view(lang, notice)
            if SLACK_CHANNEL_ID.match(channel):
                try:
                    messages = await render.render(
                        view, lang, _issuer(surface.tokens, "slack", channel)
                    )
                except Exception as exc:  # the token store (the cache: Redis) is down
                    log.warning("alert without buttons: %s", type(exc).__name__)
                    messages = await render.render(_without_buttons(view, lang), lang, _no_tokens)
                for message in messages:
                    await surface.client.chat_postMessage(channel=channel, **message)
                return
            # A channel given by name: presses report the channel's id, so post first and
            # bind the buttons to the id Slack answers with.
            text_only = render.text_blocks(view)
            resp = await surface.client.chat_postMessage(
                channel=channel, text=view.plain_text()[:3000] or " ", blocks=text_only
            )
            if view.buttons:
                try:
                    messages = await render.render(
                        view, lang, _issuer(surface.tokens, "slack", resp["channel"])
                    )
                except Exception as exc:  # posted already; only the buttons are missing
                    log.warning("alert without buttons: %s", type(exc).__name__)
                    return
                await surface.client.chat_update(
                    channel=resp["channel"], ts=resp["ts"], **messages[-1]
                )

        return post


def _without_buttons(view: View, lang: str) -> View:
    """An alert must get out even when its buttons cannot be made (no token store)."""
    return View(
        title=view.title,
        blocks=[*view.blocks, Text(i18n.t(lang, "health.alert.no_buttons"), style="italic")],
    )


async def _no_tokens(_button: Button) -> str:
    raise AssertionError("a view without buttons issues no tokens")


def _issuer(tokens: ButtonTokens, surface: str, chat: str) -> TokenIssuer:
    return tokens.issuer(surface=surface, user=ANY_USER, chat=chat)


async def start_alerts(services: Services, surfaces: Any) -> Callable[[], Awaitable[None]]:
    """Start posting health alerts (when a health service runs); returns the stopper,
    which also ends any live `/health` views before the surfaces go away."""
    health = services.extras.get("health")
    alerter: Alerter | None = None
    chat_alerts = ChatAlerts(services, surfaces)

    async def follow(chat_id: int) -> None:  # an admin chat adopted from chat: post there too
        name = f"telegram:{chat_id}"
        if alerter is not None and surfaces.telegram is not None and name not in alerter.sinks:
            alerter.add_sink(name, chat_alerts._telegram_sink(int(chat_id)))

    if health is not None:
        alerter = Alerter(health)
        for name, sink in chat_alerts.sinks().items():
            alerter.add_sink(name, sink)
        services.extras["health.alerts"] = alerter
        await alerter.start()
        admin_chats.on_adopted(services, follow)
        if not alerter.sinks:
            log.info("health alerts: no admin chat or Slack alert channel configured")

    async def stop() -> None:
        admin_chats.off_adopted(services, follow)
        live = services.extras.get("health.live")
        if isinstance(live, LiveViews):
            await live.stop_all()
        if alerter is not None:
            await alerter.stop()

    return stop
