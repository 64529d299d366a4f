"""What the user service speaks in: its limits, its error, who acts, and a user's summary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piyasa.admin import passwords
from piyasa.db.models import User
from piyasa.errors import UserFacingError

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LEN = passwords.MIN_LENGTH
SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,20}$")
STATUSES = ("active", "locked", "must_change", "mfa_on", "mfa_off")
SORTS = ("name", "created", "last_seen", "last_login")
PAGE_SIZES = (10, 25, 50)
BULK_OPS = ("lock", "unlock", "role", "delete")
API_KEY_PREFIX = "pk_"


class UserError(UserFacingError):
    """A user-management request that cannot be done; the message says why and what to do.

    ``code`` names the reason for surfaces that translate it (``users.err.<code>``)."""

    def __init__(self, message: str, code: str = "error", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a linked chat user (with the account they use) or the CLI."""

    name: str = "cli"
    user_id: int | None = None
    surface: str = "cli"
    identity: tuple[str, str] | None = None  # (provider, external_id) in use right now


CLI = Actor()


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
    last_seen_at: datetime | None = None

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
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
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
        last_seen_at=user.last_seen_at,
    )


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise UserError(
            f"username {username!r} is not valid: 2-32 characters, lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. ayse.yilmaz)",
            "bad_username",
        )
    return name


def check_password(password: str, username: str | None = None) -> None:
    """Raise a UserError naming the policy problem, if any."""
    reason = passwords.problem(password, username)
    if reason:
        raise UserError(passwords.PROBLEM_TEXT[reason], f"password_{reason}")
