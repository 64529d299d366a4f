"""The analytics digest in chat: the sender the notification service calls for an outbox
row of kind ``analytics`` (:mod:`piyasa.admin.notify.analytics_digest`).

It reads the overview of the row's period (24 h or 7 d ending at the scheduled minute)
with :meth:`Analytics.overview` and renders it as the `/analytics` overview screen does
(:func:`chatops.commands.analytics.overview.overview_view`: totals with their trend
against the previous period, success rate, cost, p95, top bots, issues detected) in the
reader's language, without buttons, titled as a daily/weekly digest, with one chart —
messages over time (:func:`chatops.commands.analytics.exports.render_chart`). Telegram
gets the message and then the chart as a photo with a caption; Slack the message and the
chart as an uploaded file. A surface that is not running raises, and the outbox retries.
"""

from __future__ import annotations

from typing import Any

from chatops import i18n
from chatops.alerts import post_slack, post_telegram
from chatops.commands.analytics.common import bot_names, period_label
from chatops.commands.analytics.exports import render_chart
from chatops.commands.analytics.overview import overview_view
from chatops.commands.registry import REGISTRY
from chatops.context import Client, Context
from chatops.views import Image, View
from piyasa.admin.notify import analytics_digest as ad
from piyasa.admin.notify.outbox import RichSender, Undeliverable
from piyasa.analytics import localfmt
from piyasa.analytics.queries import Analytics, Period
from piyasa.services import Services

CHART = "messages"


def reader(services: Services, surface: str, chat: str, lang: str) -> Context:
    """A context to render views for a reader who asked for nothing just now (no actor,
    no invocation): the language and the services are all the analytics views read."""
    return Context(
        services=services,
        registry=REGISTRY,
        surface=surface,
        client=Client(surface, chat),
        actor=None,
        lang=lang if lang in i18n.LANGS else "en",
        chat_id=chat,
        chat_private=True,
    )


async def digest_view(ctx: Context, data: dict[str, Any]) -> View:
    """The digest of a row's ``payload`` for ``ctx``'s reader: the overview of the period
    with the messages-over-time chart as its one image (PNG). ValueError for a malformed
    payload."""
    label, end = ad.period_of(data)
    period = Period.parse(label, end)
    ov = await Analytics(ctx.services.sessions).overview(period)
    names = await bot_names(ctx, [i.bot_id for i in ov.issues if i.bot_id is not None])
    view = overview_view(ctx, ov, names)
    view.buttons = []
    view.context_help = False
    cadence = "weekly" if label == "7d" else "daily"
    view.title = ctx.t(
        f"analytics.digest.title.{cadence}",
        period=period_label(ctx, period),
        end=localfmt.local_moment(end, ctx.lang, str(data.get("tz") or "UTC")),
    )
    png = await render_chart(ctx, CHART, period)
    caption = ctx.t(f"analytics.chart.{CHART}", period=period_label(ctx, period))
    view.images = [Image(png, caption, filename=f"piyasa-digest-{end:%Y%m%d-%H%M}.png")]
    return view


def analytics_sender(services: Services, surfaces: Any) -> RichSender:
    """``send(surface, chat, payload, lang)`` for ``NotifyService.rich_senders["analytics"]``."""

    async def send(surface: str, chat: str, data: dict[str, Any], lang: str) -> None:
        try:
            ad.period_of(data)
        except (ValueError, KeyError) as exc:  # never sendable: no retry
            raise Undeliverable(str(exc)) from None
        if surface == "telegram":
            tg = surfaces.telegram
            if tg is None:
                raise ConnectionError("the Telegram admin bot is not running")
            view = await digest_view(reader(services, surface, chat, lang), data)
            await _telegram(tg, int(chat), view, lang)
            return
        if surface == "slack":
            slack = surfaces.slack
            if slack is None:
                raise ConnectionError("the Slack app is not running")
            if chat.startswith(("U", "W")):  # a user: their DM with the app
                chat = (await slack.client.conversations_open(users=chat))["channel"]["id"]
            view = await digest_view(reader(services, surface, chat, lang), data)
            await _slack(slack, chat, view, lang)
            return
        raise ConnectionError(f"{surface} cannot show an analytics digest")

    return send


async def _telegram(surface: Any, chat_id: int, view: View, lang: str) -> None:
    from aiogram.types import BufferedInputFile

    from chatops.telegram import render

    images, view.images = view.images, []
    await post_telegram(surface, chat_id, view, lang)
    for image in images:
        await surface.bot.send_photo(
            chat_id,
            BufferedInputFile(image.data, image.filename),
            caption=render.esc(image.caption)[: render.MAX_CAPTION] or None,
        )


async def _slack(surface: Any, channel: str, view: View, lang: str) -> None:
    images, view.images = view.images, []
    await post_slack(surface, channel, view, lang)
    for image in images:
        await surface.client.files_upload_v2(
            channel=channel,
            file=image.data,
            filename=image.filename,
            initial_comment=image.caption or None,
        )
