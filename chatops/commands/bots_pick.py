"""/bots pickers: active hours and time zone (common choices as buttons, anything else
typed in the ``botedit`` dialog), speed profiles, and the chats a bot talks in."""

from __future__ import annotations

from typing import Any

from chatops.commands.bots import (
    HOURS_CHOICES,
    ZONE_CHOICES,
    as_int,
    bots,
    card_params,
    gone_view,
    problem_text,
    run_change,
)
from chatops.commands.registry import Param
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.fleetadmin import bot_changes as changes
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin.persona import PersonaError

# -- pickers: active hours, time zone, speed --------------------------------------------------------


async def picker(ctx: Context, title_key: str, rows: list[list[Button]]) -> View:
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        return gone_view(ctx)
    try:
        c = await svc.card(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = c.row.name
    view = View(title=ctx.t(title_key, name=c.row.name))
    view.blocks.append(
        Fields(
            [
                (ctx.t("bots.f.hours"), f"{c.active_hours} ({c.timezone})"),
                (
                    ctx.t("bots.f.speed"),
                    ctx.t(
                        "bots.speed.line",
                        profile=ctx.t(f"bots.speed.{c.speed_profile}"),
                        n=c.hourly_limit,
                    ),
                ),
            ]
        )
    )
    for row in rows:
        view.row(*row)
    view.row(Button(ctx.t("bots.btn.to_card"), "bots.card", card_params(ctx, bot_id)))
    return view


@bots.action("hours", role="operator")
async def bots_hours(ctx: Context) -> View:
    """Common windows and zones as buttons, anything else typed (validated)."""
    p = card_params(ctx, as_int(ctx.params.get("id")) or 0)
    t = ctx.t
    rows = [
        [Button(h, "bots.set_hours", {**p, "v": h}) for h in HOURS_CHOICES[i : i + 2]]
        for i in (0, 2)
    ]
    rows.append([Button(t("bots.btn.type_hours"), "bots.edit", {**p, "f": "active_hours"})])
    rows += [
        [Button(z, "bots.set_zone", {**p, "v": z}) for z in ZONE_CHOICES[i : i + 2]] for i in (0, 2)
    ]
    rows.append([Button(t("bots.btn.type_zone"), "bots.edit", {**p, "f": "timezone"})])
    return await picker(ctx, "bots.hours.title", rows)


async def set_picked(ctx: Context, change: Any, ok_key: str, shown: str = "") -> View:
    """Apply the picked value (param ``v``, already checked against the action's declared
    choices) with ``change(services, bot_id, value, actor=...)``; the card says ``ok_key``
    with the value (or its catalog label ``shown``, ``{v}`` filled in)."""
    value = str(ctx.params.get("v"))
    return await run_change(
        ctx,
        lambda b: change(ctx.services, b, value, actor=ctx.actor_label),
        ok_key,
        value=ctx.t(shown.format(v=value)) if shown else value,
    )


@bots.action("set_hours", role="operator", params=(Param("v", HOURS_CHOICES, required=True),))
async def bots_set_hours(ctx: Context) -> View:
    return await set_picked(ctx, changes.set_active_hours, "bots.ok.hours")


@bots.action("set_zone", role="operator", params=(Param("v", ZONE_CHOICES, required=True),))
async def bots_set_zone(ctx: Context) -> View:
    return await set_picked(ctx, changes.set_timezone, "bots.ok.zone")


@bots.action("speed", role="operator")
async def bots_speed(ctx: Context) -> View:
    p = card_params(ctx, as_int(ctx.params.get("id")) or 0)
    t = ctx.t
    rows = [
        [
            Button(
                t("bots.speed.line", profile=t(f"bots.speed.{s}"), n=n),
                "bots.set_speed",
                {**p, "v": s},
            )
            for s, n in svc.SPEED_PROFILES.items()
        ],
        [Button(t("bots.btn.type_limit"), "bots.edit", {**p, "f": "hourly_limit"})],
    ]
    return await picker(ctx, "bots.speed.title", rows)


@bots.action(
    "set_speed", role="operator", params=(Param("v", tuple(svc.SPEED_PROFILES), required=True),)
)
async def bots_set_speed(ctx: Context) -> View:
    return await set_picked(ctx, changes.set_speed, "bots.ok.speed", shown="bots.speed.{v}")


# -- chats --------------------------------------------------------------------------------------------


async def chats_view(ctx: Context, bot_id: int | None, alert: Alert | None = None) -> View:
    if bot_id is None:
        return gone_view(ctx)
    try:
        c = await svc.card(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    ctx.target = c.row.name
    view = View(title=ctx.t("bots.chats.title", name=c.row.name))
    if alert is not None:
        view.blocks.append(alert)
    if not c.chats:
        view.blocks.append(Text(ctx.t("bots.chats.none")))
    lines = []
    for ch in c.chats:
        mark = "✅" if ch.member else "▫️"
        line = f"{mark} {ch.title}"
        if ch.disabled_reason:
            line += f" — ⚠ {ch.disabled_reason}"
        lines.append(line)
        view.row(
            Button(
                ctx.t("bots.btn.leave_chat" if ch.member else "bots.btn.join_chat", chat=ch.title),
                "bots.chat_set",
                card_params(ctx, bot_id, chat=ch.id, on=not ch.member),
            )
        )
    if lines:
        view.blocks.append(Text("\n".join(lines)))
    view.row(Button(ctx.t("bots.btn.to_card"), "bots.card", card_params(ctx, bot_id)))
    return view


@bots.action("chats", role="operator")
async def bots_chats(ctx: Context) -> View:
    return await chats_view(ctx, as_int(ctx.params.get("id")))


@bots.action("chat_set", role="operator")
async def bots_chat_set(ctx: Context) -> View:
    bot_id, chat = as_int(ctx.params.get("id")), as_int(ctx.params.get("chat"))
    on = bool(ctx.params.get("on"))
    if bot_id is None or chat is None:
        return gone_view(ctx)
    try:
        done = await changes.set_member(ctx.services, bot_id, chat, on, actor=ctx.actor_label)
    except (svc.BotError, PersonaError) as exc:
        return await chats_view(ctx, bot_id, Alert("error", problem_text(ctx, exc)))
    ctx.audit_params.update(chat=chat, member=on)
    key = "bots.ok.joined" if on else "bots.ok.left"
    return await chats_view(
        ctx, bot_id, Alert("success", ctx.t(key, name=done.name, chat=done.field[5:]))
    )
