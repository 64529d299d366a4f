"""`/diagnose` (viewer): the troubleshooter on every surface.

Runs :func:`piyasa.help.diagnose.diagnose` (health probes, `piyasa check` checks, the log
analyzer, fleet statistics). On Telegram one message shows the progress and is edited
into the report; on Slack the ack says "working on it" and the report follows through
``response_url`` (chatops.slack.surface). The report: the health score (its button shows
how it is computed), the issues worst first with cause, impact, solution and evidence,
and per issue [Apply fix] (the existing action's own button, as in ``/kb``: shown only to
roles that action allows; a settings fix also carries the issue, see
:mod:`chatops.commands.diagnose_fix`), [Learn more] (the KB entry) and [Ignore for 24 h]
(operator). A fix still in force is named below the issues with its [Undo].
[Export] sends the report as a Markdown document. The last report of a chat is kept in
memory for the score and export buttons; a press after a restart runs a fresh one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from chatops.commands.kb import ENTRY_IDS, FIX_ACTION, FIX_KEYS, FIX_REASON, fix_button
from chatops.commands.registry import Param, command
from chatops.context import Context
from chatops.views import Alert, Button, File, Text, View
from piyasa.db.availability import db_down
from piyasa.help import diagnose as core
from piyasa.help.report import how_scored, title_of, to_markdown

log = logging.getLogger(__name__)
MAX_SHOWN = 5
PROGRESS_EVERY_S = 1.0  # at most one progress edit a second: Telegram's pace for a chat
MAX_EVIDENCE_SHOWN = 3
CLIP = 280
BAR = ("○", "●")


def _clip(text: str, n: int = CLIP) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _reports(ctx: Context) -> dict[tuple[str, str], core.Report]:
    return ctx.extras.setdefault("diagnose.last", {})


def progress_view(ctx: Context, step: str, i: int, n: int) -> View:
    bar = BAR[1] * i + BAR[0] * (n - i)
    return View(
        title=ctx.t("diagnose.title"),
        blocks=[
            Text(ctx.t("diagnose.progress", bar=bar, i=i, n=n, step=ctx.t(f"diagnose.step.{step}")))
        ],
    )


async def report_view(ctx: Context, report: core.Report) -> View:
    lang = ctx.lang
    view = View(title=ctx.t("diagnose.title"))
    view.blocks.append(Text(ctx.t("diagnose.score", score=report.score), style="bold"))
    if not report.issues:
        view.blocks.append(Alert("success", ctx.t("diagnose.none")))
    for n, issue in enumerate(report.issues[:MAX_SHOWN], 1):
        icon = "🔴" if issue.severity == "critical" else "🟠"
        view.blocks.append(Text(f"{n}. {icon} {title_of(issue, lang)}", style="bold"))
        entry = issue.entry
        lines = []
        if entry is not None:
            w = entry.w(lang)
            lines += [
                f"{ctx.t('diagnose.f.cause')}: {_clip(w.cause)}",
                f"{ctx.t('diagnose.f.impact')}: {_clip(w.symptoms)}",
                f"{ctx.t('diagnose.f.solution')}: {_clip(w.steps[0])}",
            ]
        lines.append(ctx.t("diagnose.f.evidence") + ":")
        lines += [f"• {_clip(e, 200)}" for e in issue.evidence[:MAX_EVIDENCE_SHOWN]]
        view.blocks.append(Text("\n".join(lines)))
        row: list[Button] = []
        fix = await fix_button(ctx, entry) if entry is not None else None
        if fix is not None:
            params = {**fix.params, "e": issue.entry_id} if fix.action == FIX_ACTION else fix.params
            row.append(
                dataclasses.replace(fix, label=ctx.t("diagnose.btn.fix", n=n), params=params)
            )
        if entry is not None:
            row.append(Button(ctx.t("diagnose.btn.learn", n=n), "kb.show", {"id": entry.id}))
            if ctx.level >= _ignore_level():
                row.append(
                    Button(ctx.t("diagnose.btn.ignore", n=n), "diagnose.ignore", {"k": entry.id})
                )
        if row:
            view.row(*row)
    if len(report.issues) > MAX_SHOWN:
        view.blocks.append(
            Text(ctx.t("diagnose.more", n=len(report.issues) - MAX_SHOWN), style="italic")
        )
    if report.ignored:
        view.blocks.append(Text(ctx.t("diagnose.ignored.n", n=len(report.ignored)), style="italic"))
    await _last_fix(ctx, view)
    view.row(
        Button(ctx.t("diagnose.btn.score"), "diagnose.score"),
        Button(ctx.t("diagnose.btn.export"), "diagnose.export"),
    )
    view.row(Button(ctx.t("diagnose.btn.again"), "diagnose.again"))
    return view


async def _last_fix(ctx: Context, view: View) -> None:
    """The report's line about each fix applied (``diagnose.fix_apply``) and still in
    force (the last change of a :data:`FIX_KEYS` setting), with the settings service's
    [Undo] for roles that may press it. Nothing when the database is down."""
    from chatops.commands.settings import shown, undo_of
    from piyasa.fleetadmin import settings as fleet_settings

    if db_down(ctx.services):
        return
    for key in FIX_KEYS:
        try:
            last = await fleet_settings.last_change(ctx.services, key)
        except Exception:  # the report does not depend on the settings table
            log.info("diagnose: last change of %s unreadable", key, exc_info=True)
            return
        if last is None or not (last.reason or "").startswith(FIX_REASON):
            continue
        old, new = shown(ctx, last.old), shown(ctx, last.new)
        view.blocks.append(
            Text(ctx.t("fix.last", key=key, old=old, new=new, who=last.actor), style="italic")
        )
        undo = undo_of(ctx, last, ctx.t("fix.audit.undo", key=key, old=old, new=new))
        if undo is not None:
            view.row(undo)


def _ignore_level() -> int:
    from chatops.commands.registry import REGISTRY

    spec = REGISTRY.get("diagnose.ignore")
    return spec.level if spec is not None else 10**6


async def run_report(ctx: Context, *, show_progress: bool) -> tuple[core.Report, Any]:
    """The report, and on Telegram the progress message it will replace.

    Telegram allows about one message or edit a second in a chat (a burst of three, then
    429s that the client waits out): a progress edit per step would hold the report back
    by seconds. So a step is shown only once :data:`PROGRESS_EVERY_S` has passed since
    the last one, its edit is sent in the background (the diagnosis never waits on the
    chat), and the report is edited in after the last progress edit has landed.
    """
    ref = None
    if show_progress and ctx.surface == "telegram":
        ref = await ctx.send(progress_view(ctx, core.STEPS[0], 0, len(core.STEPS)))
    shown = time.monotonic()
    inflight: asyncio.Task[Any] | None = None

    async def progress(step: str, i: int, n: int) -> None:
        nonlocal shown, inflight
        if ref is None or i == 0 or i >= n:  # "done" is the report itself
            return
        busy = inflight is not None and not inflight.done()
        if busy or time.monotonic() - shown < PROGRESS_EVERY_S:
            return
        shown = time.monotonic()
        inflight = asyncio.create_task(ctx.edit(ref, progress_view(ctx, step, i, n)))

    try:
        report = await core.diagnose(ctx.services, progress)
    finally:
        if inflight is not None:
            try:
                await inflight
            except Exception as exc:  # a lost progress edit is no reason to lose the report
                log.debug("diagnose: progress edit failed: %s", type(exc).__name__)
    _reports(ctx)[(ctx.surface, str(ctx.chat_id))] = report
    ctx.audit_params.update(score=report.score, issues=len(report.issues))
    return report, ref


async def _answer(ctx: Context) -> View | None:
    report, ref = await run_report(ctx, show_progress=True)
    view = await report_view(ctx, report)
    if ref is not None:
        await ctx.edit(ref, view)
        return None
    return view


async def _last(ctx: Context) -> core.Report:
    report = _reports(ctx).get((ctx.surface, str(ctx.chat_id)))
    if report is None:
        report, _ = await run_report(ctx, show_progress=False)
    return report


@command("diagnose", role="viewer", order=37, needs=())
async def diagnose(ctx: Context) -> View | None:
    """Run the troubleshooter; the report replaces the progress message."""
    return await _answer(ctx)


@diagnose.action("again", needs=())
async def diagnose_again(ctx: Context) -> View | None:
    return await _answer(ctx)


@diagnose.action("score", needs=())
async def diagnose_score(ctx: Context) -> View:
    report = await _last(ctx)
    lines = [ctx.t("diagnose.score.how", how=how_scored(ctx.lang))]
    for issue in report.issues:
        lines.append(f"−{core.PENALTY[issue.severity]} {title_of(issue, ctx.lang)}")
    lines.append(ctx.t("diagnose.score", score=report.score))
    view = View(title=ctx.t("diagnose.score.title"), blocks=[Text("\n".join(lines))])
    view.row(Button(ctx.t("diagnose.btn.again"), "diagnose.again"))
    return view


@diagnose.action("export", needs=())
async def diagnose_export(ctx: Context) -> View:
    report = await _last(ctx)
    data = to_markdown(report, ctx.lang).encode("utf-8")
    name = f"piyasa-diagnosis-{report.taken_at:%Y%m%d-%H%M%S}.md"
    return View(
        blocks=[Text(ctx.t("diagnose.exported", score=report.score, n=len(report.issues)))],
        files=[File(name, data, caption=ctx.t("diagnose.export.caption"), mime="text/markdown")],
        edit=False,
    )


@diagnose.action(
    "ignore", role="operator", params=(Param("k", ENTRY_IDS, required=True),), needs=()
)
async def diagnose_ignore(ctx: Context) -> View:
    key = str(ctx.params["k"])
    ctx.target = key
    await core.ignore(ctx.services, key, ctx.actor_label)
    for report in _reports(ctx).values():  # the kept reports no longer show it
        moved = [i for i in report.issues if i.key == key]
        report.issues = [i for i in report.issues if i.key != key]
        report.ignored.extend(moved)
    entry = core.knowledge_base().get(key)
    title = entry.w(ctx.lang).title if entry else key
    view = View(blocks=[Alert("success", ctx.t("diagnose.ignored", title=title))])
    view.row(Button(ctx.t("diagnose.btn.again"), "diagnose.again"))
    return view
