"""`/channels` (list the email / webhook / Apprise channels, [Test] and [Remove] each) and
`/addchannel` (configure one), over :mod:`piyasa.admin.notify.destinations`.

Admins only: a channel decides where alerts go. `/addchannel` takes the options as
``NAME=VALUE`` words, which may hold a password, a webhook secret or an Apprise URL with a
token, so it runs only in a private chat, the message is deleted and the audit masks it
(the registry's ``secret`` argument). A configuration that cannot work — an unknown
option, a webhook URL that is not http(s), an SMTP host that does not answer — is
refused with the channel's own words about the fix, in the reader's language, and
nothing is saved. [Test] sends a test notification through the real channel and says
whether the far end took it.
"""

from __future__ import annotations

import re

from chatops.commands.registry import Arg, command
from chatops.context import Context
from chatops.views import Button, Text, View
from piyasa.admin.notify import destinations, outbox
from piyasa.admin.notify.channels.base import KINDS
from piyasa.admin.notify.rules import NotifyError
from piyasa.admin.notify.service import default_channel_factory


def _say(ctx: Context, problem: object) -> str:
    """A channel's problem in the reader's language (its English text when untranslatable)."""
    key = getattr(problem, "catalog_key", None)
    return ctx.t(key, **problem.params) if key else str(problem)  # type: ignore[attr-defined]


def _error(ctx: Context, exc: NotifyError) -> View:
    problems = exc.params.get("problems")
    if exc.code == "bad_channel" and problems:
        reason = "; ".join(_say(ctx, p) for p in problems)
        return View.message(
            ctx.t("alerts.error.bad_channel", value=exc.params.get("value", ""), reason=reason),
            level="error",
        )
    return View.message(ctx.t(f"alerts.error.{exc.code}", **exc.params), level="error")


async def _list(ctx: Context, notice: View | None = None) -> View:
    rows = await destinations.channels(ctx.services)
    view = View(title=ctx.t("alerts.channels.title"))
    if notice is not None:
        view.blocks.extend(notice.blocks)
    lines = [
        ctx.t(
            "alerts.channels.line",
            name=r.name,
            kind=r.kind,
            state=ctx.t("alerts.channels.on" if r.enabled else "alerts.channels.off"),
            config=", ".join(f"{k}={v}" for k, v in sorted(r.config.items())),
        )
        for r in rows
    ]
    view.add(Text("\n".join(lines) or ctx.t("alerts.channels.empty")))
    view.add(Text(ctx.t("alerts.channels.usage"), style="italic"))
    for r in rows[:20]:
        view.row(
            Button(ctx.t("alerts.channels.test", name=r.name), "channels.test", {"name": r.name}),
            Button(
                ctx.t("alerts.channels.remove", name=r.name), "channels.remove", {"name": r.name}
            ),
        )
    return view


@command("channels", role="admin", order=39)
async def channels(ctx: Context) -> View:
    return await _list(ctx)


def _name(ctx: Context) -> str:
    return str(ctx.params.get("name") or "")


@channels.action("test", role="admin")
async def channels_test(ctx: Context) -> View:
    """Send a test notification through the channel now and say what the far end said."""
    from chatops import i18n

    name = _name(ctx)
    ctx.target = f"channel:{name}"
    try:
        channel = await destinations.build(ctx.services, name, default_channel_factory)
    except NotifyError as exc:
        return _error(ctx, exc)
    except ValueError as exc:  # a stored configuration this version refuses
        error = _say(ctx, getattr(exc, "problem", None) or str(exc))
        return View.message(
            ctx.t("alerts.channels.test_failed", name=name, error=error), level="error"
        )
    try:
        await channel.send(outbox.outgoing([], ctx.lang, "test", i18n.t))
    except Exception as exc:
        ctx.audit_params["error"] = outbox.error_text(exc)
        reason = getattr(exc, "reason", None)
        error = _say(ctx, reason) if reason is not None else outbox.error_text(exc)
        return View.message(
            ctx.t("alerts.channels.test_failed", name=name, error=error), level="error"
        )
    return View.message(ctx.t("alerts.channels.test_sent", name=name), level="success")


async def _confirm_remove(ctx: Context) -> str:
    return ctx.t("alerts.channels.confirm_remove", name=_name(ctx))


@channels.action("remove", role="admin", confirm=True, confirm_text=_confirm_remove)
async def channels_remove(ctx: Context) -> View:
    name = _name(ctx)
    ctx.target = f"channel:{name}"
    try:
        await destinations.remove_channel(ctx.services, name)
    except NotifyError as exc:
        return _error(ctx, exc)
    done = View.message(ctx.t("alerts.channels.removed", name=name), level="success")
    return await _list(ctx, done)


def parse_options(text: str) -> dict[str, str]:
    """``host=smtp.example.com port=587 "from=Piyasa <p@example.com>"`` -> options;
    NotifyError ``bad_option`` for a word that is not ``NAME=VALUE``. A value may be
    quoted to hold spaces."""
    out: dict[str, str] = {}
    for m in re.finditer(r'"([^"]*)"|(\S+)', text or ""):
        word = m.group(1) if m.group(1) is not None else m.group(2)
        key, eq, value = word.partition("=")
        if not eq or not key.strip():
            raise NotifyError("bad_option", f"{word!r} is not NAME=VALUE", value=word[:40])
        out[key.strip().lower()] = value.strip()
    return out


@command(
    "addchannel",
    role="admin",
    order=40,
    private_only=True,
    args=(
        Arg("name", required=True),
        Arg("kind", required=True, choices=KINDS),
        Arg("options", rest=True, secret=True),
    ),
)
async def addchannel(ctx: Context) -> View:
    name, kind = ctx.args.get("name", ""), ctx.args.get("kind", "").lower()
    try:
        config = parse_options(ctx.args.get("options", ""))
        await destinations.add_channel(ctx.services, name, kind, config, default_channel_factory)
    except NotifyError as exc:
        return _error(ctx, exc)
    ctx.target = f"channel:{name.strip().lower()}"
    done = View.message(ctx.t("alerts.channels.added", name=name.strip().lower()), level="success")
    return await _list(ctx, done)
