"""User management service. For now: what the break-glass CLI needs (add, list, link code);
the full management (roles, locks, MFA, API keys, bulk actions) builds on this module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from piyasa.admin import audit
from piyasa.admin.auth import hash_password
from piyasa.admin.identity import create_link_code
from piyasa.admin.identity import users_changed as identity_users_changed
from piyasa.db.models import ROLES, Identity, User
from piyasa.errors import UserFacingError
from piyasa.services import Services

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LEN = 12
SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,20}$")


class UserError(UserFacingError):
    """A user-management request that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str
    locked: bool
    has_password: bool
    mfa: bool
    telegram_ids: tuple[str, ...]
    slack_ids: tuple[str, ...]
    created_at: datetime
    last_login_at: datetime | None

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "locked": self.locked,
            "has_password": self.has_password,
            "mfa": self.mfa,
            "telegram_ids": list(self.telegram_ids),
            "slack_ids": list(self.slack_ids),
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


def _info(user: User) -> UserInfo:
    return UserInfo(
        id=user.id,
        username=user.username,
        role=user.role,
        locked=user.locked,
        has_password=bool(user.password_hash),
        mfa=user.totp_enabled,
        telegram_ids=tuple(i.external_id for i in user.identities if i.provider == "telegram"),
        slack_ids=tuple(i.external_id for i in user.identities if i.provider == "slack"),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise UserError(
            f"username {username!r} is not valid: 2-32 characters, lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. ayse.yilmaz)"
        )
    return name


async def add_user(
    services: Services,
    username: str,
    role: str,
    *,
    password: str | None = None,
    telegram_id: int | None = None,
    slack_id: str | None = None,
    actor: str = "cli",
    surface: str = "cli",
) -> UserInfo:
    """Create a user, optionally linked to chat accounts; refuses duplicates clearly."""
    name = validate_username(username)
    if role not in ROLES:
        raise UserError(f"role {role!r} is not valid; use one of: {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_LEN} characters")
    if slack_id is not None and not SLACK_ID_RE.match(slack_id):
        raise UserError(f"{slack_id!r} is not a Slack user id (it looks like U0123ABCD)")
    user = User(
        username=name,
        role=role,
        password_hash=hash_password(password) if password else None,
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
            "see `piyasa user list`"
        ) from None
    await identity_users_changed(services)
    await audit.record(
        services,
        actor=actor,
        surface=surface,
        action="user.add",
        target=name,
        params={
            "role": role,
            "telegram_id": telegram_id,
            "slack_id": slack_id,
            "password": "set" if password else None,
        },
        result="ok",
    )
    return await get_user(services, name)


async def get_user(services: Services, username: str) -> UserInfo:
    async with services.sessions() as session:
        user = await session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UserError(f"no user named {username!r}; see `piyasa user list`")
    return _info(user)


async def list_users(services: Services) -> list[UserInfo]:
    async with services.sessions() as session:
        users = (await session.scalars(select(User).order_by(User.username))).all()
    return [_info(u) for u in users]


async def link_code_for(
    services: Services, username: str, *, actor: str = "cli", surface: str = "cli"
) -> str:
    """A one-time link code for ``username`` (10 minutes, single use)."""
    info = await get_user(services, username)
    code = await create_link_code(services, info.id)
    await audit.record(
        services,
        actor=actor,
        surface=surface,
        action="user.link_code",
        target=info.username,
        params={},
        result="ok",
    )
    return code
