"""Admin edits under /backup: the schedule (times, weekday / day of month, timezone,
retention) and Delete with a typed confirmation.

Both go through one typed-answer dialog bound to /backup (its ``input``, ``choose``,
``back``, ``cancel`` and ``ask`` actions are admin-only). A schedule value is applied as
soon as it is typed and valid: the service validates it
(:meth:`~piyasa.backup.service.BackupService.set_schedule`) and a refusal is shown under
the question, in the reader's language, with nothing changed. Delete asks for the word
``DELETE`` typed exactly; anything else deletes nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatops.commands.backup.command import backup
from chatops.commands.backup.common import kind_text, problem, problem_text, service, size_text
from chatops.commands.backup.views import overview, schedule_fields, stale
from chatops.commands.bots_edit import _SEP, ParamDialog  # errors that carry their words
from chatops.commands.registry import Param
from chatops.context import Context
from chatops.dialogs import STAY, Step
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.backup.service import BackupError

RULES = ("daily", "weekly", "monthly")
FIELDS = (*RULES, "timezone", "retention")
DELETE_WORD = "DELETE"
ZONES = ("UTC", "Europe/Istanbul")  # offered as buttons; any IANA name may be typed
EXAMPLES = {"daily": "03:00", "weekly": "sun 04:00", "monthly": "1 05:00"}


def _error(text: str) -> str:
    """A step error carrying its words (:class:`ParamDialog` shows it as is)."""
    return f"{_SEP}{json.dumps({'text': text})}"


# -- the schedule screen --------------------------------------------------------------------


def schedule_view(ctx: Context, alert: Alert | None = None) -> View:
    t = ctx.t
    st = service(ctx).schedule_status()
    view = View(title=t("backup.sched.title"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(schedule_fields(ctx, st))
    view.blocks.append(Text(t("backup.sched.how")))
    view.row(
        *[Button(kind_text(ctx, r), "backup.edit", {"field": r}) for r in RULES],
    )
    view.row(
        Button(t("backup.f.timezone"), "backup.edit", {"field": "timezone"}),
        Button(t("backup.f.retention"), "backup.edit", {"field": "retention"}),
    )
    view.row(Button(t("backup.btn.back"), "backup.page", {"page": 1}))
    return view


@backup.action("schedule", role="admin")
async def backup_schedule(ctx: Context) -> View:
    return schedule_view(ctx)


@backup.action("edit", role="admin", params=(Param("field", FIELDS, required=True),))
async def backup_edit(ctx: Context) -> View:
    return await editor.reset(ctx, {"field": str(ctx.params["field"])})


@backup.action("delete", role="admin")
async def backup_delete(ctx: Context) -> View:
    """Ask for the typed confirmation; nothing is deleted here."""
    backup_id = str(ctx.params.get("id") or "")[:200]
    try:
        info = await service(ctx).get(backup_id)
    except BackupError as exc:
        return stale(ctx, exc)
    ctx.target = info.id
    return await editor.reset(ctx, {"field": "delete", "id": info.id})


# -- the dialog --------------------------------------------------------------------------------


async def _ask(ctx: Context, data: dict[str, Any]) -> View:
    t = ctx.t
    field = data.get("field", "")
    if field == "delete":
        try:
            info = await service(ctx).get(str(data.get("id", "")))
        except BackupError as exc:
            return View(blocks=[problem(ctx, exc)])
        return View(
            title=t("backup.delete.title"),
            blocks=[
                Fields(
                    [
                        (t("backup.f.id"), info.id),
                        (t("backup.f.size"), size_text(info.size_bytes)),
                    ]
                ),
                Alert("warning", t("backup.delete.how", word=DELETE_WORD)),
            ],
        )
    st = service(ctx).schedule_status()
    view = View(title=t("backup.sched.edit_title", field=_label(ctx, field)))
    if field in RULES:
        current = st.times.get(field) or t("backup.sched.off")
        view.blocks.append(Text(t("backup.sched.current", value=current)))
        view.blocks.append(Text(t(f"backup.sched.hint.{field}", example=EXAMPLES[field])))
        view.row(editor.choice(ctx, t("backup.sched.turn_off"), "value", "off"))
    elif field == "timezone":
        view.blocks.append(Text(t("backup.sched.current", value=st.timezone)))
        view.blocks.append(Text(t("backup.sched.hint.timezone")))
        view.row(*[editor.choice(ctx, z, "value", z) for z in ZONES])
    else:
        r = st.retention
        current = f"{r.get('daily', 0)} {r.get('weekly', 0)} {r.get('monthly', 0)}"
        view.blocks.append(Text(t("backup.sched.current", value=current)))
        view.blocks.append(Text(t("backup.sched.hint.retention")))
    return view


def _label(ctx: Context, field: str) -> str:
    return kind_text(ctx, field) if field in RULES else ctx.t(f"backup.f.{field}")


async def _apply(ctx: Context, field: str, value: Any) -> str | None:
    """Store the schedule with ``field`` changed; None when stored, else the step error."""
    svc = service(ctx)
    st = svc.schedule_status()
    times: dict[str, str | None] = {r: st.times.get(r) for r in RULES}
    timezone, retention = st.timezone, dict(st.retention)
    if field in RULES:
        times[field] = value
    elif field == "timezone":
        timezone = value
    else:
        retention = value
    try:
        await svc.set_schedule(
            daily=times["daily"],
            weekly=times["weekly"],
            monthly=times["monthly"],
            timezone=timezone,
            retention=retention,
        )
    except BackupError as exc:
        return _error(problem_text(ctx, exc))
    ctx.audit_params.update(field=field, value=str(value))
    return None


def _retention(text: str) -> dict[str, int] | None:
    """ "7 4 12" / "7/4/12" / "7, 4, 12" → {"daily": 7, "weekly": 4, "monthly": 12}."""
    parts = [p for p in re.split(r"[\s/,;]+", text.strip()) if p]
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 4 for p in parts):
        return None
    return dict(zip(RULES, (int(p) for p in parts), strict=True))


async def _on_text(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    field = data.get("field", "")
    text = text.strip()
    if field == "delete":
        if text != DELETE_WORD:
            ctx.audit_params["outcome"] = "typed_wrong"
            return _error(ctx.t("backup.delete.typed_wrong", word=DELETE_WORD))
        try:
            await service(ctx).delete(str(data.get("id", "")))
        except BackupError as exc:
            return _error(problem_text(ctx, exc))
        ctx.target = str(data.get("id", ""))
        ctx.audit_params["outcome"] = "deleted"
        return None
    if field == "retention":
        value = _retention(text)
        if value is None:
            return _error(ctx.t("backup.sched.retention_format"))
        return await _apply(ctx, field, value)
    if field in RULES and text.lower() in ("off", "kapalı", "kapali", "-"):
        return await _apply(ctx, field, None)
    if field in FIELDS:
        return await _apply(ctx, field, text)
    return "dialog.gone"


async def _on_choice(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    field = data.get("field", "")
    if field in RULES and value == "off":
        return await _apply(ctx, field, None)
    if field == "timezone" and value in ZONES:
        return await _apply(ctx, field, value)
    return STAY


async def _finish(ctx: Context, data: dict[str, Any]) -> View:
    field = data.get("field", "")
    if field == "delete":
        text = ctx.t("backup.delete.ok", id=data.get("id", ""))
        return await overview(ctx, alert=Alert("success", text))
    return schedule_view(
        ctx, Alert("success", ctx.t("backup.sched.saved", field=_label(ctx, field)))
    )


editor = ParamDialog(
    "backup",
    steps=[Step("value", _ask, on_text=_on_text, on_choice=_on_choice)],
    finish=_finish,
)
editor.bind(backup, role="admin")
