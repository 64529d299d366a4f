"""/users: the list (search, filters, sort, pages, selection)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatops.commands.registry import Arg, command
from chatops.commands.users.common import ROLE_CYCLE, ROW, STATUS_CYCLE, _list_state, _next, ago
from chatops.context import Context
from chatops.views import Alert, Button, Pager, Table, Text, View
from piyasa.admin import users as svc


async def list_view(ctx: Context, state: dict[str, Any], alert: Alert | None = None) -> View:
    page = await svc.query_users(
        ctx.services,
        search=state["q"],
        role=state["r"],
        status=state["s"],
        sort=state["o"],
        page=state["p"],
        per_page=state["n"],
    )
    state = {**state, "p": page.page}
    t = ctx.t
    shown = [t("users.filter.search", q=state["q"])] if state["q"] else []
    if state["r"]:
        shown.append(t("users.filter.role", role=t(f"role.{state['r']}")))
    if state["s"]:
        shown.append(t(f"users.status.{state['s']}"))
    view = View(title=t("users.title", n=page.total))
    if alert is not None:
        view.blocks.append(alert)
    if shown:
        view.blocks.append(Text(t("users.filtered", filters=" · ".join(shown))))
    if not page.rows:
        view.blocks.append(Text(t("users.empty")))
    else:
        now = datetime.now(UTC)
        view.blocks.append(
            Table(
                [
                    t("users.col.user"),
                    t("users.col.role"),
                    t("users.col.status"),
                    t("users.col.created"),
                    t("users.col.last_seen"),
                ],
                [
                    (
                        r.username,
                        t(f"role.{r.role}"),
                        t(f"users.status.{r.status}") + (" 🔐" if r.mfa else ""),
                        ago(ctx, r.created_at, now),
                        ago(ctx, r.last_seen_at, now),
                    )
                    for r in page.rows
                ],
            )
        )
    selected = set(state["sel"])
    user_buttons = []
    for r in page.rows:
        if state["m"]:
            sel = sorted(selected ^ {r.id})
            mark = "☑" if r.id in selected else "☐"
            user_buttons.append(Button(f"{mark} {r.username}", "users.list", {**state, "sel": sel}))
        else:
            user_buttons.append(
                Button(f"👤 {r.username}", "users.card", {"id": r.id, "back": state})
            )
    for i in range(0, len(user_buttons), ROW):
        view.row(*user_buttons[i : i + ROW])
    role_label = t(f"role.{state['r']}") if state["r"] else t("users.all")
    status_label = t(f"users.status.{state['s']}") if state["s"] else t("users.all")
    view.row(
        Button(
            t("users.btn.role_filter", v=role_label),
            "users.list",
            {**state, "r": _next(ROLE_CYCLE, state["r"]), "p": 1},
        ),
        Button(
            t("users.btn.status_filter", v=status_label),
            "users.list",
            {**state, "s": _next(STATUS_CYCLE, state["s"]), "p": 1},
        ),
    )
    view.row(
        Button(
            t("users.btn.sort", v=t(f"users.sort.{state['o']}")),
            "users.list",
            {**state, "o": _next(svc.SORTS, state["o"]), "p": 1},
        ),
        Button(
            t("users.btn.per_page", v=state["n"]),
            "users.list",
            {**state, "n": _next(svc.PAGE_SIZES, state["n"]), "p": 1},
        ),
    )
    if state["q"]:
        view.row(Button(t("users.btn.clear_search"), "users.list", {**state, "q": "", "p": 1}))
    if state["m"]:
        sel = state["sel"]
        view.blocks.append(Text(t("users.selected", n=len(sel))))
        if sel:
            view.row(
                Button(t("users.btn.lock"), "users.bulk", {"op": "lock", "sel": sel}),
                Button(t("users.btn.unlock"), "users.bulk", {"op": "unlock", "sel": sel}),
                Button(t("users.btn.delete"), "users.bulk_delete", {"sel": sel}, style="danger"),
            )
            view.row(
                Button(
                    t("users.btn.to_role", role=t("role.viewer")),
                    "users.bulk",
                    {"op": "role", "role": "viewer", "sel": sel},
                ),
                Button(
                    t("users.btn.to_role", role=t("role.operator")),
                    "users.bulk",
                    {"op": "role", "role": "operator", "sel": sel},
                ),
                Button(
                    t("users.btn.to_role", role=t("role.admin")),
                    "users.bulk_admin",
                    {"sel": sel},
                ),
            )
        view.row(Button(t("users.btn.select_done"), "users.list", {**state, "m": False, "sel": []}))
    else:
        view.row(
            Button(t("users.btn.select"), "users.list", {**state, "m": True}),
            Button(t("users.btn.add"), "adduser"),
        )
    view.pager = Pager("users.list", page.page, page.pages, {k: v for k, v in state.items()})
    return view


@command("users", role="admin", order=30, args=(Arg("search", rest=True, max_len=64),))
async def users(ctx: Context) -> View:
    """The list; ``/users TEXT`` searches usernames."""
    return await list_view(ctx, _list_state(ctx))


@users.action("list")
async def users_list(ctx: Context) -> View:
    return await list_view(ctx, _list_state(ctx))


# -- the card -------------------------------------------------------------------------------
