"""The restore wizard (``restore``, admin, TOTP step-up): replace the live database with
a backup.

Choose a backup (or come from its card; "Choose another backup" and "More" page through
all of them) → review: what will happen (the current data is replaced; a safety backup
of it is taken first; the fleet pauses and resumes), the backup's manifest and the
options the shell has — the safety backup (on by default; turning it off shows what is
lost), the backup passphrase (for an archive made with another secret key, like
``--passphrase-stdin``; typed in a private chat or a Slack modal only, deleted from the
chat, kept sealed until the wizard ends and used for this restore only) — and, for a
backup of the other database kind, how it is copied across → Continue checks what the
service would refuse and verifies the archive (a backup that fails is refused with the
reason, nothing changed) → type ``RESTORE`` exactly under a summary of the options
(anything else refuses and changes nothing) → progress in one edited message → the
result with the safety backup's id.

Option buttons carry only values declared on ``restore.choose`` (a forged value is
refused by the pipeline); a stale one sets what it says, and the typed-word screen shows
the options as they stand.

Step-up is asked when the wizard starts and again on its Continue and typed answer when
the elevation has lapsed meanwhile (their ``choose`` and ``input`` actions declare it).
The work itself is :meth:`piyasa.backup.service.BackupService.restore`.
"""

from __future__ import annotations

from typing import Any

from chatops.commands.backup.common import (
    LiveProgress,
    kind_text,
    problem,
    problem_text,
    rate_text,
    rows_total,
    service,
    size_text,
)
from chatops.commands.backup.edit import _error
from chatops.commands.backup.views import manifest_items, rows_table
from chatops.commands.bots_edit import ParamDialog
from chatops.commands.registry import Arg, Param, command
from chatops.context import Context
from chatops.dialogs import STAY, Step, cancel_active
from chatops.views import Alert, Button, Fields, Text, View
from piyasa.backup import dump
from piyasa.backup.service import BackupError, BackupService

WORD = "RESTORE"
PICK_MAX = 8  # backups offered per page of the picker
CHOICES = ("go", "pass", "safety_on", "safety_off")  # the review step's buttons


@command("restore", role="admin", step_up=True, hidden=True, order=71, args=(Arg("id"),))
async def restore(ctx: Context) -> View:
    """``restore ID`` (or the card's Restore button) starts the wizard on that backup;
    without one, the newest backups to choose from."""
    backup_id = str(ctx.args.get("id") or ctx.params.get("id") or "")[:200]
    svc = service(ctx)
    if not backup_id:
        return await _pick(ctx, _page(ctx))
    try:
        info = await svc.get(backup_id)
    except BackupError as exc:
        view = await _pick(ctx)
        view.blocks.insert(0, problem(ctx, exc))
        return view
    ctx.target = info.id
    return await wizard.reset(ctx, {"id": info.id})


def _page(ctx: Context) -> int:
    try:
        return max(1, int(ctx.params.get("page", 1)))
    except (TypeError, ValueError):
        return 1


async def _pick(ctx: Context, page: int = 1) -> View:
    """Every backup, newest first, :data:`PICK_MAX` a page."""
    t = ctx.t
    view = View(title=t("backup.restore.title"))
    try:
        backups = await service(ctx).list()
    except BackupError as exc:
        return View(blocks=[problem(ctx, exc)])
    if not backups:
        view.blocks.append(Text(t("backup.none")))
        return view
    pages = (len(backups) + PICK_MAX - 1) // PICK_MAX
    page = min(page, pages)
    view.blocks.append(Text(t("backup.restore.pick")))
    for b in backups[(page - 1) * PICK_MAX : page * PICK_MAX]:
        label = (
            f"{kind_text(ctx, b.kind)} · {b.created_at:%Y-%m-%d %H:%M} · {size_text(b.size_bytes)}"
        )
        view.row(Button(label, "restore", {"id": b.id}))
    nav = []
    if page > 1:
        nav.append(Button(t("backup.restore.newer"), "restore", {"page": page - 1}))
    if page < pages:
        nav.append(Button(t("backup.restore.older"), "restore", {"page": page + 1}))
    if nav:
        view.row(*nav)
    return view


def _may_type_secret(ctx: Context) -> bool:
    """Where a passphrase may be typed: a private chat, or Slack (its answer goes through a
    modal nobody else sees)."""
    return ctx.chat_private or ctx.surface == "slack"


def _options(ctx: Context, data: dict[str, Any], b: Any) -> list[Any]:
    """The options' state, the warnings they need, and the cross-kind note."""
    t = ctx.t
    blocks: list[Any] = []
    live_kind = dump.db_kind(ctx.services.settings.database_url)
    if b.db_kind != live_kind:
        blocks.append(Alert("info", t("backup.restore.cross", source=b.db_kind, target=live_kind)))
    if data.get("safety", True):
        blocks.append(Text(t("backup.restore.opt.safety_is_on")))
    else:
        blocks.append(Alert("warning", t("backup.restore.opt.safety_is_off")))
    if data.get("pass"):
        blocks.append(Text(t("backup.restore.opt.pass_given")))
    return blocks


def _option_buttons(ctx: Context, data: dict[str, Any]) -> list[Button]:
    t = ctx.t
    if data.get("safety", True):
        row = [wizard.choice(ctx, t("backup.restore.opt.safety_off"), "review", "safety_off")]
    else:
        row = [wizard.choice(ctx, t("backup.restore.opt.safety_on"), "review", "safety_on")]
    if _may_type_secret(ctx):
        row.append(wizard.choice(ctx, t("backup.restore.opt.pass"), "review", "pass"))
    return row


async def _review(ctx: Context, data: dict[str, Any]) -> View:
    t = ctx.t
    try:
        b = await service(ctx).get(str(data.get("id", "")))
    except BackupError as exc:
        return View(blocks=[problem(ctx, exc)])
    view = View(title=t("backup.restore.title"))
    view.blocks.append(Alert("warning", t("backup.restore.warning")))
    view.blocks.append(Fields(manifest_items(ctx, b)))
    view.blocks.append(rows_table(ctx, b))
    if not b.verified_at:
        view.blocks.append(Text(t("backup.restore.unverified")))
    view.blocks.extend(_options(ctx, data, b))
    view.row(*_option_buttons(ctx, data))
    view.row(Button(t("backup.restore.other"), "restore", {"page": 1}))
    view.row(wizard.choice(ctx, t("backup.restore.continue"), "review", "go"))
    return view


def _svc(ctx: Context, data: dict[str, Any]) -> BackupService:
    """The service, opening archives with the typed passphrase when one was given."""
    sealed = data.get("pass")
    return service(ctx).using(ctx.services.box.decrypt(sealed) if sealed else None)


async def _verify(ctx: Context, data: dict[str, Any], svc: BackupService) -> str | None:
    """Refuse what the restore would refuse, then verify the whole archive."""
    backup_id = str(data.get("id", ""))
    try:
        await svc.check_restore(backup_id)
    except BackupError as exc:
        return _error(ctx.t("backup.restore.refused", reason=problem_text(ctx, exc)))
    live = await LiveProgress(ctx, "backup.verify.title").start()
    try:
        await svc.verify(backup_id, progress=live)
    except BackupError as exc:
        await live.done(False)
        text = ctx.t("backup.restore.refused", reason=problem_text(ctx, exc))
        if exc.key == "backup.wrong_key" and _may_type_secret(ctx):
            text += " " + ctx.t("backup.restore.pass_hint")
        return _error(text)
    await live.done()
    return None


async def _on_review(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    """The review's buttons: toggle the safety backup, ask for the passphrase, Continue."""
    if value in ("safety_on", "safety_off"):
        data["safety"] = value == "safety_on"
        return STAY
    if value == "pass" and _may_type_secret(ctx):
        data["ask_pass"] = True
        return None  # on to the passphrase step
    if value != "go":
        return STAY
    data["ask_pass"] = False  # straight on to the typed word
    return await _verify(ctx, data, _svc(ctx, data))


async def _ask_pass(ctx: Context, data: dict[str, Any]) -> View:
    return View(
        title=ctx.t("backup.restore.title"),
        blocks=[Text(ctx.t("backup.restore.pass_ask"))],
    )


async def _on_pass(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    """The typed passphrase (its message is deleted): verify with it, keep it sealed."""
    phrase = text.strip()
    if ctx.input_exposed:
        return _error(ctx.t("backup.restore.pass_private"))
    if not phrase:
        return _error(ctx.t("backup.restore.pass_empty"))
    error = await _verify(ctx, data, service(ctx).using(phrase))
    if error is None:
        data["pass"] = ctx.services.box.encrypt(phrase)
    return error


async def _confirm(ctx: Context, data: dict[str, Any]) -> View:
    t = ctx.t
    safety = data.get("safety", True)
    items = [
        (t("backup.f.id"), str(data.get("id", ""))),
        (t("backup.f.safety"), t("backup.yes") if safety else t("backup.restore.no_safety")),
    ]
    if data.get("pass"):
        items.append((t("backup.f.passphrase"), t("backup.restore.pass_set")))
    blocks: list[Any] = [Fields(items)]
    if not safety:
        blocks.append(Alert("warning", t("backup.restore.opt.safety_is_off")))
    blocks.append(Alert("warning", t("backup.restore.type", word=WORD)))
    return View(title=t("backup.restore.title"), blocks=blocks)


async def _typed(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    if text.strip() != WORD or text.strip() != text.strip().upper():
        ctx.audit_params["outcome"] = "typed_wrong"
        return _error(ctx.t("backup.restore.typed_wrong", word=WORD))
    return None


async def _run(ctx: Context, data: dict[str, Any]) -> View:
    """Restore with progress; the result names the safety backup."""
    t = ctx.t
    backup_id = str(data.get("id", ""))
    ctx.target = backup_id
    svc = _svc(ctx, data)
    want_safety = bool(data.get("safety", True))
    ctx.audit_params["safety"] = "on" if want_safety else "off"
    live = await LiveProgress(ctx, "backup.restore.progress_title").start()
    try:
        info = await svc.get(backup_id)
        safety = await svc.restore(
            backup_id, actor=ctx.actor_label, progress=live, safety=want_safety
        )
    except BackupError as exc:
        await live.done(False)
        text = t("backup.restore.failed", reason=problem_text(ctx, exc))
        return View(title=t("backup.restore.title"), blocks=[Alert("error", text)])
    except Exception:
        await live.done(False)  # the progress line must not stay at "n %" forever
        raise
    await live.done()
    ctx.audit_params.update(outcome="restored", safety=safety.id if safety else "off")
    seconds = live.elapsed
    text = t(
        "backup.restore.ok",
        rows=rows_total(info),
        tables=len(info.rows),
        size=size_text(info.size_bytes),
        seconds=f"{seconds:.1f}",
        rate=rate_text(info.size_bytes, seconds),
    )
    view = View(title=t("backup.restore.title"), blocks=[Alert("success", text)])
    if safety is not None:
        view.blocks.append(Text(t("backup.restore.safety", id=safety.id)))
        view.row(Button(t("backup.restore.open_safety"), "backup.card", {"id": safety.id}))
    else:
        view.blocks.append(Text(t("backup.restore.safety_skipped")))
    view.blocks.append(rows_table(ctx, info))
    return view


class RestoreDialog(ParamDialog):
    """The wizard; its passphrase step is visited only when asked for (Back skips it too)."""

    async def _advance(self, ctx: Context, state: dict[str, Any]) -> View:
        nxt = state["step"] + 1
        if nxt < len(self.steps) and self.steps[nxt].id == "passphrase":
            if not state["data"].get("ask_pass"):
                nxt += 1
        state["path"].append(state["step"])
        if nxt >= len(self.steps):
            await cancel_active(ctx)
            return await self.finish(ctx, state["data"])
        state["step"] = nxt
        await self._save(ctx, state)
        return await self._render(ctx, state)


wizard = RestoreDialog(
    "restore",
    steps=[
        Step("review", _review, on_choice=_on_review),
        Step("passphrase", _ask_pass, on_text=_on_pass, secret=True),
        Step("confirm", _confirm, on_text=_typed),
    ],
    finish=_run,
)
wizard.bind(restore)
for _name in ("choose", "input"):
    restore.actions[_name].step_up = True  # a lapsed elevation asks for the code again
# a forged button value is refused before the handler runs
restore.actions["choose"].params = (Param("step", ("review",)), Param("v", CHOICES))
