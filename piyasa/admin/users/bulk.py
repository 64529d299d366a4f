"""Bulk actions on many users: a plan shown before confirming, then one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import auth
from piyasa.admin.users.model import BULK_OPS, Actor, UserError
from piyasa.admin.users.rules import (
    _active_admins,
    _assert_admin_remains,
    _lock_admins,
    _record,
    _snapshot,
)
from piyasa.db.models import ROLES, User
from piyasa.services import Services

# -- bulk actions ---------------------------------------------------------------------------


@dataclass
class BulkPlan:
    """Who a bulk action affects, and who it skips and why (shown before confirming)."""

    op: str
    role: str | None
    affected: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (username, reason code)


def _plan(actor: Actor, op: str, role: str | None, users: Iterable[User], admins: int) -> BulkPlan:
    plan = BulkPlan(op, role)
    admins_left = admins
    for user in sorted(users, key=lambda u: u.username):
        if (op == "lock" and user.locked) or (op == "unlock" and not user.locked):
            plan.skipped.append((user.username, "unchanged"))
            continue
        if op == "role" and user.role == role:
            plan.skipped.append((user.username, "unchanged"))
            continue
        if op != "unlock" and actor.user_id is not None and user.id == actor.user_id:
            plan.skipped.append((user.username, "self"))
            continue
        removes_admin = user.role == "admin" and not user.locked and op != "unlock"
        if removes_admin:
            if admins_left <= 1:
                plan.skipped.append((user.username, "last_admin"))
                continue
            admins_left -= 1
        plan.affected.append(user.username)
    return plan


async def _bulk_users(session: AsyncSession, ids: Iterable[int]) -> list[User]:
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    return list((await session.scalars(select(User).where(User.id.in_(wanted)))).all())


async def bulk_preview(
    services: Services, actor: Actor, op: str, ids: Iterable[int], role: str | None = None
) -> BulkPlan:
    if op not in BULK_OPS or (op == "role" and role not in ROLES):
        raise UserError(f"unknown bulk action {op!r}", "bad_bulk")
    async with services.sessions() as session:
        users = await _bulk_users(session, ids)
        return _plan(actor, op, role, users, await _active_admins(session))


async def bulk_apply(
    services: Services, actor: Actor, op: str, ids: Iterable[int], role: str | None = None
) -> BulkPlan:
    """Plan again on the current state, apply to the affected users in one transaction
    (the last-admin rule is re-checked before commit), audit each change."""
    if op not in BULK_OPS or (op == "role" and role not in ROLES):
        raise UserError(f"unknown bulk action {op!r}", "bad_bulk")
    befores: dict[str, dict[str, Any]] = {}
    async with services.sessions() as session, session.begin():
        await _lock_admins(session)
        users = await _bulk_users(session, ids)
        admins = await _active_admins(session)
        plan = _plan(actor, op, role, users, admins)
        for user in users:
            if user.username not in plan.affected:
                continue
            befores[user.username] = _snapshot(user)
            if op == "lock":
                user.locked = True
                await auth.end_elevation(session, user.id)
            elif op == "unlock":
                user.locked = False
                user.failed_logins = 0
            elif op == "role":
                user.role = role  # type: ignore[assignment]
            else:
                await session.delete(user)
        await _assert_admin_remains(session, admins)
        afters = {u.username: _snapshot(u) for u in users if u.username in befores}
    action = {"lock": "user.lock", "unlock": "user.unlock", "role": "user.role"}.get(
        op, "user.delete"
    )
    for name, before in befores.items():
        after = None if op == "delete" else afters[name]
        changed = {k: v for k, v in before.items() if after is None or after[k] != v}
        await _record(
            services,
            actor,
            action,
            name,
            before=changed,
            after={k: after[k] for k in changed} if after else None,
            bulk=True,
        )
    return plan
