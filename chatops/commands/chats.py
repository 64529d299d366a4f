"""The fleet's chats from chat: /chats (list, card, enable/disable, topics, title, budget,
add, remove). Viewers read; operators change.

Data and rules live in :mod:`piyasa.fleetadmin.chats` (and ``chat_add`` for adding, which
asks Telegram); this module only renders. The list's state travels in the server-side
button params, so each press re-renders from the database and a stale button shows fresh
data. Typed values (a title, custom topics, a budget, the chat to add) go through a
one-step dialog: a modal on Slack, a ForceReply prompt in a Telegram group.
"""

from __future__ import annotations

from typing import Any

from chatops import dialogs
from chatops.commands import fleet_lists as lists
from chatops.commands.fleet_lists import as_int, back_state
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Pager, Table, Text, View
from piyasa.fleetadmin import chat_changes as changes
from piyasa.fleetadmin import chats as svc
from piyasa.fleetadmin.chat_add import add_chat

FIELDS = ("title", "topics", "budget", "add")


def _actor(ctx: Context) -> str:
    return ctx.actor_label


def problem(ctx: Context, exc: svc.ChatError) -> Alert:
    """The service's refusal in the caller's language; noted in the audit row."""
    ctx.audit_params["outcome"] = exc.key
    return Alert("error", ctx.t(exc.key, **exc.params))


def _topics(ctx: Context, topics: list[str]) -> str:
    return ", ".join(ctx.t(f"chats.topic.{t}") if t in svc.TOPICS else t for t in topics) or "—"


def _budget(ctx: Context, budget: int | None) -> str:
    return ctx.t("chats.budget.none") if budget is None else ctx.t("chats.budget.n", n=budget)


# -- the list -------------------------------------------------------------------------------


def _state(ctx: Context) -> dict[str, Any]:
    n = ctx.params.get("n")
    return lists.list_state(ctx, svc.STATUSES, n=n if n in svc.PAGE_SIZES else svc.PAGE_SIZES[0])


async def list_view(ctx: Context, state: dict[str, Any], alert: Alert | None = None) -> View:
    page = await svc.query_chats(
        ctx.services, search=state["q"], status=state["s"], page=state["p"], per_page=state["n"]
    )
    state = {**state, "p": page.page}
    t = ctx.t
    view = View(title=t("chats.title", n=page.total))
    if alert is not None:
        view.blocks.append(alert)
    if state["q"]:
        view.blocks.append(Text(t("chats.filtered", q=state["q"])))
    if not page.rows:
        view.blocks.append(Text(t("chats.empty")))
    else:
        view.blocks.append(
            Table(
                [
                    t("chats.col.chat"),
                    t("chats.col.state"),
                    t("chats.col.bots"),
                    t("chats.col.today"),
                ],
                [
                    (
                        r.name,
                        t("chats.on" if r.enabled else "chats.off"),
                        str(r.bots),
                        str(r.today) if r.msg_budget is None else f"{r.today} ({r.msg_budget}/h)",
                    )
                    for r in page.rows
                ],
            )
        )
    for cards in lists.card_rows(page.rows, "💬", "chats.card", state):
        view.row(*cards)
    nxt = lists.next_status(svc.STATUSES, state["s"])
    label = t(f"chats.status.{state['s']}") if state["s"] else t("chats.all")
    view.row(
        Button(t("chats.btn.status", v=label), "chats.list", {**state, "s": nxt, "p": 1}),
        Button(t("chats.btn.add"), "chats.edit", {"field": "add"}),
    )
    view.pager = Pager("chats.list", page.page, page.pages, dict(state))
    return view


@command("chats", role="viewer", order=41, args=(Arg("search", rest=True, max_len=64),))
async def chats(ctx: Context) -> View:
    """The list; ``/chats TEXT`` searches titles (or an exact chat id)."""
    return await list_view(ctx, _state(ctx))


@chats.action("list")
async def chats_list(ctx: Context) -> View:
    return await list_view(ctx, _state(ctx))


# -- the card -------------------------------------------------------------------------------


async def card_view(ctx: Context, ref: Any, alert: Alert | None = None) -> View:
    t = ctx.t
    try:
        if ref is None:
            raise svc.ChatError("chats.err.no_chat", "no chat", ref="?")
        c = await svc.card(ctx.services, ref)
    except svc.ChatError as exc:
        return View(blocks=[problem(ctx, exc)])
    row = c.chat
    ctx.target = f"{row.name} ({row.telegram_id})"
    view = View(title=t("chats.card.title", name=row.name))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(
        Fields(
            [
                (t("chats.f.id"), str(row.telegram_id)),
                (t("chats.f.kind"), row.kind),
                (t("chats.f.state"), t("chats.on" if row.enabled else "chats.off")),
                (t("chats.f.topics"), _topics(ctx, row.topics)),
                (t("chats.f.budget"), _budget(ctx, row.msg_budget)),
                (t("chats.f.last_hour"), str(c.last_hour)),
                (t("chats.f.pending"), str(c.pending)),
            ]
        )
    )
    if c.bots:
        view.blocks.append(
            Table(
                [
                    t("chats.col.bot"),
                    t("chats.col.today"),
                    t("chats.col.day"),
                    t("chats.col.state"),
                ],
                [
                    (
                        b.name,
                        str(b.today),
                        str(b.last_24h),
                        t("chats.on") if b.enabled else (b.disabled_reason or t("chats.off")),
                    )
                    for b in c.bots[:30]
                ],
            )
        )
    else:
        view.blocks.append(Text(t("chats.no_bots")))
    p = {"id": row.id, "back": back_state(ctx)}
    view.row(
        Button(t("chats.btn.disable"), "chats.enable", {**p, "on": False}, style="danger")
        if row.enabled
        else Button(t("chats.btn.enable"), "chats.enable", {**p, "on": True}, style="primary")
    )
    view.row(
        *[
            Button(
                ("✅ " if topic in row.topics else "▫️ ") + t(f"chats.topic.{topic}"),
                "chats.topic",
                {**p, "t": topic},
            )
            for topic in svc.TOPICS
        ]
    )
    view.row(
        Button(t("chats.btn.title"), "chats.edit", {**p, "field": "title"}),
        Button(t("chats.btn.topics"), "chats.edit", {**p, "field": "topics"}),
        Button(t("chats.btn.budget"), "chats.edit", {**p, "field": "budget"}),
    )
    view.row(
        Button(t("chats.btn.remove"), "chats.remove", p, style="danger"),
        Button(t("chats.btn.back"), "chats.list", back_state(ctx)),
    )
    return view


@chats.action("card")
async def chats_card(ctx: Context) -> View:
    return await card_view(ctx, as_int(ctx.params.get("id")))


async def _apply(ctx: Context, change: Any, ok_key: str) -> View:
    ref = as_int(ctx.params.get("id"))
    if ref is None:
        return await card_view(ctx, None)
    try:
        await change(ref)
    except svc.ChatError as exc:
        return await card_view(ctx, ref, problem(ctx, exc))
    return await card_view(ctx, ref, Alert("success", ctx.t(ok_key)))


@chats.action("enable", role="operator")
async def chats_enable(ctx: Context) -> View:
    on = bool(ctx.params.get("on", True))
    return await _apply(
        ctx,
        lambda ref: changes.set_enabled(ctx.services, ref, on, actor=_actor(ctx)),
        "chats.ok.enabled" if on else "chats.ok.disabled",
    )


@chats.action("topic", role="operator", params=(Param("t", svc.TOPICS, required=True),))
async def chats_topic(ctx: Context) -> View:
    topic = str(ctx.params["t"])
    return await _apply(
        ctx,
        lambda ref: changes.toggle_topic(ctx.services, ref, topic, actor=_actor(ctx)),
        "chats.ok.topics",
    )


async def _remove_text(ctx: Context) -> str:
    ref = as_int(ctx.params.get("id"))
    try:
        name = (await svc.card(ctx.services, ref)).chat.name if ref is not None else "?"
    except svc.ChatError:
        name = "?"
    return ctx.t("chats.confirm.remove", name=name)


@chats.action("remove", role="operator", confirm=True, confirm_text=_remove_text)
async def chats_remove(ctx: Context) -> View:
    ref = as_int(ctx.params.get("id"))
    try:
        if ref is None:
            raise svc.ChatError("chats.err.no_chat", "no chat", ref="?")
        name = await changes.remove_chat(ctx.services, ref, actor=_actor(ctx))
    except svc.ChatError as exc:
        return (
            await card_view(ctx, ref, problem(ctx, exc))
            if ref
            else View(blocks=[problem(ctx, exc)])
        )
    ctx.target = name
    return await list_view(ctx, _state(ctx), Alert("success", ctx.t("chats.ok.removed", name=name)))


# -- typed values: one-step dialog ----------------------------------------------------------


async def _ask_value(ctx: Context, data: dict[str, Any]) -> View:
    field = data.get("field", "title")
    blocks: list[Any] = [Text(ctx.t(f"chats.ask.{field}"))]
    if data.get("current"):
        blocks.append(Text(ctx.t("chats.ask.current", value=data["current"])))
    return View(title=ctx.t(f"chats.ask.{field}.title"), blocks=blocks)


async def _on_value(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    field, ref, actor = data.get("field"), data.get("id"), _actor(ctx)
    try:
        if field == "add":
            row = await add_chat(ctx.services, text, actor=actor)
            data["id"] = row.id
        elif field == "title":
            await changes.set_title(ctx.services, ref, text, actor=actor)
        elif field == "topics":
            await changes.set_topics(ctx.services, ref, text, actor=actor)
        elif field == "budget":
            await changes.set_budget(ctx.services, ref, text, actor=actor)
        else:
            return "dialog.gone"
    except svc.ChatError as exc:
        ctx.audit_params["outcome"] = exc.key
        data["error_params"] = exc.params
        return exc.key
    return None


async def _finish(ctx: Context, data: dict[str, Any]) -> View:
    key = "chats.ok.added" if data.get("field") == "add" else "chats.ok.saved"
    return await card_view(ctx, data.get("id"), Alert("success", ctx.t(key)))


editor = dialogs.Dialog(
    "chats", steps=[dialogs.Step("value", _ask_value, on_text=_on_value)], finish=_finish
)
editor.bind(chats, role="operator")


@chats.action("edit", role="operator", params=(Param("field", FIELDS, required=True),))
async def chats_edit(ctx: Context) -> View:
    field = str(ctx.params["field"])
    data: dict[str, Any] = {"field": field}
    if field != "add":
        ref = as_int(ctx.params.get("id"))
        try:
            if ref is None:
                raise svc.ChatError("chats.err.no_chat", "no chat", ref="?")
            row = (await svc.card(ctx.services, ref)).chat
        except svc.ChatError as exc:
            return View(blocks=[problem(ctx, exc)])
        data["id"] = row.id
        data["current"] = {
            "title": row.name,
            "topics": ", ".join(row.topics),
            "budget": str(row.msg_budget or "off"),
        }[field]
    return await editor.reset(ctx, data)
