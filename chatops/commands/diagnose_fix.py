"""A diagnosis's automatic settings fix: previewed, confirmed, checked against what the
report saw, audited, undoable.

The [Apply fix] button (:func:`chatops.commands.kb._lower_scale`) carries in its
server-side params what the report saw: the setting ``key``, its value ``was`` and
version ``ver``, the recommended value ``v`` and, from /diagnose, the issue's entry ``e``.
``diagnose.fix`` shows ``was → v`` with [Apply]; ``diagnose.fix_apply`` changes the
setting through :func:`piyasa.fleetadmin.settings.change_setting` (versioned, audited,
applied to the running fleet) with ``expected_version=ver``. A fix whose preconditions
changed since the report (the setting is no longer ``was`` at ``ver``, or the issue ``e``
is no longer found) refuses, changes nothing and shows a fresh diagnosis. After Apply the
confirmation offers the settings service's own Undo (``settings.undo``, bound to the
change id, so it refuses once the setting changed again).
"""

from __future__ import annotations

from typing import Any

from chatops.commands import diagnose as diag
from chatops.commands.kb import ENTRY_IDS, FIX_REASON
from chatops.commands.registry import Param
from chatops.commands.settings import OPERATOR_KEYS, shown, undo_button
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.fleetadmin import settings as svc
from piyasa.help import diagnose as core

FIX_PARAMS = (Param("key", OPERATOR_KEYS, required=True), Param("e", ENTRY_IDS))


def _same(spec: svc.SettingSpec, a: Any, b: Any) -> bool:
    """Whether two stored values of ``spec`` are the same setting (2 == 2.0)."""
    try:
        return bool(svc.parse_value(spec, a) == svc.parse_value(spec, b))
    except svc.SettingError:
        return False


async def _moved(ctx: Context) -> str | None:
    """Why the setting is no longer what the report saw (a catalog text), or None."""
    p = ctx.params
    now = await svc.get(ctx.services, str(p["key"]))
    ver = p.get("ver")
    if not _same(now.spec, now.value, p.get("was")):
        return ctx.t(
            "fix.stale", key=now.spec.key, now=shown(ctx, now.value), was=shown(ctx, p.get("was"))
        )
    if isinstance(ver, int) and ver != now.version:  # changed and changed back: look again
        return ctx.t("settings.err.stale", name=now.spec.key, version=now.version)
    return None


async def _fresh(ctx: Context, why: str, outcome: str) -> View:
    """The refusal ``why`` above a fresh diagnosis; nothing was changed."""
    ctx.audit_params["outcome"] = outcome
    report, _ = await diag.run_report(ctx, show_progress=False)
    return await _refusal_over(ctx, why, report)


async def _refusal_over(ctx: Context, why: str, report: core.Report) -> View:
    view = await diag.report_view(ctx, report)
    view.blocks.insert(0, Alert("warning", why))
    return view


@diag.diagnose.action("fix", role="operator", params=FIX_PARAMS)
async def diagnose_fix(ctx: Context) -> View:
    """The confirm screen: ``key: was → v`` and [Apply] [Cancel]; nothing changes here."""
    p = ctx.params
    key = str(p["key"])
    ctx.target = key
    why = await _moved(ctx)
    if why is not None:
        return await _fresh(ctx, why, "stale")
    entry = core.knowledge_base().get(str(p.get("e") or ""))
    view = View(title=ctx.t("fix.title", key=key))
    view.blocks.append(
        Text(ctx.t("fix.change", key=key, old=shown(ctx, p.get("was")), new=shown(ctx, p.get("v"))))
    )
    if entry is not None:
        view.blocks.append(Text(ctx.t("fix.why", title=entry.w(ctx.lang).title)))
    view.blocks.append(Text(ctx.t("fix.how"), style="italic"))
    view.row(
        Button(ctx.t("settings.btn.apply"), "diagnose.fix_apply", dict(p), style="primary"),
        Button(ctx.t("settings.btn.cancel"), "settings.card", {"key": key}),
    )
    return view


@diag.diagnose.action("fix_apply", role="operator", params=FIX_PARAMS)
async def diagnose_fix_apply(ctx: Context) -> View:
    """Apply the fix if the setting and the issue are still what the report saw."""
    p = ctx.params
    key = str(p["key"])
    ctx.target = key
    why = await _moved(ctx)
    if why is not None:
        return await _fresh(ctx, why, "stale")
    entry_id = str(p.get("e") or "")
    if entry_id:  # from a report: the issue must still be there
        report, _ = await diag.run_report(ctx, show_progress=False)
        if all(i.key != entry_id for i in report.issues + report.ignored):
            ctx.audit_params["outcome"] = "gone"
            entry = core.knowledge_base().entries[entry_id]
            gone = ctx.t("fix.gone", title=entry.w(ctx.lang).title)
            return await _refusal_over(ctx, gone, report)
    ver = p.get("ver")
    try:
        change = await svc.change_setting(
            ctx.services,
            key,
            p.get("v"),
            actor=ctx.actor_label,
            reason=f"{FIX_REASON}{entry_id or 'kb'}",
            expected_version=ver if isinstance(ver, int) else None,
        )
    except svc.SettingError as exc:
        if exc.key == "settings.err.stale":  # changed between the check and the write
            return await _fresh(ctx, ctx.t(exc.key, **exc.params), "stale")
        ctx.audit_params["outcome"] = exc.key
        return View(blocks=[Alert("error", ctx.t(exc.key, **exc.params))])
    ctx.audit_params.update({"old": change.old, "new": change.new, "version": change.version})
    text = ctx.t(
        "settings.ok.applied",
        key=key,
        old=shown(ctx, change.old),
        new=shown(ctx, change.new),
        version=change.version,
    )
    view = View(title=ctx.t("fix.title", key=key), blocks=[Alert("success", text)])
    view.blocks.append(Text(ctx.t("fix.undo_hint"), style="italic"))
    view.row(*await undo_button(ctx, key), Button(ctx.t("diagnose.btn.again"), "diagnose.again"))
    return view
