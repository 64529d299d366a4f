"""Fleet-wide settings from chat: /settings (list, card, change, history, Undo).

Viewers read; operators change, admins alone change the security-relevant ones (their
role is in ``SETTING_SPECS``, enforced by the pipeline through the ``key`` param rules of
``settings.apply`` and ``settings.apply_admin``). A change is shown as current → new
first and applied only by the Apply button, which carries the version seen: a setting
changed meanwhile refuses the stale Apply. Data and rules: :mod:`piyasa.fleetadmin.settings`.
"""

from __future__ import annotations

from typing import Any

from chatops import dialogs
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.views import Alert, Button, Fields, Table, Text, View
from piyasa.fleetadmin import settings as svc

OPERATOR_KEYS = tuple(k for k, s in svc.SETTING_SPECS.items() if s.role == "operator")
ADMIN_KEYS = tuple(k for k, s in svc.SETTING_SPECS.items() if s.role == "admin")
ALL_KEYS = (*OPERATOR_KEYS, *ADMIN_KEYS)


def shown(ctx: Context, value: Any) -> str:
    """A value as the user reads it (on/off, numbers without a trailing .0, "—" empty)."""
    if isinstance(value, bool):
        return ctx.t("settings.on" if value else "settings.off")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if value not in (None, "") else "—"


def problem(ctx: Context, exc: svc.SettingError) -> Alert:
    ctx.audit_params["outcome"] = exc.key
    return Alert("error", ctx.t(exc.key, **exc.params))


@command("settings", role="viewer", order=42, args=(Arg("key"), Arg("value", rest=True)))
async def settings(ctx: Context) -> View:
    """The list; ``/settings KEY`` opens one; ``/settings KEY VALUE`` shows the change first."""
    key, value = ctx.args.get("key"), ctx.args.get("value")
    if key and value is not None and value != "":
        return await preview_view(ctx, key, value)
    if key:
        return await card_view(ctx, key)
    return await list_view(ctx)


async def list_view(ctx: Context, alert: Alert | None = None) -> View:
    t = ctx.t
    values = await svc.current(ctx.services)
    view = View(title=t("settings.title"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(
        Table(
            [t("settings.col.key"), t("settings.col.value"), t("settings.col.range")],
            [(v.spec.key, shown(ctx, v.value), v.spec.range_text()) for v in values],
        )
    )
    keys = [Button(v.spec.key, "settings.card", {"key": v.spec.key}) for v in values]
    for i in range(0, len(keys), 3):
        view.row(*keys[i : i + 3])
    undo = await undo_button(ctx, None)
    view.row(Button(t("settings.btn.history"), "settings.history", {}), *undo)
    return view


async def undo_button(ctx: Context, key: str | None) -> list[Button]:
    """[Undo] of the last change (of ``key``, or of any setting), or none when there is
    nothing to undo or the reader's role may not undo it (:func:`undo_of`)."""
    last = await svc.last_change(ctx.services, key)
    if last is None:
        return []
    button = undo_of(ctx, last, ctx.t("settings.btn.undo"))
    return [button] if button is not None else []


def undo_of(ctx: Context, change: svc.SettingChange, label: str) -> Button | None:
    """The settings service's Undo of ``change``, shown only to roles that may press it.
    The button names the change's key, so the registry's param rules decide who may press
    it (``settings.undo`` operator keys, ``settings.undo_admin`` admin keys), and its id,
    so a press after another change is refused as stale (``settings.err.undo_stale``)."""
    from chatops.commands.registry import REGISTRY

    role = svc.SETTING_SPECS[change.key].role
    action = "settings.undo_admin" if role == "admin" else "settings.undo"
    spec = REGISTRY.get(action)
    if spec is None or ctx.level < spec.level:
        return None
    return Button(label, action, {"key": change.key, "c": change.id})


async def card_view(ctx: Context, key: str, alert: Alert | None = None) -> View:
    t = ctx.t
    try:
        v = await svc.get(ctx.services, key)
    except svc.SettingError as exc:
        return View(blocks=[problem(ctx, exc)])
    ctx.target = v.spec.key
    view = View(title=t("settings.card.title", key=v.spec.key))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(Text(t(f"settings.about.{v.spec.key}")))
    view.blocks.append(
        Fields(
            [
                (t("settings.f.value"), shown(ctx, v.value)),
                (t("settings.f.range"), v.spec.range_text()),
                (t("settings.f.role"), t(f"role.{v.spec.role}")),
                (t("settings.f.version"), str(v.version)),
                (t("settings.f.by"), v.updated_by or "—"),
            ]
        )
    )
    k = v.spec.key
    if v.spec.kind == "bool":
        view.row(Button(t("settings.btn.toggle"), "settings.propose", {"key": k, "v": not v.value}))
    elif v.spec.choices:
        view.row(
            *[
                Button(c, "settings.propose", {"key": k, "v": c})
                for c in v.spec.choices
                if c != v.value
            ]
        )
    else:
        view.row(Button(t("settings.btn.change"), "settings.edit", {"key": k}))
    view.row(
        Button(t("settings.btn.history"), "settings.history", {"key": k}),
        *await undo_button(ctx, k),
        Button(t("settings.btn.back"), "settings.back_list", {}),
    )
    return view


async def preview_view(ctx: Context, key: str, raw: Any) -> View:
    """Current → new, with Apply (carrying the version seen); nothing is changed here."""
    t = ctx.t
    try:
        v = await svc.get(ctx.services, key)
        new = svc.parse_value(v.spec, raw)
    except svc.SettingError as exc:
        view = await card_view(ctx, key) if key in svc.SETTING_SPECS else View()
        view.blocks.insert(0, problem(ctx, exc))
        return view
    ctx.target = v.spec.key
    action = "settings.apply_admin" if v.spec.role == "admin" else "settings.apply"
    return View(
        title=t("settings.preview.title", key=v.spec.key),
        blocks=[
            Text(t("settings.preview.change", old=shown(ctx, v.value), new=shown(ctx, new))),
            Text(t("settings.preview.how")),
        ],
        buttons=[
            [
                Button(
                    t("settings.btn.apply"),
                    action,
                    {"key": v.spec.key, "v": new, "ver": v.version},
                    style="primary",
                ),
                Button(t("settings.btn.cancel"), "settings.card", {"key": v.spec.key}),
            ]
        ],
    )


@settings.action("card")
async def settings_card(ctx: Context) -> View:
    return await card_view(ctx, str(ctx.params.get("key", "")))


@settings.action("back_list")
async def settings_back_list(ctx: Context) -> View:
    return await list_view(ctx)


@settings.action("propose", role="operator")
async def settings_propose(ctx: Context) -> View:
    return await preview_view(ctx, str(ctx.params.get("key", "")), ctx.params.get("v"))


async def _apply(ctx: Context) -> View:
    key = str(ctx.params["key"])
    ver = ctx.params.get("ver")
    try:
        change = await svc.change_setting(
            ctx.services,
            key,
            ctx.params.get("v"),
            actor=ctx.actor_label,
            expected_version=int(ver) if isinstance(ver, int) else None,
        )
    except svc.SettingError as exc:
        return await card_view(ctx, key, problem(ctx, exc))
    ctx.audit_params.update({"old": change.old, "new": change.new, "version": change.version})
    text = ctx.t(
        "settings.ok.applied",
        key=key,
        old=shown(ctx, change.old),
        new=shown(ctx, change.new),
        version=change.version,
    )
    return await card_view(ctx, key, Alert("success", text))


@settings.action("apply", role="operator", params=(Param("key", OPERATOR_KEYS, required=True),))
async def settings_apply(ctx: Context) -> View:
    return await _apply(ctx)


@settings.action("apply_admin", role="admin", params=(Param("key", ADMIN_KEYS, required=True),))
async def settings_apply_admin(ctx: Context) -> View:
    return await _apply(ctx)


@settings.action("history")
async def settings_history(ctx: Context) -> View:
    t = ctx.t
    key = ctx.params.get("key") or None
    try:
        changes = await svc.history(ctx.services, key, 15)
    except svc.SettingError as exc:
        return View(blocks=[problem(ctx, exc)])
    view = View(title=t("settings.history.title", key=key or t("settings.all")))
    if not changes:
        view.blocks.append(Text(t("settings.history.empty")))
    else:
        view.blocks.append(
            Table(
                [
                    t("settings.col.when"),
                    t("settings.col.key"),
                    t("settings.col.change"),
                    t("settings.col.by"),
                ],
                [
                    (
                        c.at.strftime("%Y-%m-%d %H:%M"),
                        c.key,
                        f"{shown(ctx, c.old)} → {shown(ctx, c.new)}" + (" ↩" if c.undo_of else ""),
                        c.actor,
                    )
                    for c in changes
                ],
            )
        )
    view.row(Button(t("settings.btn.back"), "settings.back_list", {}))
    return view


async def _undo_text(ctx: Context) -> str:
    key = ctx.params.get("key") or None
    try:
        last = await svc.last_change(ctx.services, key)
    except svc.SettingError:
        last = None
    if last is None:
        return ctx.t("settings.err.nothing_to_undo")
    return ctx.t(
        "settings.confirm.undo", key=last.key, new=shown(ctx, last.new), old=shown(ctx, last.old)
    )


async def _undo(ctx: Context) -> View:
    key = str(ctx.params["key"])
    seen = ctx.params.get("c")
    try:
        last = await svc.last_change(ctx.services, key)
        if last is None or (isinstance(seen, int) and last.id != seen):
            raise svc.SettingError("settings.err.undo_stale", "changed since", name=key)
        change = await svc.undo_last(ctx.services, key, actor=ctx.actor_label)
    except svc.SettingError as exc:
        return await card_view(ctx, key, problem(ctx, exc))
    ctx.audit_params.update({"old": change.old, "new": change.new, "version": change.version})
    text = ctx.t(
        "settings.ok.undone", key=change.key, old=shown(ctx, change.old), new=shown(ctx, change.new)
    )
    return await card_view(ctx, change.key, Alert("success", text))


@settings.action(
    "undo",
    role="operator",
    confirm=True,
    confirm_text=_undo_text,
    params=(Param("key", OPERATOR_KEYS, required=True),),
)
async def settings_undo(ctx: Context) -> View:
    """Undo the last change of an operator's setting (the button names it)."""
    return await _undo(ctx)


@settings.action(
    "undo_admin",
    role="admin",
    confirm=True,
    confirm_text=_undo_text,
    params=(Param("key", ADMIN_KEYS, required=True),),
)
async def settings_undo_admin(ctx: Context) -> View:
    """Undo the last change of a security-relevant setting: admins only."""
    return await _undo(ctx)


# -- typed values: one-step dialog, then the same current → new preview ---------------------


async def _ask_value(ctx: Context, data: dict[str, Any]) -> View:
    spec = svc.SETTING_SPECS[data["key"]]
    return View(
        title=ctx.t("settings.ask.title", key=spec.key),
        blocks=[Text(ctx.t("settings.ask.value", key=spec.key, range=spec.range_text()))],
    )


async def _on_value(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    try:
        svc.parse_value(svc.SETTING_SPECS[data["key"]], text)
    except svc.SettingError as exc:
        ctx.audit_params["outcome"] = exc.key
        return f"{exc.key}.short"
    data["value"] = text
    return None


async def _finish(ctx: Context, data: dict[str, Any]) -> View:
    return await preview_view(ctx, data["key"], data["value"])


editor = dialogs.Dialog(
    "settings", steps=[dialogs.Step("value", _ask_value, on_text=_on_value)], finish=_finish
)
editor.bind(settings, role="operator")


@settings.action("edit", role="operator", params=(Param("key", ALL_KEYS, required=True),))
async def settings_edit(ctx: Context) -> View:
    return await editor.reset(ctx, {"key": str(ctx.params["key"])})
