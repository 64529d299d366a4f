"""Adding, finding and listing users: one by name, all of them, or a filtered page."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError

from piyasa.admin import audit, auth
from piyasa.admin.notify import producers
from piyasa.admin.users.model import (
    PAGE_SIZES,
    SLACK_ID_RE,
    Actor,
    UserError,
    UserInfo,
    _info,
    check_password,
    validate_username,
)
from piyasa.admin.users.rules import _record
from piyasa.db.models import ROLES, Identity, User
from piyasa.services import Services


async def add_user(
    services: Services,
    username: str,
    role: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
    must_change: bool = False,
    telegram_id: int | None = None,
    slack_id: str | None = None,
    actor: str | Actor = "cli",
    surface: str = "cli",
) -> UserInfo:
    """Create a user, optionally linked to chat accounts; refuses duplicates clearly.

    ``password_hash`` lets a dialog that hashed a typed password early (so the password
    itself never sat in the dialog state) hand over the hash instead."""
    who = actor if isinstance(actor, Actor) else Actor(actor, surface=surface)
    name = validate_username(username)
    if role not in ROLES:
        raise UserError(f"role {role!r} is not valid; use one of: {', '.join(ROLES)}", "bad_role")
    if password is not None:
        check_password(password, name)
    if slack_id is not None and not SLACK_ID_RE.match(slack_id):
        raise UserError(
            f"{slack_id!r} is not a Slack user id (it looks like U0123ABCD)", "bad_slack_id"
        )
    user = User(
        username=name,
        role=role,
        password_hash=hash_password_or(password, password_hash),
        must_change_password=must_change,
    )
    if telegram_id is not None:
        user.identities.append(Identity(provider="telegram", external_id=str(int(telegram_id))))
    if slack_id is not None:
        user.identities.append(Identity(provider="slack", external_id=slack_id))
    try:
        async with services.sessions() as session, session.begin():
            session.add(user)
    except IntegrityError:
        raise UserError(
            f"user {name!r} or one of the given chat accounts already exists; "
            "see `piyasa user list`",
            "exists",
            username=name,
        ) from None
    await _record(
        services,
        who,
        "user.add",
        name,
        before=None,
        after={
            "role": role,
            "must_change": must_change,
            "telegram_id": telegram_id,
            "slack_id": slack_id,
            "has_password": bool(password or password_hash),
        },
    )
    if role == "admin":
        producers.security(services.extras, "new_admin", name, who.name)
    return await get_user(services, name)


def hash_password_or(password: str | None, password_hash: str | None) -> str | None:
    if password:
        return auth.hash_password(password)
    return password_hash


async def get_user(services: Services, username: str) -> UserInfo:
    async with services.sessions() as session:
        user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"no user named {username!r}; see `piyasa user list`", "no_user")
    return _info(user)


async def list_users(services: Services) -> list[UserInfo]:
    async with services.sessions() as session:
        users = (await session.scalars(select(User).order_by(User.username))).all()
    return [_info(u) for u in users]


async def link_code_for(
    services: Services, username: str, *, actor: str = "cli", surface: str = "cli"
) -> str:
    """A one-time link code for ``username`` (10 minutes, single use)."""
    from piyasa.admin import issue  # it builds on this module

    return (await issue.link_code(services, Actor(actor, surface=surface), username)).secret


# -- the list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    role: str
    locked: bool
    must_change: bool
    mfa: bool
    created_at: datetime
    last_login_at: datetime | None
    last_seen_at: datetime | None  # last chat use (piyasa.admin.activity)

    @property
    def status(self) -> str:
        if self.locked:
            return "locked"
        return "must_change" if self.must_change else "active"


@dataclass(frozen=True)
class UserPage:
    rows: list[UserRow]
    total: int
    page: int
    pages: int
    per_page: int


def _filters(search: str, role: str | None, status: str | None) -> list[Any]:
    where: list[Any] = []
    if search and audit.UNSTORABLE_RE.search(search):
        where.append(false())  # no username holds a NUL (PostgreSQL cannot even compare one)
    elif search:
        where.append(User.username.contains(search.strip().lower(), autoescape=True))
    if role in ROLES:
        where.append(User.role == role)
    if status == "active":
        where.append(User.locked.is_(False))
    elif status == "locked":
        where.append(User.locked.is_(True))
    elif status == "must_change":
        where.append(User.must_change_password.is_(True))
    elif status == "mfa_on":
        where.append(User.totp_enabled.is_(True))
    elif status == "mfa_off":
        where.append(User.totp_enabled.is_(False))
    return where


async def query_users(
    services: Services,
    *,
    search: str = "",
    role: str | None = None,
    status: str | None = None,
    sort: str = "name",
    page: int = 1,
    per_page: int = 10,
) -> UserPage:
    """One page of users matching the filters (search is a substring of the username)."""
    per_page = per_page if per_page in PAGE_SIZES else PAGE_SIZES[0]
    where = _filters(search, role, status)
    order: list[Any]
    if sort == "created":
        order = [User.created_at.desc(), User.id.desc()]
    elif sort == "last_seen":
        order = [User.last_seen_at.desc().nulls_last(), User.username]
    elif sort == "last_login":
        order = [User.last_login_at.desc().nulls_last(), User.username]
    else:
        order = [User.username]
    cols = (
        User.id,
        User.username,
        User.role,
        User.locked,
        User.must_change_password,
        User.totp_enabled,
        User.created_at,
        User.last_login_at,
        User.last_seen_at,
    )
    async with services.sessions() as session:
        total = int(await session.scalar(select(func.count(User.id)).where(*where)) or 0)
        pages = max(1, math.ceil(total / per_page))
        page = min(max(1, int(page)), pages)
        stmt = select(*cols).where(*where).order_by(*order)
        stmt = stmt.limit(per_page).offset((page - 1) * per_page)
        rows = [UserRow(*r) for r in (await session.execute(stmt)).all()]
    return UserPage(rows=rows, total=total, page=page, pages=pages, per_page=per_page)


async def admins_among(
    services: Services, refs: Iterable[int | str], *, besides: int | None = None
) -> list[str]:
    """Usernames of the admin accounts (locked or not) among ``refs`` (ids or usernames),
    leaving out user id ``besides`` (the caller: acting on oneself is not acting on
    another admin)."""
    ids = {r for r in refs if isinstance(r, int)}
    names = {str(r).strip().lower() for r in refs if not isinstance(r, int)}
    if not ids and not names:
        return []
    stmt = select(User.username).where(
        User.role == "admin", User.id.in_(ids) | User.username.in_(names)
    )
    if besides is not None:
        stmt = stmt.where(User.id != besides)
    async with services.sessions() as session:
        return sorted((await session.scalars(stmt)).all())


async def user_ids(services: Services, usernames: Iterable[str]) -> dict[str, int]:
    names = [n.strip().lower() for n in usernames]
    async with services.sessions() as session:
        rows = (
            await session.execute(select(User.username, User.id).where(User.username.in_(names)))
        ).all()
    return {r.username: r.id for r in rows}
