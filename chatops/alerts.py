"""Health alerts in chat: the admin chats on Telegram and the Slack alert channel.

:class:`piyasa.admin.health.alerts.Alerter` decides what to post. In ``piyasa up`` it is a
producer on the notification service (:func:`start_alerts`), which routes, groups and
delivers through :func:`post_telegram` / :func:`post_slack` here; :class:`ChatAlerts`
(one sink per admin chat, rendering ``chatops.commands.health.alert_view``) posts the
notices directly where no notification service runs.

An alert's buttons are bound to its chat and to any presser (``ButtonTokens.ANY_USER``):
whoever presses is identified and authorized by role like any other press, so a viewer
in the admin group can open [Details] but is refused the quick action.

Wiring in ``piyasa up``, after the chat surfaces started::

    running.stoppers.append(("alerts", await start_alerts(services, surfaces)))
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from chatops import i18n
from chatops.buttons import ANY_USER, ButtonTokens
from chatops.commands.health import LiveViews, alert_view
from chatops.views import Button, Text, TokenIssuer, View
from piyasa.admin.health.alerts import Alerter, AlertNotice
from piyasa.services import Services
from piyasa.tasks import cancel_and_wait

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
            lang = self.services.settings.lang
            await post_telegram(self.surfaces.telegram, chat_id, alert_view(lang, notice), lang)

        return post

    def _slack_sink(self, channel: str) -> Callable[[AlertNotice], Awaitable[None]]:
        async def post(notice: AlertNotice) -> None:
            lang = self.services.settings.lang
            await post_slack(self.surfaces.slack, channel, alert_view(lang, notice), lang)

        return post


async def post_telegram(surface: Any, chat_id: int, view: View, lang: str) -> None:
    """Post ``view`` to a Telegram chat, its buttons pressable by anyone there (each press
    authorized by role); without buttons when the token store is down."""
    from chatops.telegram import render

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


async def post_slack(surface: Any, channel: str, view: View, lang: str) -> None:
    """Post ``view`` to a Slack channel (id or name) with working buttons."""
    from chatops.slack import render

    if SLACK_CHANNEL_ID.match(channel):
        try:
            messages = await render.render(view, lang, _issuer(surface.tokens, "slack", channel))
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
        await surface.client.chat_update(channel=resp["channel"], ts=resp["ts"], **messages[-1])


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


DATABASE = "database"  # the health component whose outage the notification store shares

Sink = Callable[[AlertNotice], Awaitable[None]]


def _unless_database(sink: Sink) -> Sink:
    async def post(notice: AlertNotice) -> None:
        if notice.component != DATABASE:
            await sink(notice)

    return post


def _only_database(sink: Sink) -> Sink:
    async def post(notice: AlertNotice) -> None:
        if notice.component == DATABASE:
            await sink(notice)

    return post


async def _schema_events(services: Services) -> None:
    """Migrations applied at start-up (info), and whether any are pending (a warning
    raised by `piyasa check`, or by an instance that found the schema behind, ends here
    when the schema is current)."""
    from piyasa.admin.notify import emit
    from piyasa.admin.notify.producers import migrations_applied_event, schema_status

    applied = services.extras.pop("schema.applied", None)
    if applied is not None:
        emit(services.extras, migrations_applied_event(*applied))
    try:
        event = await schema_status(services.engine)
    except Exception as exc:  # the database went away meanwhile: health says so
        log.warning("schema not checked for notifications: %s", type(exc).__name__)
        return
    if event is not None:
        emit(services.extras, event)


async def start_alerts(services: Services, surfaces: Any) -> Callable[[], Awaitable[None]]:
    """Start the notification service (``chatops.notify_delivery``) and make the health
    alerter and the threshold watch (``piyasa.admin.notify.watch``: memory, CPU, disk,
    the fleet's 429 rate and storms) producers on it (when a health service runs), with
    the digest scheduler; returns the stopper, which
    also ends any live `/health` views before the surfaces go away."""
    from chatops.notify_delivery import start_digests, start_notifications
    from piyasa.admin.notify import watch
    from piyasa.admin.notify.producers import health_sink, open_health_alerts

    notify = await start_notifications(services, surfaces)
    await _schema_events(services)
    stop_digests = await start_digests(notify)
    health = services.extras.get("health")
    alerter: Alerter | None = None
    watching: asyncio.Task[None] | None = None
    if health is not None:
        alerter = Alerter(health)
        # routed per flush from the current settings, so an admin chat adopted from
        # chat (piyasa.admin.admin_chats.adopt) hears the next alert without a restart
        alerter.add_sink("notify", _unless_database(health_sink(notify)))
        # the notification store lives in the database: its own outage (and recovery) is
        # posted straight to the admin chats and the Slack alert channel instead
        for name, post in ChatAlerts(services, surfaces).sinks().items():
            alerter.add_sink(name, _only_database(post))
        services.extras["health.alerts"] = alerter
        alerter.adopt(await open_health_alerts(services))  # a restart mid-outage
        await alerter.start()
        watching = asyncio.create_task(watch.run(services.extras, health), name="notify-watch")

    async def stop() -> None:
        live = services.extras.get("health.live")
        if isinstance(live, LiveViews):
            await live.stop_all()
        if alerter is not None:
            await alerter.stop()
        if watching is not None:
            await cancel_and_wait(watching)
        await stop_digests()
        await notify.stop()

    return stop
