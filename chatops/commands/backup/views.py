"""The /backup screens: the overview (schedule, then the list, newest first, paginated)
and one backup's card. Data: :class:`piyasa.backup.service.BackupService`."""

from __future__ import annotations

import math

from chatops.commands.backup.common import (
    ago,
    kept_text,
    kind_text,
    marks,
    problem,
    rows_total,
    service,
    size_text,
    when_text,
)
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Pager, Table, Text, View
from piyasa.backup.service import BackupError, BackupInfo, ScheduleStatus

PAGE_SIZE = 5  # backups per page (a phone screen, with their buttons)
RULES = ("daily", "weekly", "monthly")
TABLE_ROWS_MAX = 30  # per-table row counts shown on a card (the rest summed)


def schedule_fields(ctx: Context, st: ScheduleStatus) -> Fields:
    """Next run per kind (in the schedule's timezone), last run and result, retention."""
    t = ctx.t
    items = []
    for rule in RULES:
        nxt = st.next_runs.get(rule)
        if nxt is None:
            value = t("backup.sched.off")
        else:
            value = t(
                "backup.sched.next",
                when=when_text(ctx, nxt, st.timezone),
                rule=st.times.get(rule, ""),
            )
        items.append((kind_text(ctx, rule), value))
    items.append((t("backup.f.timezone"), st.timezone))
    if st.last_run is None:
        items.append((t("backup.f.last_run"), t("backup.never")))
    else:
        result = t("backup.result.ok") if st.last_result == "ok" else (st.last_result or "—")
        items.append((t("backup.f.last_run"), f"{ago(ctx, st.last_run)} · {result}"))
    items.append(
        (
            t("backup.f.retention"),
            t(
                "backup.retention",
                daily=st.retention.get("daily", 0),
                weekly=st.retention.get("weekly", 0),
                monthly=st.retention.get("monthly", 0),
            ),
        )
    )
    return Fields(items)


def _row(ctx: Context, b: BackupInfo) -> tuple[str, ...]:
    return (
        kind_text(ctx, b.kind),
        ago(ctx, b.created_at),
        size_text(b.size_bytes),
        marks(ctx, b),
        kept_text(ctx, b),
    )


def _label(ctx: Context, b: BackupInfo) -> str:
    return f"📦 {kind_text(ctx, b.kind)} · {b.created_at:%d.%m %H:%M}"


async def overview(ctx: Context, page: int = 1, alert: Alert | None = None) -> View:
    """Schedule on top, then page ``page`` of the backups; buttons by role are not hidden
    here: the pipeline refuses a press below the action's role."""
    t = ctx.t
    svc = service(ctx)
    view = View(title=t("backup.title"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(schedule_fields(ctx, svc.schedule_status()))
    try:
        backups = await svc.list()
    except BackupError as exc:
        view.blocks.append(problem(ctx, exc))
        backups = []
    pages = max(1, math.ceil(len(backups) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = backups[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    if not backups:
        view.blocks.append(Text(t("backup.none")))
    else:
        view.blocks.append(Text(t("backup.count", n=len(backups))))
        headers = [t(f"backup.col.{c}") for c in ("kind", "age", "size", "marks", "kept")]
        view.blocks.append(Table(headers, [_row(ctx, b) for b in shown]))
        view.blocks.append(Text(t("backup.legend")))
    cards = [Button(_label(ctx, b), "backup.card", {"id": b.id}) for b in shown]
    for i in range(0, len(cards), 2):
        view.row(*cards[i : i + 2])
    view.row(
        Button(t("backup.btn.now"), "backup.now", {"kind": "manual"}, style="primary"),
        Button(t("backup.btn.test"), "backup.test", {}),
    )
    view.row(
        Button(t("backup.btn.schedule"), "backup.schedule", {}),
        Button(t("backup.btn.refresh"), "backup.page", {"page": page}),
    )
    view.pager = Pager("backup.page", page, pages)
    return view


async def card(ctx: Context, backup_id: str, alert: Alert | None = None) -> View:
    """One backup: its manifest, marks and the rules keeping it, with its actions."""
    t = ctx.t
    try:
        b = await service(ctx).get(backup_id)
    except BackupError as exc:
        return stale(ctx, exc)
    ctx.target = b.id
    view = View(title=t("backup.card.title", kind=kind_text(ctx, b.kind)))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(Fields(manifest_items(ctx, b)))
    view.blocks.append(
        Fields(
            [
                (t("backup.f.verified"), _at(ctx, b.verified_at)),
                (t("backup.f.test_restored"), _at(ctx, b.test_restored_at)),
                (t("backup.f.kept"), kept_text(ctx, b)),
                (t("backup.f.storage"), b.storage),
            ]
        )
    )
    view.blocks.append(rows_table(ctx, b))
    p = {"id": b.id}
    view.row(
        Button(t("backup.btn.verify"), "backup.verify", p),
        Button(t("backup.btn.test_one"), "backup.test", p),
        Button(t("backup.btn.download"), "backup.download", p),
    )
    view.row(
        Button(t("backup.btn.restore"), "restore", p, style="danger"),
        Button(t("backup.btn.delete"), "backup.delete", p, style="danger"),
    )
    view.row(Button(t("backup.btn.back"), "backup.page", {"page": 1}))
    return view


def manifest_items(ctx: Context, b: BackupInfo) -> list[tuple[str, str]]:
    t = ctx.t
    return [
        (t("backup.f.id"), b.id),
        (t("backup.f.created"), f"{when_text(ctx, b.created_at)} UTC · {ago(ctx, b.created_at)}"),
        (t("backup.f.kind"), kind_text(ctx, b.kind)),
        (t("backup.f.size"), size_text(b.size_bytes)),
        (t("backup.f.database"), b.db_kind),
        (t("backup.f.schema"), b.schema_revision or "—"),
        (t("backup.f.version"), b.piyasa_version or "—"),
        (t("backup.f.rows"), t("backup.rows", rows=rows_total(b), tables=len(b.rows))),
    ]


def rows_table(ctx: Context, b: BackupInfo) -> Table:
    """Rows per table from the manifest, the biggest first."""
    ordered = sorted(b.rows.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = [(name, str(n)) for name, n in ordered[:TABLE_ROWS_MAX]]
    rest = ordered[TABLE_ROWS_MAX:]
    if rest:
        shown.append((ctx.t("backup.more_tables", n=len(rest)), str(sum(n for _, n in rest))))
    return Table([ctx.t("backup.col.table"), ctx.t("backup.col.rows")], shown)


def _at(ctx: Context, when: object) -> str:
    if when is None:
        return "✗ " + ctx.t("backup.not_yet")
    return "✓ " + ago(ctx, when)  # type: ignore[arg-type]


def stale(ctx: Context, exc: BackupError) -> View:
    """A button for a backup that is gone (deleted, pruned) or an id that never was."""
    return View(
        blocks=[problem(ctx, exc)],
        buttons=[[Button(ctx.t("backup.btn.back"), "backup.page", {"page": 1})]],
    )
