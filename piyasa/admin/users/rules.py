"""The safety rules every change goes through: load, refuse self-harm, keep an active
admin, audit before/after (see :mod:`piyasa.admin.users`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import audit
from piyasa.admin.users.model import Actor, UserError
from piyasa.db.models import User
from piyasa.services import Services


async def _record(
    services: Services,
    actor: Actor,
    action: str,
    target: str,
    result: str = "ok",
    **params: Any,
) -> None:
    await audit.record(
        services,
        actor=actor.name,
        actor_user_id=actor.user_id,
        surface=actor.surface,
        action=action,
        target=target,
        params=params,
        result=result,
    )


async def _load(session: AsyncSession, ref: int | str) -> User:
    if isinstance(ref, int):
        user = await session.get(User, ref)
    else:
        user = await session.scalar(select(User).where(User.username == str(ref).strip().lower()))
    if user is None:
        raise UserError(f"no user {ref!r}; see `piyasa user list`", "no_user", ref=str(ref))
    return user


# -- safety rules -------------------------------------------------------------------------


def _refuse_self(actor: Actor, user: User, what: str) -> None:
    if actor.user_id is not None and actor.user_id == user.id:
        raise UserError(
            f"you cannot {what} your own account (that would lock you out); ask another admin",
            "self",
            what=what,
        )


async def _lock_admins(session: AsyncSession) -> None:
    """On PostgreSQL, serialize changes that could remove the last active admin."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            select(User.id).where(User.role == "admin", User.locked.is_(False)).with_for_update()
        )


async def _assert_admin_remains(session: AsyncSession, before: int) -> None:
    """Checked after the change, inside its transaction: raising rolls it back. A change
    that leaves no active admin where there was one is refused (a fresh install with no
    admin at all may still manage its other users)."""
    await session.flush()
    if before and not await _active_admins(session):
        raise UserError(
            "this would leave no active admin: promote or unlock another admin first",
            "last_admin",
        )


async def _refused(services: Services, actor: Actor, action: str, target: str, exc: UserError):
    await _record(services, actor, action, target, f"refused_{exc.code}"[:32])


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "locked": user.locked,
        "must_change": user.must_change_password,
        "mfa": user.totp_enabled,
    }


async def _change(
    services: Services,
    actor: Actor,
    ref: int | str,
    action: str,
    apply: Any,
    *,
    admin_check: bool = False,
    self_what: str | None = None,
    deleting: bool = False,
) -> tuple[str, int, Any]:
    """Load, check, ``apply(session, user)``, check again, commit, audit before/after;
    returns (username, user id, what ``apply`` returned)."""
    target = str(ref)
    try:
        async with services.sessions() as session, session.begin():
            admins = 0
            if admin_check:
                await _lock_admins(session)
                admins = await _active_admins(session)
            user = await _load(session, ref)
            target = user.username
            if self_what:
                _refuse_self(actor, user, self_what)
            before = _snapshot(user)
            user_id = user.id
            extra = await apply(session, user)
            after = None if deleting else _snapshot(user)
            if admin_check:
                await _assert_admin_remains(session, admins)
    except UserError as exc:
        if exc.code != "no_user":
            await _refused(services, actor, action, target, exc)
        raise
    changed_before = {k: v for k, v in before.items() if after is None or after.get(k) != v}
    changed_after = {k: after[k] for k in changed_before} if after is not None else None
    await _record(services, actor, action, target, before=changed_before, after=changed_after)
    return target, user_id, extra


async def _active_admins(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.locked.is_(False))
        )
        or 0
    )
