"""The tutorials' screens and buttons, under ``/docs``: the list (``docs.tutorials``),
a step (``docs.tutorial``) and its ✅ check (``docs.tutorial_check``).

A button carries the tutorial (``t``) and the step (``s``); the registry refuses a value
outside the declared ones, and a step beyond the tutorial's last one gets its own answer
here — both change nothing. A passed check is stored (``tutorial_progress``), so the list
resumes each tutorial where the reader got to, even after a restart that lost the
buttons' tokens.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from chatops.commands.docs import docs
from chatops.commands.registry import Param
from chatops.commands.tutorials import ops_flows, setup_flows  # noqa: F401  (define them)
from chatops.commands.tutorials.model import MAX_STEPS, TUTORIALS, Tutorial, bar, say
from chatops.context import Context
from chatops.views import Alert, Button, Text, View
from piyasa.help import tutorial_progress

STEP_IDS = tuple(str(i) for i in range(1, MAX_STEPS + 1))
# "t" is optional: buttons made before there were several tutorials carry only "s"
PARAMS = (Param("t", tuple(TUTORIALS)), Param("s", STEP_IDS, required=True))
DEFAULT = "bot"


async def _saved(ctx: Context) -> dict[str, tutorial_progress.Progress]:
    """The reader's progress; none when the database does not answer (``/docs`` works
    without it: the tutorials then start at step 1 and their checks say what fails)."""
    assert ctx.actor is not None  # tutorials are for viewers and up
    try:
        return await tutorial_progress.of_user(ctx.services, ctx.actor.user_id)
    except (SQLAlchemyError, OSError):
        return {}


async def list_view(ctx: Context, alert: Alert | None = None) -> View:
    """Every tutorial with where the reader stands in it; a button resumes it there."""
    saved = await _saved(ctx)
    view = View(title=ctx.t("tutorials.title"))
    if alert is not None:
        view.blocks.append(alert)
    lines = []
    for tut in TUTORIALS.values():
        got = saved.get(tut.id)
        if got is None:
            state = ctx.t("tutorials.not_started", n=tut.n)
        elif got.done:
            state = ctx.t("tutorials.done", bar=bar(tut.n, tut.n))
        else:
            state = tut.progress(ctx, got.step, got.step - 1)
        lines.append(f"{tut.title(ctx)} — {state}")
        step = 1 if got is None or got.done else min(got.step, tut.n)
        view.row(Button(tut.title(ctx), "docs.tutorial", {"t": tut.id, "s": str(step)}))
    view.blocks.append(Text(ctx.t("tutorials.intro") + "\n\n" + "\n".join(lines)))
    view.row(Button(ctx.t("docs.btn.home"), "docs.home"))
    return view


def _target(ctx: Context) -> tuple[Tutorial, int] | None:
    tut = TUTORIALS[str(ctx.params.get("t") or DEFAULT)]
    step = int(ctx.params["s"])
    return (tut, step) if step <= tut.n else None


async def _stale(ctx: Context) -> View:
    """A button naming a step its tutorial does not have (forged, or from another version)."""
    tut = TUTORIALS[str(ctx.params.get("t") or DEFAULT)]
    ctx.audit_params["outcome"] = "no_such_step"
    text = ctx.t("tutorials.no_step", title=tut.title(ctx), n=tut.n, s=ctx.params.get("s"))
    view = await list_view(ctx, Alert("warning", text))
    view.notice = text[:200]
    return view


def step_view(ctx: Context, tut: Tutorial, step: int, alert: Alert | None = None) -> View:
    view = View(title=tut.title(ctx))
    view.blocks.append(Text(tut.progress(ctx, step), style="bold"))
    if alert is not None:
        view.blocks.append(alert)
    view.blocks.append(Text(say(ctx, f"{tut.prefix}.step{step}")))
    params = {"t": tut.id, "s": str(step)}
    view.row(Button(ctx.t("tutorial.btn.check"), "docs.tutorial_check", params))
    if step > 1:
        view.row(
            Button(ctx.t("tutorial.btn.back"), "docs.tutorial", {**params, "s": str(step - 1)})
        )
    view.row(Button(ctx.t("tutorials.btn.all"), "docs.tutorials"))
    return view


def done_view(ctx: Context, tut: Tutorial) -> View:
    view = View(title=tut.title(ctx))
    view.blocks.append(Text(tut.progress(ctx, tut.n), style="bold"))
    view.blocks.append(Alert("success", say(ctx, f"{tut.prefix}.done")))
    view.row(Button(ctx.t("tutorials.btn.all"), "docs.tutorials"))
    view.row(Button(ctx.t("docs.btn.home"), "docs.home"))
    return view


async def open_tutorial(ctx: Context, tutorial_id: str) -> View:
    """``/docs tutorial ID``: that tutorial at the reader's saved step (1 if new or done)."""
    tut = TUTORIALS.get(tutorial_id)
    if tut is None:
        names = ", ".join(TUTORIALS)
        return await list_view(
            ctx, Alert("warning", ctx.t("tutorials.unknown", q=tutorial_id[:40], names=names))
        )
    got = (await _saved(ctx)).get(tut.id)
    return step_view(ctx, tut, 1 if got is None or got.done else min(got.step, tut.n))


@docs.action("tutorials")
async def docs_tutorials(ctx: Context) -> View:
    return await list_view(ctx)


@docs.action("tutorial", params=PARAMS)
async def docs_tutorial(ctx: Context) -> View:
    target = _target(ctx)
    if target is None:
        return await _stale(ctx)
    return step_view(ctx, *target)


@docs.action("tutorial_check", params=PARAMS)
async def docs_tutorial_check(ctx: Context) -> View:
    """Tick the step only when its check passes; else say what is missing."""
    target = _target(ctx)
    if target is None:
        return await _stale(ctx)
    tut, step = target
    ctx.target = f"tutorial:{tut.id}"
    missing = await tut.checks[step - 1](ctx)
    if missing is not None:
        ctx.audit_params["outcome"] = "missing"
        return step_view(ctx, tut, step, Alert("warning", missing))
    assert ctx.actor is not None
    last = step == tut.n
    await tutorial_progress.reach(
        ctx.services, ctx.actor.user_id, tut.id, step if last else step + 1, done=last
    )
    if last:
        return done_view(ctx, tut)
    return step_view(ctx, tut, step + 1, Alert("success", ctx.t("tutorial.ticked", i=step)))
