"""The one pipeline every request goes through, on every surface.

Stages, in order: identify -> language -> bind (which spec, which args) -> parts (during a
database outage only ``needs=()`` specs run) -> authorize (role, or the spec's declared
bootstrap rule) -> exposed secrets -> private-only -> arguments (incl. the edge checks of
chatops.inputs, and the declared rules on button params) -> step-up -> confirmation ->
execute -> audit. Each stage is a
plain function; Telegram calls them from aiogram middlewares (an onion, reading the spec
from handler flags), Slack and step-up resumption call :func:`run`, which chains the same
functions. A stage that stops the request raises :class:`Halt` carrying the View to show
and the audit result, so refusals are rendered and audited in exactly one place.
"""

from __future__ import annotations

import logging
from typing import Any

from chatops import context_help, i18n, inputs
from chatops.context import Client, Context, Invocation
from chatops.views import Alert, Button, Text, View
from piyasa.admin import activity, auth, identity
from piyasa.admin import audit as audit_log
from piyasa.db.availability import availability, db_down, is_outage
from piyasa.services import Services

log = logging.getLogger(__name__)
PENDING_TTL_S = 300
KEEP_MESSAGE = "keep"  # button param: answer in a new message, never edit the pressed one


class Halt(Exception):
    """Stop here and show ``view``; ``result`` is what the audit row says."""

    def __init__(self, view: View, result: str, detail: str | None = None) -> None:
        super().__init__(result)
        self.view = view
        self.result = result
        self.detail = detail


def command_prefix(surface: str) -> str:
    return "/piyasa " if surface == "slack" else "/"


def refusal(ctx: Context, key: str, result: str, **kwargs: Any) -> Halt:
    """A refusal names only what the caller may do next, never what they were refused."""
    prefix = command_prefix(ctx.surface)
    kwargs.setdefault("help_cmd", f"{prefix}help")
    kwargs.setdefault("link_cmd", f"{prefix}link")
    kwargs.setdefault("surface", ctx.surface.capitalize())
    kwargs.setdefault("id", ctx.client.external_id)
    view = View(blocks=[Alert("error", ctx.t(key, **kwargs))])
    return Halt(context_help.add_learn_more(ctx, view, key), result)


# -- identify / language ------------------------------------------------------------------


async def identify(services: Services, client: Client) -> identity.Principal | None:
    actor = await identity.resolve(services, client.provider, client.external_id)
    await activity.seen(services, actor.user_id if actor else None)  # last seen, once a minute
    return actor


def language(services: Services, actor: identity.Principal | None, client: Client) -> str:
    return i18n.choose_lang(
        actor.language if actor else None, client.language, services.settings.lang
    )


# -- bind -----------------------------------------------------------------------------------


def bind(ctx: Context, invocation: Invocation) -> None:
    """Attach the spec and parsed args; an unknown spec is refused like a forbidden one."""
    ctx.invocation = invocation
    ctx.spec = ctx.registry.get(invocation.spec_id)
    if ctx.spec is None:
        raise refusal(ctx, "refuse.denied", "denied_unknown")
    ctx.args = ctx.spec.parse_args(invocation.args_text)
    # Refused in check_args, not here: by then Telegram has deleted a message holding
    # secrets, and the refusal is audited like any other (a NUL is stored escaped).
    ctx.input_problem = inputs.check(ctx.spec.args, ctx.args)


# -- parts ----------------------------------------------------------------------------------


def check_parts(ctx: Context) -> None:
    """While the database is unreachable, run only specs that need nothing of it (declared
    ``needs=()``), for callers the last-known-good principals know; everything else is told
    to try after recovery, in the caller's language. Runs before :func:`authorize`, so a
    caller the snapshot does not know hears "database unavailable", not "link first"."""
    spec = ctx.spec
    if spec is None or not db_down(ctx.services):
        return
    if "db" in spec.needs or (ctx.actor is None and spec.level > 0):
        raise refusal(ctx, "refuse.db_unavailable", "refused_db_unavailable")


def failure(ctx: Context, exc: BaseException) -> Halt:
    """What a request that raised shows: "database unavailable" when the database went
    away under it (and the process now knows), the internal-error answer otherwise."""
    if is_outage(exc):
        availability(ctx.services).failed(exc)
        halt = refusal(ctx, "refuse.db_unavailable", "refused_db_unavailable")
    else:
        halt = Halt(error_view(ctx), "error")
    halt.detail = type(exc).__name__
    return halt


# -- authorize ------------------------------------------------------------------------------


async def bootstrap_open(ctx: Context, spec: Any) -> bool:
    """Whether ``spec``'s declared :class:`~chatops.commands.registry.Bootstrap` lets this
    caller in now. Never a locked account; a rule that cannot be checked (database down)
    counts as closed, so an outage never opens a command."""
    boot = getattr(spec, "bootstrap", None)
    if boot is None or (ctx.actor is not None and ctx.actor.locked) or db_down(ctx.services):
        return False
    try:
        return bool(await boot.is_open(ctx.services))
    except Exception as exc:
        if is_outage(exc):
            availability(ctx.services).failed(exc)
        log.warning("bootstrap rule %s could not be checked: treated as closed", boot.name)
        return False


async def opened(ctx: Context) -> frozenset[str]:
    """Commands above the caller's level that a bootstrap rule opens to them now (for
    /help, which lists exactly what the caller may run)."""
    return frozenset(
        [
            c.id
            for c in ctx.registry.bootstraps()
            if c.level > ctx.level and await bootstrap_open(ctx, c)
        ]
    )


async def authorize(ctx: Context, *, allow_bootstrap: bool = True) -> None:
    """Role check by numeric identity; locked accounts run nothing that needs a role.

    Below the role, the spec's declared bootstrap rule may let the caller in (recorded in
    ``ctx.via_bootstrap`` and the audit row); a handler that used it to change who the
    caller is (a redeemed setup code) calls this again with ``allow_bootstrap=False``.
    Forbidden and unknown commands get the same answer, so a refusal never reveals which
    commands exist above the caller's role.
    """
    spec = ctx.spec
    assert spec is not None
    ctx.via_bootstrap = None
    if spec.level == 0:
        return
    if ctx.actor is not None and ctx.actor.locked:
        raise refusal(ctx, "refuse.locked", "denied_locked")
    if ctx.actor is not None and ctx.actor.level >= spec.level:
        return
    if allow_bootstrap and await bootstrap_open(ctx, spec):
        ctx.via_bootstrap = spec.bootstrap.name  # type: ignore[union-attr]
        ctx.audit_params["via"] = ctx.via_bootstrap
        return
    if ctx.actor is None:
        raise refusal(ctx, "refuse.unlinked", "denied_unlinked")
    raise refusal(ctx, "refuse.denied", "denied_role")


async def check_exposed(ctx: Context) -> None:
    """A private-only command typed in a group *with* its secret arguments (a password, a
    code): the group has seen them — every member's app received the message, and it
    stays readable where the bot could not delete it — so they are exposed. The spec's
    ``on_exposed`` deals with that (e.g. forces a password change); the refusal says
    truthfully whether the message is gone. Runs before :func:`check_private`. Where
    nobody else saw the input (a DM; a Slack slash command, whose text the channel never
    sees) nothing is exposed: :func:`check_private` alone refuses it."""
    spec = ctx.spec
    if spec is None or not spec.private_only or not ctx.input_exposed:
        return
    if not any(ctx.args.get(name) for name in spec.secret_args):
        return
    view = await spec.on_exposed(ctx) if spec.on_exposed is not None else None
    if view is not None:
        raise Halt(view, "refused_secret_exposed")
    key = "refuse.secret_visible" if ctx.secret_visible else "refuse.secret_seen"
    raise refusal(ctx, key, "refused_secret_exposed")


def check_private(ctx: Context) -> None:
    """``private_only`` specs run only in a private chat with the bot (a Slack DM with the
    app); the refusal says where that is on this surface."""
    if ctx.spec is not None and ctx.spec.private_only and not ctx.chat_private:
        where = ctx.t(f"refuse.private_where.{ctx.surface}")
        raise refusal(ctx, "refuse.private_only", "refused_private_only", where=where)


def check_args(ctx: Context) -> None:
    spec = ctx.spec
    assert spec is not None
    bad = ctx.input_problem
    if bad is not None:
        raise refusal(ctx, f"refuse.input.{bad.code}", "refused_input", max=bad.limit)
    if spec.bad_params(ctx.params):
        # a button whose server-side params break the spec's declared rule (stale, forged,
        # or a view's bug): nothing runs
        raise refusal(ctx, "refuse.param", "refused_param")
    if ctx.invocation is not None and ctx.invocation.is_press:
        return
    if spec.missing_args(ctx.args) or spec.bad_choices(ctx.args):
        usage = getattr(spec, "usage", lambda: spec.id)()
        raise refusal(ctx, "refuse.usage", "refused_usage", usage=usage)


# -- step-up ----------------------------------------------------------------------------


def _pending_key(ctx: Context) -> str:
    return f"stepup:pending:{ctx.surface}:{ctx.client.external_id}"


async def needs_step_up(ctx: Context) -> bool:
    """The spec always asks for a step-up, or its rule does for this request (e.g. any
    action against another admin: ``Spec.step_up_if``)."""
    spec = ctx.spec
    if spec is None:
        return False
    return spec.step_up or (spec.step_up_if is not None and await spec.step_up_if(ctx))


async def step_up(ctx: Context, resume: dict[str, Any] | None = None) -> None:
    """Require a recent TOTP step-up; park the request so a correct code resumes it."""
    if not await needs_step_up(ctx):
        return
    assert ctx.actor is not None  # authorize() ran first: step-up specs are never public
    if await auth.is_elevated(ctx.services, ctx.actor.user_id):
        ctx.elevated = True
        return
    if not ctx.actor.totp_enabled:
        raise refusal(ctx, "stepup.not_enrolled", "stepup_unavailable")
    await ctx.services.cache.set(
        _pending_key(ctx),
        {
            "invocation": ctx.invocation.to_dict() if ctx.invocation else None,
            "chat_id": ctx.chat_id,
            "chat_private": ctx.chat_private,
            "thread_id": getattr(ctx.responder, "thread_id", None),  # a forum topic
            "resume": resume or {},
        },
        ttl=PENDING_TTL_S,
    )
    # only Telegram's StepUp layer writes to the user privately from a group; elsewhere the
    # surface hint says where to send the code
    group = not ctx.chat_private and ctx.surface == "telegram"
    key = "stepup.prompt_group" if group else "stepup.prompt_private"
    view = View(
        blocks=[Alert("warning", ctx.t(key, surface_hint=ctx.t(f"stepup.how.{ctx.surface}")))]
    )
    raise Halt(context_help.add_learn_more(ctx, view, key), "stepup_required")


async def has_pending_step_up(ctx: Context) -> bool:
    return await ctx.services.cache.get(_pending_key(ctx)) is not None


async def drop_step_up(ctx: Context) -> None:
    """Forget the parked request: a code sent later must not run it."""
    await ctx.services.cache.delete(_pending_key(ctx))


async def complete_step_up(ctx: Context, code: str) -> tuple[View, dict[str, Any] | None]:
    """Check ``code``; on success return the parked request (to be run again, re-authorized)."""
    if ctx.actor is None:
        raise refusal(ctx, "refuse.unlinked", "denied_unlinked")
    if ctx.actor.locked:
        raise refusal(ctx, "refuse.locked", "denied_locked")
    result = await auth.verify_step_up(ctx.services, ctx.actor.user_id, code)
    await audit_log.record(
        ctx.services,
        actor=ctx.actor_label,
        actor_user_id=ctx.actor.user_id,
        surface=ctx.surface,
        action="stepup",
        params={"code": code},
        result="ok" if result.ok else f"failed_{result.reason}",
    )
    if not result.ok:
        key = f"stepup.{result.reason}"
        return View(blocks=[Alert("error", ctx.t(key, minutes=result.retry_after_s // 60))]), None
    pending = await ctx.services.cache.pop(_pending_key(ctx))
    minutes = int(auth.ELEVATION_TTL_S // 60)
    return View(blocks=[Alert("success", ctx.t("stepup.ok", minutes=minutes))]), pending


# -- confirmation -----------------------------------------------------------------------


async def confirm(ctx: Context) -> None:
    """Destructive specs show an explicit confirmation first; the Confirm button carries
    the same request (single use) with ``confirmed`` set, and is authorized again."""
    spec, inv = ctx.spec, ctx.invocation
    assert spec is not None and inv is not None
    if not spec.confirm or inv.confirmed:
        return
    text = await spec.confirm_text(ctx) if spec.confirm_text else ctx.t("confirm.generic")
    view = View(
        title=ctx.t("confirm.title"),
        blocks=[Alert("warning", text)],
        buttons=[
            [
                Button(
                    ctx.t("confirm.yes"),
                    action=spec.id,
                    params=dict(inv.params),
                    args_text=inv.args_text,
                    confirmed=True,
                    once=True,
                    style="danger",
                ),
                Button(ctx.t("confirm.no"), action="cancel", once=True),
            ]
        ],
        # A button that must leave its message in place (an alert everyone reads) asks
        # in a new message instead of replacing the one pressed.
        edit=inv.is_press and not inv.params.get(KEEP_MESSAGE),
    )
    raise Halt(view, "confirm_asked")


# -- execute / audit ---------------------------------------------------------------------


async def execute(ctx: Context) -> View | None:
    """Run the handler; its View gets the screen's ❓ Help or an error's 📘 Learn more
    (:func:`chatops.context_help.decorate`), the same on every surface."""
    assert ctx.spec is not None
    return context_help.decorate(ctx, await ctx.spec.handler(ctx))


def error_view(ctx: Context) -> View:
    view = View(blocks=[Alert("error", ctx.t("error.internal"))])
    return context_help.add_learn_more(ctx, view, "error.internal")


async def audit(ctx: Context, result: str, detail: str | None = None) -> None:
    """One row per request; successful runs of ``audit=False`` specs are skipped."""
    spec = ctx.spec
    if spec is not None and not spec.audit and result == "ok":
        return
    params: dict[str, Any] = {}
    if ctx.invocation is not None:
        params.update(ctx.args if ctx.args else {})
        if ctx.invocation.params:
            params.update(ctx.invocation.params)
        if ctx.invocation.is_press:
            params["press"] = True
        if ctx.invocation.confirmed:
            params["confirmed"] = True
    params.update(ctx.audit_params)
    action = spec.id if spec else (ctx.invocation.spec_id if ctx.invocation else "message")
    try:
        await audit_log.record(
            ctx.services,
            actor=ctx.actor_label,
            actor_user_id=ctx.actor.user_id if ctx.actor else None,
            surface=ctx.surface,
            action=action[:64],
            target=ctx.target or (f"chat:{ctx.chat_id}" if ctx.chat_id else None),
            params=params,
            result=result,
            detail=detail,
            secret_names=spec.secret_args if spec else None,
        )
    except Exception:  # an audit failure must be loud, but must not hide the reply
        log.exception("audit write failed for %s", action)


async def stages(
    ctx: Context, invocation: Invocation, resume: dict[str, Any] | None = None
) -> View | None:
    """Every stage from bind to execute; raises :class:`Halt` when a stage stops it."""
    bind(ctx, invocation)
    check_parts(ctx)
    await authorize(ctx)
    await check_exposed(ctx)
    check_private(ctx)
    check_args(ctx)
    await step_up(ctx, resume)
    await confirm(ctx)
    return await execute(ctx)


async def run(
    ctx: Context, invocation: Invocation, resume: dict[str, Any] | None = None
) -> tuple[View | None, str]:
    """All stages plus the audit row (Slack, step-up resumption); returns (view, result)."""
    result, detail = "ok", None
    try:
        view = await stages(ctx, invocation, resume)
    except Halt as halt:
        view, result, detail = halt.view, halt.result, halt.detail
    except Exception as exc:
        log.exception("command %s failed", invocation.spec_id)
        halt = failure(ctx, exc)
        view, result, detail = halt.view, halt.result, halt.detail
    if result != "hint":
        await audit(ctx, result, detail)
    return view, result


def notice_view(ctx: Context, key: str, **kwargs: Any) -> View:
    return View(blocks=[Text(ctx.t(key, **kwargs))])
