"""Typed edits of a bot (the ``botedit`` dialog), the persona screen with its unsaved draft,
and the preview of a persona before it is saved.

A persona edit goes to a draft first (kept 1 hour in the cache, per user, chat and bot):
the persona screen marks drafted fields, [Preview] generates samples with the draft
through flimits' ``piyasa.fleetadmin.preview.preview`` (nothing is sent), [Save] validates
and stores it, and the running fleet uses it from its next message. Name, active hours,
time zone and hourly limit apply as soon as they are typed and valid.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chatops.commands.bots import (
    as_int,
    bots,
    card_params,
    card_view,
    gone_view,
    problem_text,
)
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.dialogs import Dialog, Step
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.fleetadmin import bot_changes as changes
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin import persona as personas

log = logging.getLogger(__name__)

DIRECT = ("name", "active_hours", "timezone", "hourly_limit")
EDITABLE = (*DIRECT, *(f"persona.{f}" for f in personas.PERSONA_FIELDS))
DRAFT_TTL_S = 3600
PREVIEW_N = 3
_SEP = "\x1f"


def encode_problem(ctx: Context, exc: Exception) -> str:
    """A refusal as the dialog's error string: catalog key and parameters, so the step
    shows it (and a Slack modal under its input) with the values filled in."""
    text = problem_text(ctx, exc)
    return f"{_SEP}{json.dumps({'text': text})}"


class ParamDialog(Dialog):
    """A Dialog whose step errors may carry their words (:func:`encode_problem`)."""

    async def _render(self, ctx: Context, state: dict[str, Any], error: str = "") -> View:
        if not error.startswith(_SEP):
            return await super()._render(ctx, state, error)
        view = await super()._render(ctx, state)
        text = json.loads(error[1:])["text"]
        view.blocks.append(Alert("error", text))
        if view.ask is not None:
            view.ask.error = text
        return view


# -- drafts ------------------------------------------------------------------------------------


def draft_key(ctx: Context, bot_id: int) -> str:
    return f"botdraft:{ctx.surface}:{ctx.client.external_id}:{ctx.chat_id}:{bot_id}"


async def get_draft(ctx: Context, bot_id: int) -> dict[str, Any] | None:
    return await ctx.services.cache.get(draft_key(ctx, bot_id))


async def saved_persona(ctx: Context, bot_id: int) -> dict[str, Any]:
    return dict((await svc.get_bot(ctx.services, bot_id)).persona or {})


# -- the dialog ----------------------------------------------------------------------------------


def field_label(ctx: Context, field: str) -> str:
    return ctx.t(f"bots.field.{field.removeprefix('persona.')}")


async def current_value(ctx: Context, bot_id: int, field: str) -> str:
    bot = await svc.get_bot(ctx.services, bot_id)
    if field.startswith("persona."):
        f = field.removeprefix("persona.")
        persona = await get_draft(ctx, bot_id) or dict(bot.persona or {})
        return personas.show_field(f, persona.get(f))
    if field == "name":
        return svc.bot_name(bot)
    return str(getattr(bot, field) or "")


async def render_value(ctx: Context, data: dict[str, Any]) -> View:
    field, bot_id = data["field"], int(data["bot"])
    try:
        bot = await svc.get_bot(ctx.services, bot_id)
    except svc.BotError as exc:
        return View(blocks=[Alert("error", problem_text(ctx, exc))])
    name = svc.bot_name(bot)
    hint = field.removeprefix("persona.")
    spec = personas.PERSONA_FIELDS.get(hint)
    view = View(title=ctx.t("bots.edit.title", field=field_label(ctx, field), name=name))
    view.blocks.append(
        Text(ctx.t("bots.edit.current", value=await current_value(ctx, bot_id, field) or "—"))
    )
    view.blocks.append(Text(ctx.t(f"bots.hint.{hint}", max=spec.max_len if spec else 0)))
    return view


async def on_value(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    field, bot_id, actor = data["field"], int(data["bot"]), ctx.actor_label
    s = ctx.services
    try:
        if field.startswith("persona."):
            f = field.removeprefix("persona.")
            value = personas.parse_field(f, text)
            draft = await get_draft(ctx, bot_id) or await saved_persona(ctx, bot_id)
            if value in ("", [], {}):
                draft.pop(f, None)
            else:
                draft[f] = value
            personas.validate_persona(draft)
            await s.cache.set(draft_key(ctx, bot_id), draft, ttl=DRAFT_TTL_S)
        elif field == "name":
            await changes.rename(s, bot_id, text, actor=actor)
        elif field == "active_hours":
            await changes.set_active_hours(s, bot_id, text, actor=actor)
        elif field == "timezone":
            await changes.set_timezone(s, bot_id, text, actor=actor)
        elif field == "hourly_limit":
            await changes.set_hourly_limit(s, bot_id, text, actor=actor)
    except (svc.BotError, personas.PersonaError) as exc:
        return encode_problem(ctx, exc)
    ctx.audit_params.update(bot=bot_id, field=field)
    return None


async def finish_edit(ctx: Context, data: dict[str, Any]) -> View:
    field, bot_id = data["field"], int(data["bot"])
    label = field_label(ctx, field)
    if field.startswith("persona."):
        return await persona_view(
            ctx, bot_id, Alert("info", ctx.t("bots.draft.noted", field=label))
        )
    return await card_view(ctx, bot_id, Alert("success", ctx.t("bots.ok.field", field=label)))


edit_dialog = ParamDialog(
    "botedit", steps=[Step("value", render_value, on_text=on_value)], finish=finish_edit
)


@command(
    "botedit",
    role="operator",
    order=42,
    hidden=True,
    capability="bots",
    args=(Arg("bot", required=True), Arg("field", required=True, choices=EDITABLE)),
)
async def botedit(ctx: Context) -> View:
    """Edit one field of a bot by typing it: ``botedit BOT FIELD`` (the card's buttons
    start it for you)."""
    try:
        bot = await svc.get_bot(ctx.services, ctx.args["bot"])
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = svc.bot_name(bot)
    return await edit_dialog.reset(ctx, {"bot": bot.id, "field": ctx.args["field"].lower()})


edit_dialog.bind(botedit)


@bots.action("edit", role="operator", params=(Param("f", EDITABLE, required=True),))
async def bots_edit(ctx: Context) -> View:
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        return gone_view(ctx)
    try:
        bot = await svc.get_bot(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = svc.bot_name(bot)
    return await edit_dialog.reset(ctx, {"bot": bot.id, "field": str(ctx.params["f"])})


# -- the persona screen ---------------------------------------------------------------------------


async def persona_view(ctx: Context, bot_id: int | None, alert: Alert | None = None) -> View:
    if bot_id is None:
        return gone_view(ctx)
    try:
        bot = await svc.get_bot(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    saved = dict(bot.persona or {})
    draft = await get_draft(ctx, bot_id)
    shown = draft if draft is not None else saved
    t = ctx.t
    ctx.target = svc.bot_name(bot)
    view = View(title=t("bots.persona.title", name=svc.bot_name(bot)))
    if alert is not None:
        view.blocks.append(alert)
    items = []
    for f in personas.PERSONA_FIELDS:
        value = personas.show_field(f, shown.get(f)) or "—"
        changed = draft is not None and draft.get(f) != saved.get(f)
        items.append((("✎ " if changed else "") + t(f"bots.field.{f}"), value))
    view.blocks.append(Fields(items))
    if draft is not None and draft != saved:
        view.blocks.append(Alert("warning", t("bots.draft.unsaved")))
    p = card_params(ctx, bot_id)
    edits = [
        Button(
            t("bots.btn.edit_field", field=t(f"bots.field.{f}")),
            "bots.edit",
            {**p, "f": f"persona.{f}"},
        )
        for f in personas.PERSONA_FIELDS
    ]
    for i in range(0, len(edits), 3):
        view.row(*edits[i : i + 3])
    view.row(Button(t("bots.btn.preview"), "bots.preview", p))
    if draft is not None and draft != saved:
        view.row(
            Button(t("bots.btn.save"), "bots.save", p, style="primary"),
            Button(t("bots.btn.discard"), "bots.discard", p),
        )
    view.row(Button(t("bots.btn.to_card"), "bots.card", p))
    return view


@bots.action("persona", role="operator")
async def bots_persona(ctx: Context) -> View:
    return await persona_view(ctx, as_int(ctx.params.get("id")))


@bots.action("save", role="operator")
async def bots_save(ctx: Context) -> View:
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        return gone_view(ctx)
    draft = await get_draft(ctx, bot_id)
    if draft is None:
        return await persona_view(ctx, bot_id, Alert("info", ctx.t("bots.draft.none")))
    try:
        done = await changes.set_persona(ctx.services, bot_id, draft, actor=ctx.actor_label)
    except (svc.BotError, personas.PersonaError) as exc:
        return await persona_view(ctx, bot_id, Alert("error", problem_text(ctx, exc)))
    await ctx.services.cache.delete(draft_key(ctx, bot_id))
    changed = sorted(k for k in set(done.old) | set(done.new) if done.old.get(k) != done.new.get(k))
    ctx.audit_params.update(fields=changed)
    return await card_view(ctx, bot_id, Alert("success", ctx.t("bots.ok.persona", name=done.name)))


@bots.action("discard", role="operator")
async def bots_discard(ctx: Context) -> View:
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is not None:
        await ctx.services.cache.delete(draft_key(ctx, bot_id))
    return await persona_view(ctx, bot_id, Alert("info", ctx.t("bots.draft.discarded")))


# -- preview -------------------------------------------------------------------------------------


async def sample_blocks(
    ctx: Context, bot_id: int, *, persona: dict[str, Any] | None = None, intro: str = ""
) -> list[Any]:
    """``PREVIEW_N`` samples of ``bot_id`` (with ``persona`` when given, else its saved one),
    generated and never sent, as numbered lines after the ``intro`` text; an error Alert
    when generation failed (the LLM or the preview service refused)."""
    from piyasa.fleetadmin import preview as previews

    try:
        samples = await previews.preview(ctx.services, bot_id, n=PREVIEW_N, persona=persona)
    except Exception as exc:
        log.warning("preview of bot %s failed: %s", bot_id, type(exc).__name__)
        return [Alert("error", ctx.t("bots.preview.failed", error=type(exc).__name__))]
    ctx.audit_params.update(samples=len(samples))
    lines = [Text(ctx.t(intro))] if intro else []
    return lines + [Text(f"{i}. {getattr(s, 'text', None) or s}") for i, s in enumerate(samples, 1)]


@bots.action("preview", role="operator")
async def bots_preview(ctx: Context) -> View:
    """Sample messages with the draft persona (or the saved one), generated, never sent."""
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        return gone_view(ctx)
    try:
        bot = await svc.get_bot(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    draft = await get_draft(ctx, bot_id)
    view = View(title=ctx.t("bots.preview.title", name=svc.bot_name(bot)))
    key = "bots.preview.with_draft" if draft is not None else "bots.preview.with_saved"
    view.blocks.extend(await sample_blocks(ctx, bot_id, persona=draft, intro=key))
    ctx.audit_params.update(draft=draft is not None)
    p = card_params(ctx, bot_id)
    view.row(
        Button(ctx.t("bots.btn.persona"), "bots.persona", p),
        Button(ctx.t("bots.btn.to_card"), "bots.card", p),
    )
    return view
