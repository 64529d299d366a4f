"""`/preview BOT [CHAT] [TOPIC]`: sample messages of a bot, generated with its saved (or a
proposed, unsaved) persona and the fleet's settings, sent nowhere. [Send to the sandbox]
posts a sample into a sandbox group, only while the Telegram sandbox runs.

Other views (the bot card's persona editor) preview an unsaved persona by rendering
``Button(label, "preview.show", {"bot": ID, "persona": {...}})``: the persona travels in
the button's server-side params, never in callback data.
"""

from __future__ import annotations

from typing import Any

from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.fleetadmin import preview as preview_service
from piyasa.fleetadmin.preview import PreviewError, PreviewSample

SAMPLES = 3


def _error(ctx: Context, exc: PreviewError) -> View:
    return View(blocks=[Alert("error", ctx.t(exc.key, **exc.params))])


def preview_view(ctx: Context, samples: list[PreviewSample], params: dict[str, Any]) -> View:
    """The samples, what they cost (as preview), and the buttons."""
    t = ctx.t
    first = samples[0]
    where = first.chat_title or t("preview.no_chat")
    title = t("preview.title", bot=first.bot_name, chat=where, topic=first.topic)
    blocks: list[Any] = []
    if first.proposed:
        blocks.append(Alert("info", t("preview.proposed")))
    for i, s in enumerate(samples, 1):
        blocks.append(Text(f"{i}. {s.text}"))
    cost = sum(s.cost_usd for s in samples)
    blocks.append(
        Text(
            t(
                "preview.cost",
                n=len(samples),
                model=first.model,
                tin=sum(s.tokens_in for s in samples),
                tout=sum(s.tokens_out for s in samples),
                usd=f"{cost:.6f}",
            ),
            style="italic",
        )
    )
    view = View(title=title, blocks=blocks)
    view.row(Button(t("preview.btn.again"), "preview.show", params))
    if preview_service.sandbox_running(ctx.services):
        view.row(
            *(
                Button(
                    t("preview.btn.sandbox", n=i),
                    "preview.sandbox",
                    {"bot": s.bot_id, "chat": s.chat_id, "text": s.text},
                )
                for i, s in enumerate(samples, 1)
            )
        )
    return view


async def _run(ctx: Context, params: dict[str, Any]) -> View:
    ctx.audit_params.update({k: v for k, v in params.items() if k != "persona"})
    persona = params.get("persona")
    try:
        samples = await preview_service.preview(
            ctx.services,
            int(params["bot"]),
            chat_id=params.get("chat"),
            topic=params.get("topic"),
            n=SAMPLES,
            persona=dict(persona) if isinstance(persona, dict) else None,
            actor=ctx.actor_label,
        )
    except PreviewError as exc:
        return _error(ctx, exc)
    return preview_view(ctx, samples, params)


@command(
    "preview",
    role="operator",
    order=63,
    args=(Arg("bot", required=True), Arg("chat"), Arg("topic", max_len=32)),
)
async def preview(ctx: Context) -> View:
    """``/preview BOT [CHAT] [TOPIC]``; with two words, the second is a chat if one is
    called so, otherwise a topic."""
    try:
        bot = await preview_service.find_bot(ctx.services, ctx.args["bot"])
        chat_ref, topic = ctx.args.get("chat"), ctx.args.get("topic")
        chat = None
        if chat_ref:
            try:
                chat = await preview_service.find_chat(ctx.services, chat_ref)
            except PreviewError:
                if topic or chat_ref.lstrip("-").isdigit():
                    raise
                topic = chat_ref  # `/preview BOT crypto`
    except PreviewError as exc:
        return _error(ctx, exc)
    params: dict[str, Any] = {"bot": bot.id}
    if chat is not None:
        params["chat"] = chat.id
    if topic:
        params["topic"] = topic
    return await _run(ctx, params)


@preview.action("show")
async def preview_show(ctx: Context) -> View:
    if "bot" not in ctx.params or not str(ctx.params["bot"]).isdigit():
        return View(blocks=[Alert("error", ctx.t("preview.error.no_bot", bot="?"))])
    return await _run(ctx, dict(ctx.params))


@preview.action("sandbox")
async def preview_sandbox(ctx: Context) -> View:
    p = ctx.params
    try:
        chat, msg_id = await preview_service.send_to_sandbox(
            ctx.services, int(p.get("bot", 0)), p.get("chat"), str(p.get("text") or "")
        )
    except PreviewError as exc:
        view = _error(ctx, exc)
        view.edit = False
        return view
    ctx.audit_params.update(bot=p.get("bot"), chat=chat, message_id=msg_id)
    return View(blocks=[Alert("success", ctx.t("preview.sent", chat=chat))], edit=False)
