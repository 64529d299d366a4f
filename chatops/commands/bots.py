"""/bots: the fleet's bots from chat — the list with live status, the card, enable and
disable. The pickers (active hours, time zone, speed, chats) are in
:mod:`chatops.commands.bots_pick`.

Typed edits (rename, persona fields, free active hours, time zone, hourly limit) are the
``botedit`` dialog (:mod:`chatops.commands.bots_edit`); adding a bot, rotating its token
and removing it are in :mod:`chatops.commands.bots_add`. Data and every rule come from
:mod:`piyasa.fleetadmin.bots` and :mod:`piyasa.fleetadmin.bot_changes`. The list's whole
state (search, filter, page) travels in the server-side button params, so a stale button
can only show fresh data. Viewers read; operators change; admins rotate tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatops import timefmt
from chatops.commands import fleet_lists as lists
from chatops.commands.fleet_lists import as_int, back_state
from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Pager, Table, Text, View
from piyasa.fleetadmin import bot_changes as changes
from piyasa.fleetadmin import bots as svc
from piyasa.fleetadmin.persona import PERSONA_FIELDS, PersonaError, show_field

OPERATOR, ADMIN = 2, 3
HOURS_CHOICES = ("00:00-24:00", "09:00-18:00", "08:00-23:00", "07:00-10:00,17:00-22:00")
ZONE_CHOICES = ("Europe/Istanbul", "UTC", "Europe/London", "America/New_York")
ROW = 2


def problem_text(ctx: Context, exc: Exception) -> str:
    """A service refusal in the caller's language (noted in the audit row)."""
    if isinstance(exc, PersonaError):
        ctx.audit_params["outcome"] = exc.catalog_key
        params = dict(exc.params)
        params["field"] = (
            ctx.t(f"bots.field.{exc.field}") if exc.field in PERSONA_FIELDS else exc.field
        )
        return ctx.t(exc.catalog_key, **params)
    if isinstance(exc, svc.BotError):
        ctx.audit_params["outcome"] = exc.key
        return ctx.t(exc.key, **exc.params)
    raise exc


def prefix(ctx: Context) -> str:
    return "/piyasa " if ctx.surface == "slack" else "/"


def ago(ctx: Context, when: datetime | None) -> str:
    if when is None:
        return ctx.t("bots.never")
    return timefmt.ago(ctx.lang, when, datetime.now(UTC), just_now=ctx.t("bots.just_now"))


def status_text(ctx: Context, row: svc.BotRow) -> str:
    if row.enabled:
        return ctx.t("bots.status.on")
    return ctx.t("bots.status.system" if row.disabled_reason else "bots.status.off")


def now_text(ctx: Context, row: svc.BotRow) -> str:
    if row.active_now is None:
        return ctx.t("bots.now.bad_schedule")
    return ctx.t("bots.now.in" if row.active_now else "bots.now.out")


# -- the list ---------------------------------------------------------------------------------


def list_state(ctx: Context) -> dict[str, Any]:
    return lists.list_state(ctx, svc.STATUSES)


async def list_view(ctx: Context, state: dict[str, Any], alert: Alert | None = None) -> View:
    page = await svc.list_bots(ctx.services, search=state["q"], status=state["s"], page=state["p"])
    state = {**state, "p": page.page}
    t = ctx.t
    view = View(title=t("bots.title", n=page.total))
    if alert is not None:
        view.blocks.append(alert)
    shown = [t("bots.filter.search", q=state["q"])] if state["q"] else []
    if state["s"]:
        shown.append(t(f"bots.filter.{state['s']}"))
    if shown:
        view.blocks.append(Text(t("bots.filtered", filters=" · ".join(shown))))
    if not page.rows:
        view.blocks.append(Text(t("bots.empty")))
    else:
        headers = [t(f"bots.col.{c}") for c in ("bot", "status", "now", "last", "today", "err")]
        headers.append(t("bots.col.breaker"))
        view.blocks.append(
            Table(
                headers,
                [
                    (
                        f"@{r.username}" if r.username else r.name,
                        status_text(ctx, r),
                        now_text(ctx, r),
                        ago(ctx, r.last_message_at),
                        str(r.messages_today),
                        f"{r.errors_1h}/{r.r429_1h}",
                        t(f"bots.breaker.{r.breaker}") if r.breaker else "—",
                    )
                    for r in page.rows
                ],
            )
        )
        why = [
            t(
                "bots.system_reason",
                bot=f"@{r.username}" if r.username else r.name,
                why=r.disabled_reason,
            )
            for r in page.rows
            if not r.enabled and r.disabled_reason
        ]
        if why:
            view.blocks.append(Alert("warning", "\n".join(why)))
    for cards in lists.card_rows(page.rows, "🤖", "bots.card", state, ROW):
        view.row(*cards)
    label = t(f"bots.filter.{state['s']}") if state["s"] else t("bots.all")
    nxt = lists.next_status(svc.STATUSES, state["s"])
    row = [Button(t("bots.btn.filter", v=label), "bots.list", {**state, "s": nxt, "p": 1})]
    if state["q"]:
        row.append(Button(t("bots.btn.clear_search"), "bots.list", {**state, "q": "", "p": 1}))
    view.row(*row)
    if ctx.level >= OPERATOR:
        view.row(Button(t("bots.btn.add"), "addbot"))
    view.pager = Pager("bots.list", page.page, page.pages, dict(state))
    return view


@command("bots", role="viewer", order=40, args=(Arg("search", rest=True, max_len=64),))
async def bots(ctx: Context) -> View:
    """The fleet's bots; ``/bots TEXT`` searches names and usernames."""
    return await list_view(ctx, list_state(ctx))


@bots.action("list")
async def bots_list(ctx: Context) -> View:
    return await list_view(ctx, list_state(ctx))


# -- the card -----------------------------------------------------------------------------------


def card_params(ctx: Context, bot_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": bot_id, "back": back_state(ctx), **extra}


def gone_view(ctx: Context, text: str | None = None) -> View:
    view = View(blocks=[Alert("error", text or ctx.t("bots.err.no_bot", ref="?"))])
    view.row(Button(ctx.t("bots.btn.to_list"), "bots.list", {}))
    return view


async def card_view(ctx: Context, bot_id: int | None, alert: Alert | None = None) -> View:
    if bot_id is None:
        return gone_view(ctx)
    try:
        c = await svc.card(ctx.services, bot_id)
    except svc.BotError as exc:
        return gone_view(ctx, problem_text(ctx, exc))
    t, r = ctx.t, c.row
    ctx.target = f"@{r.username}" if r.username else r.name
    view = View(title=t("bots.card.title", name=r.name, username=r.username or "—"))
    if alert is not None:
        view.blocks.append(alert)
    status = status_text(ctx, r)
    if r.disabled_reason:
        status += f": {r.disabled_reason}"
    member = [ch.title for ch in c.chats if ch.member] or [t("bots.none")]
    view.blocks.append(
        Fields(
            [
                (t("bots.f.status"), status),
                (t("bots.f.hours"), f"{c.active_hours} ({c.timezone}) · {now_text(ctx, r)}"),
                (
                    t("bots.f.speed"),
                    t(
                        "bots.speed.line",
                        profile=t(f"bots.speed.{c.speed_profile}"),
                        n=c.hourly_limit,
                    ),
                ),
                (t("bots.f.last"), ago(ctx, r.last_message_at)),
                (t("bots.f.today"), str(r.messages_today)),
                (t("bots.f.errors"), t("bots.errors.line", errors=r.errors_1h, r429=r.r429_1h)),
                (t("bots.f.breaker"), t(f"bots.breaker.{r.breaker}") if r.breaker else "—"),
                (t("bots.f.token"), c.token_hint),
                (t("bots.f.chats"), ", ".join(member)),
            ]
        )
    )
    persona = [
        (t(f"bots.field.{f}"), show_field(f, c.persona.get(f)) or "—") for f in PERSONA_FIELDS
    ]
    view.blocks.append(Text(t("bots.persona.heading")))
    view.blocks.append(Fields(persona))
    if ctx.level >= OPERATOR:
        p = card_params(ctx, c.row.id)
        toggle = (
            Button(t("bots.btn.disable"), "bots.disable", p, style="danger")
            if r.enabled
            else Button(t("bots.btn.enable"), "bots.enable", p, style="primary")
        )
        view.row(toggle, Button(t("bots.btn.rename"), "bots.edit", {**p, "f": "name"}))
        view.row(
            Button(t("bots.btn.persona"), "bots.persona", p),
            Button(t("bots.btn.preview"), "bots.preview", p),
        )
        view.row(
            Button(t("bots.btn.hours"), "bots.hours", p),
            Button(t("bots.btn.speed"), "bots.speed", p),
        )
        view.row(Button(t("bots.btn.chats"), "bots.chats", p))
        extra = [Button(t("bots.btn.remove"), "bots.remove", p, style="danger")]
        if ctx.level >= ADMIN:
            extra.insert(0, Button(t("bots.btn.rotate"), "bots.rotate", p))
        view.row(*extra)
    view.row(Button(t("bots.btn.to_list"), "bots.list", back_state(ctx)))
    return view


@bots.action("card")
async def bots_card(ctx: Context) -> View:
    return await card_view(ctx, as_int(ctx.params.get("id")))


async def run_change(ctx: Context, change: Any, ok_key: str, **kw: Any) -> View:
    """Run a change; the refreshed card with the outcome (or the refusal) on top."""
    bot_id = as_int(ctx.params.get("id"))
    if bot_id is None:
        return gone_view(ctx)
    try:
        done = await change(bot_id)
    except (svc.BotError, PersonaError) as exc:
        text = problem_text(ctx, exc)
        if getattr(exc, "key", "") == "bots.err.no_bot":
            return gone_view(ctx, text)
        return await card_view(ctx, bot_id, Alert("error", text))
    ctx.audit_params.update(field=done.field, old=_plain(done.old), new=_plain(done.new))
    return await card_view(ctx, bot_id, Alert("success", ctx.t(ok_key, name=done.name, **kw)))


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


@bots.action("enable", role="operator")
async def bots_enable(ctx: Context) -> View:
    return await run_change(
        ctx,
        lambda b: changes.set_enabled(ctx.services, b, True, actor=ctx.actor_label),
        "bots.ok.enabled",
    )


async def _disable_text(ctx: Context) -> str:
    try:
        bot = await svc.get_bot(ctx.services, as_int(ctx.params.get("id")) or 0)
    except svc.BotError:
        return ctx.t("confirm.generic")
    return ctx.t("bots.confirm.disable", name=svc.bot_name(bot))


@bots.action("disable", role="operator", confirm=True, confirm_text=_disable_text)
async def bots_disable(ctx: Context) -> View:
    return await run_change(
        ctx,
        lambda b: changes.set_enabled(ctx.services, b, False, actor=ctx.actor_label),
        "bots.ok.disabled",
    )
