"""/audit: the audit log in chat, filtered by user, action and period, page by page, and
exported as a CSV document (sent privately: it is the whole history of admin actions).

A settings change on the page (a row whose target is a setting and whose params carry the
version it made: /settings, an applied /diagnose fix, the shell) that the settings service
can still undo gets an [Undo] — the service's own (``settings.undo``), bound to that change,
so it refuses once the setting has changed again — for roles that may make the change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Button, File, Pager, Table, Text, View
from piyasa.admin import audit_search
from piyasa.admin.audit_search import PERIODS, AuditFilter
from piyasa.fleetadmin import settings as settings_svc

PER_PAGE = 10
PERIOD_CYCLE = tuple(PERIODS)


def _ago(ctx: Context, when: datetime, now: datetime) -> str:
    from chatops.commands.users import ago

    return ago(ctx, when, now)


async def audit_view(ctx: Context, f: AuditFilter, page: int) -> View:
    result = await audit_search.search(ctx.services, f, page, PER_PAGE)
    t = ctx.t
    now = datetime.now(UTC)
    shown = [t(f"audit.period.{f.period}")]
    if f.user:
        shown.append(t("audit.filter.user", user=f.user))
    if f.action:
        shown.append(t("audit.filter.action", action=f.action))
    view = View(title=t("audit.title", n=result.total), blocks=[Text(" · ".join(shown))])
    if result.rows:
        view.blocks.append(
            Table(
                [
                    t("audit.col.when"),
                    t("audit.col.actor"),
                    t("audit.col.action"),
                    t("audit.col.target"),
                    t("audit.col.result"),
                ],
                [
                    (_ago(ctx, r.at, now), r.actor, r.action, r.target or "", r.result)
                    for r in result.rows
                ],
            )
        )
    else:
        view.blocks.append(Text(t("audit.empty")))
    params = f.as_params()
    nxt = PERIOD_CYCLE[(PERIOD_CYCLE.index(f.period) + 1) % len(PERIOD_CYCLE)]
    view.row(
        Button(
            t("audit.btn.period", v=t(f"audit.period.{f.period}")),
            "audit.page",
            {**params, "period": nxt, "page": 1},
        ),
        Button(t("audit.btn.csv"), "audit.csv", params),
    )
    if f.user or f.action:
        view.row(Button(t("audit.btn.clear"), "audit.page", {"period": f.period, "page": 1}))
    view.pager = Pager("audit.page", result.page, result.pages, params)
    for b in await _undo_buttons(ctx, result.rows):
        view.row(b)
    return view


async def _undo_buttons(ctx: Context, rows: list[Any]) -> list[Button]:
    """[Undo] of each settings change on the page that can still be undone (one per
    change, though a chat change has two rows: the command's and the service's)."""
    from chatops.commands.settings import shown, undo_of

    seen = {
        (str(r.target), v)
        for r in rows
        if r.result == "ok"
        and r.target in settings_svc.SETTING_SPECS
        and isinstance(v := (r.params or {}).get("version"), int)
    }
    if not seen:
        return []
    out = []
    for c in await settings_svc.undoable(ctx.services, seen):
        label = ctx.t("fix.audit.undo", key=c.key, old=shown(ctx, c.old), new=shown(ctx, c.new))
        button = undo_of(ctx, c, label)
        if button is not None:
            out.append(button)
    return out


@command("audit", role="admin", order=40, args=(Arg("filters", rest=True),))
async def audit(ctx: Context) -> View:
    """``/audit [user=NAME] [action=PREFIX] [period=1h|24h|7d|30d|all]``"""
    return await audit_view(ctx, audit_search.parse_filters(ctx.args.get("filters", "")), 1)


@audit.action("page")
async def audit_page(ctx: Context) -> View:
    page = ctx.params.get("page", 1)
    return await audit_view(
        ctx, AuditFilter.from_params(ctx.params), int(page) if str(page).isdigit() else 1
    )


@audit.action("csv")
async def audit_csv(ctx: Context) -> View:
    f = AuditFilter.from_params(ctx.params)
    data = await audit_search.export_csv(ctx.services, f)
    rows = max(data.count(b"\n") - 1, 0)
    ctx.audit_params["rows"] = rows
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return View(
        blocks=[Text(ctx.t("audit.csv.done", n=rows))],
        files=[
            File(
                f"piyasa-audit-{stamp}.csv",
                data,
                caption=ctx.t("audit.csv.caption", n=rows),
                mime="text/csv",
            )
        ],
        private=True,
        edit=False,
    )
