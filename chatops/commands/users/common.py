"""Shared pieces of the /users views: role and status cycles, time words, the actor, refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatops import i18n, timefmt
from chatops.context import Context
from chatops.views import Alert, View
from piyasa.admin import users as svc
from piyasa.db.models import ROLES

ROLE_CYCLE = (None, *ROLES)
STATUS_CYCLE = (None, *svc.STATUSES)
ROW = 2  # user buttons per keyboard row (thumb-sized on a phone)


# -- small helpers ------------------------------------------------------------------------


def ago(ctx: Context, when: datetime | None, now: datetime | None = None) -> str:
    """Relative, localized by Babel: "2 dk. önce" / "2 min. ago"; "never" for None."""
    if when is None:
        return ctx.t("users.never")
    return timefmt.ago(ctx.lang, when, now, just_now=ctx.t("users.ago.now"))


def actor_of(ctx: Context) -> svc.Actor:
    assert ctx.actor is not None
    return svc.Actor(
        name=ctx.actor.username,
        user_id=ctx.actor.user_id,
        surface=ctx.surface,
        identity=(ctx.client.provider, ctx.client.external_id),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def against_other_admin(ctx: Context) -> bool:
    """Step-up rule (``step_up_if``): the request changes an admin account other than the
    caller's — the card's ``id``, a bulk selection ``sel`` or a ``username`` argument. A
    hijacked admin chat account must not lock out, demote or take over the other admins
    with a confirmation alone."""
    sel = (_int(x) for x in ctx.params.get("sel") or [])
    refs: list[int | str] = [i for i in sel if i is not None]
    uid = _int(ctx.params.get("id"))
    if uid is not None:
        refs.append(uid)
    if ctx.args.get("username"):
        refs.append(ctx.args["username"])
    besides = ctx.actor.user_id if ctx.actor else None
    return bool(await svc.admins_among(ctx.services, refs, besides=besides))


def error_view(ctx: Context, exc: svc.UserError, view: View | None = None) -> View:
    """The service's refusal, in the caller's language; also noted in the audit row."""
    ctx.audit_params["outcome"] = exc.code
    key = f"users.err.{exc.code}"
    text = ctx.t(key, **exc.params) if i18n.has(key) else str(exc)
    view = view or View()
    view.blocks.insert(0, Alert("error", text))
    return view


def _prefix(ctx: Context) -> str:
    return "/piyasa " if ctx.surface == "slack" else "/"


# -- the list -------------------------------------------------------------------------------


def _list_state(ctx: Context) -> dict[str, Any]:
    p = dict(ctx.params)
    state = {
        "q": str(p.get("q") or ctx.args.get("search", "") or "")[:64],
        "r": p.get("r") if p.get("r") in ROLES else None,
        "s": p.get("s") if p.get("s") in svc.STATUSES else None,
        "o": p.get("o") if p.get("o") in svc.SORTS else "name",
        "n": p.get("n") if p.get("n") in svc.PAGE_SIZES else svc.PAGE_SIZES[0],
        "p": _int(p.get("page", p.get("p"))) or 1,
        "m": bool(p.get("m")),
        "sel": sorted({i for i in (_int(x) for x in p.get("sel") or []) if i is not None})[:200],
    }
    return state


def _next(cycle: tuple[Any, ...], value: Any) -> Any:
    return cycle[(cycle.index(value) + 1) % len(cycle)] if value in cycle else cycle[0]
