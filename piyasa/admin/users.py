"""User management: the one service behind /users, /adduser, the user card, bulk actions and
the break-glass ``piyasa user`` CLI.

Every change goes through here, so the safety rules hold on every surface:

* the last active (unlocked) admin can never be demoted, locked or deleted — checked inside
  the same transaction as the change, after locking the admin rows on PostgreSQL, so two
  admins demoting each other at once cannot both succeed;
* nobody locks themselves out: no self lock, self delete, self role change, self
  "terminate all", nor unlinking the chat account one is using right now;
* every change writes an audit row with ``before`` and ``after``; refusals are audited too;
* every change applies on the very next request of every process: database triggers move
  the principals version in the changing transaction (``piyasa.db.principals``), and a
  step-up elevation is ended in the same transaction as the lock, reset or revoke.

Secrets this module creates (temporary passwords, API keys, TOTP seeds) are returned to the
caller exactly once and never logged or audited.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import audit, auth, passwords
from piyasa.admin.notify import producers
from piyasa.db.models import ROLES, ApiKey, Identity, User
from piyasa.errors import UserFacingError
from piyasa.services import Services

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


# -- the card ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityInfo:
    id: int
    provider: str
    external_id: str
    display_name: str | None
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Card:
    id: int
    username: str
    role: str
    locked: bool
    must_change: bool
    has_password: bool
    mfa: str  # "on" | "pending" | "off"
    language: str | None
    created_at: datetime
    last_login_at: datetime | None
    ok_logins: int
    last_seen_at: datetime | None  # last chat use (piyasa.admin.activity)
    active_days: int  # UTC days with chat use
    failures: passwords.FailureStats
    identities: tuple[IdentityInfo, ...]
    api_keys: tuple[ApiKeyInfo, ...]
    elevated_until: datetime | None

    def as_json(self) -> dict:
        def ts(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "locked": self.locked,
            "must_change_password": self.must_change,
            "has_password": self.has_password,
            "mfa": self.mfa,
            "language": self.language,
            "created_at": ts(self.created_at),
            "last_login_at": ts(self.last_login_at),
            "login_count": self.ok_logins,
            "last_seen_at": ts(self.last_seen_at),
            "active_days": self.active_days,
            "failed_logins": {
                "streak": self.failures.streak,
                "last_hour": self.failures.last_hour,
                "last_failed_at": ts(self.failures.last_failed_at),
                "retry_after_s": self.failures.retry_after_s,
            },
            "identities": [
                {
                    "id": i.id,
                    "provider": i.provider,
                    "external_id": i.external_id,
                    "display_name": i.display_name,
                    "linked_at": ts(i.created_at),
                }
                for i in self.identities
            ],
            "api_keys": [
                {
                    "id": k.id,
                    "prefix": k.prefix,
                    "name": k.name,
                    "created_at": ts(k.created_at),
                    "last_used_at": ts(k.last_used_at),
                }
                for k in self.api_keys
            ],
            "elevated_until": ts(self.elevated_until),
        }


async def _load(session: AsyncSession, ref: int | str) -> User:
    if isinstance(ref, int):
        user = await session.get(User, ref)
    else:
        user = await session.scalar(select(User).where(User.username == str(ref).strip().lower()))
    if user is None:
        raise UserError(f"no user {ref!r}; see `piyasa user list`", "no_user", ref=str(ref))
    return user


async def card(services: Services, ref: int | str) -> Card:
    """Everything the user card shows; ``ref`` is an id or a username."""
    async with services.sessions() as session:
        user = await _load(session, ref)
        keys = (
            await session.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.id)
            )
        ).all()
    elevated_until = await auth.elevated_until(services, user.id)
    mfa = "on" if user.totp_enabled else ("pending" if user.totp_secret_encrypted else "off")
    return Card(
        id=user.id,
        username=user.username,
        role=user.role,
        locked=user.locked,
        must_change=user.must_change_password,
        has_password=bool(user.password_hash),
        mfa=mfa,
        language=user.language,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        ok_logins=user.ok_logins,
        last_seen_at=user.last_seen_at,
        active_days=user.active_days or 0,
        failures=await passwords.failure_stats(services, user),
        identities=tuple(
            IdentityInfo(i.id, i.provider, i.external_id, i.display_name, i.created_at)
            for i in sorted(user.identities, key=lambda i: i.id)
        ),
        api_keys=tuple(
            ApiKeyInfo(k.id, k.prefix, k.name, k.created_at, k.last_used_at) for k in keys
        ),
        elevated_until=elevated_until,
    )


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


# -- single-user changes ------------------------------------------------------------------


async def set_role(services: Services, actor: Actor, ref: int | str, role: str) -> str:
    """Change the role; returns the username."""
    if role not in ROLES:
        raise UserError(f"role {role!r} is not valid; use one of: {', '.join(ROLES)}", "bad_role")

    async def apply(_s: AsyncSession, user: User) -> str:
        before, user.role = user.role, role
        return before

    name, _uid, was = await _change(
        services, actor, ref, "user.role", apply, admin_check=True, self_what="change the role of"
    )
    if role == "admin" and was != "admin":
        producers.security(services.extras, "new_admin", name, actor.name)
    return name


async def set_locked(services: Services, actor: Actor, ref: int | str, locked: bool) -> str:
    """Lock (which also ends the user's step-up elevation) or unlock."""

    async def apply(session: AsyncSession, user: User) -> None:
        user.locked = locked
        if locked:
            await auth.end_elevation(session, user.id)
        else:
            user.failed_logins = 0  # an unlock also clears the failure streak

    what = "lock" if locked else None
    name, _uid, _ = await _change(
        services,
        actor,
        ref,
        "user.lock" if locked else "user.unlock",
        apply,
        admin_check=locked,
        self_what=what,
    )
    if locked:
        producers.security(services.extras, "lockout", name, actor.name)
    return name


async def reset_password(services: Services, actor: Actor, ref: int | str) -> tuple[str, str]:
    """A new temporary password (returned once) that must be changed at next use."""
    from piyasa.admin import issue  # it builds on this module

    issued = await issue.temp_password(services, actor, ref)
    return issued.username, issued.secret


async def set_must_change(
    services: Services, actor: Actor, ref: int | str, value: bool = True
) -> str:
    async def apply(_s: AsyncSession, user: User) -> None:
        user.must_change_password = value

    name, _uid, _ = await _change(services, actor, ref, "user.force_password_change", apply)
    return name


async def set_password(
    services: Services, actor: Actor, ref: int | str, password: str, *, must_change: bool = False
) -> str:
    """Set a chosen password (break-glass CLI, or the user's own change)."""
    async with services.sessions() as session:
        name = (await _load(session, ref)).username
    check_password(password, name)
    digest = auth.hash_password(password)

    async def apply(_s: AsyncSession, user: User) -> None:
        user.password_hash = digest
        user.must_change_password = must_change
        user.failed_logins = 0

    await _change(services, actor, ref, "user.password_set", apply)
    return name


async def change_own_password(
    services: Services, actor: Actor, username: str, current: str, new: str
) -> passwords.LoginResult:
    """The user changes their password: the current one is checked (throttled) first."""
    result = await passwords.check_login(services, username, current, surface=actor.surface)
    if not result.ok:
        return result
    check_password(new, username)
    if new == current:
        raise UserError("the new password must differ from the current one", "password_same")
    await set_password(services, actor, username, new)
    return result


# -- MFA ------------------------------------------------------------------------------------


async def mfa_begin(services: Services, user_id: int) -> tuple[str, str]:
    """A fresh TOTP seed for the user to scan (not active until proven); returns
    (seed, otpauth URI). Refused when MFA is already on: reset it first."""
    from piyasa.admin import issue  # it builds on this module

    issued = await issue.totp_seed(services, CLI, user_id)
    return issued.secret, issued.extra["uri"]


async def mfa_request(services: Services, actor: Actor, ref: int | str) -> str:
    """Mark an enrolment as pending: the user then runs /mfa to scan and prove a code."""

    async def apply(_s: AsyncSession, user: User) -> None:
        if user.totp_enabled:
            raise UserError("two-factor authentication is already on", "mfa_on")
        # a placeholder seed nobody has seen marks the enrolment as requested
        user.totp_secret_encrypted = services.box.encrypt(auth.new_totp_secret())

    name, _uid, _ = await _change(services, actor, ref, "user.mfa_request", apply)
    return name


async def mfa_confirm(services: Services, actor: Actor, user_id: int, code: str) -> bool:
    """Activate the pending seed when ``code`` proves the user has it."""
    async with services.sessions() as session, session.begin():
        user = await _load(session, user_id)
        if user.totp_enabled or not user.totp_secret_encrypted:
            return False
        step = auth.matching_step(services.box.decrypt(user.totp_secret_encrypted), code)
        if step is None:
            ok = False
        else:
            user.totp_enabled = True
            user.totp_last_step = step
            ok = True
        name = user.username
    await _record(
        services,
        actor,
        "user.mfa_enrol",
        name,
        "ok" if ok else "failed_invalid",
        before={"mfa": False},
        after={"mfa": ok},
    )
    if ok:
        producers.security(services.extras, "totp_enrolled", name, actor.name)
    return ok


async def mfa_reset(services: Services, actor: Actor, ref: int | str) -> str:
    async def apply(session: AsyncSession, user: User) -> None:
        user.totp_enabled = False
        user.totp_secret_encrypted = None
        user.totp_last_step = None
        await auth.end_elevation(session, user.id)

    name, _uid, _ = await _change(services, actor, ref, "user.mfa_reset", apply)
    producers.security(services.extras, "mfa_reset", name, actor.name)
    return name


# -- sessions: identities, elevations, API keys -----------------------------------------------


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


async def regenerate_api_key(
    services: Services, actor: Actor, ref: int | str, name: str | None = None
) -> tuple[str, str, str]:
    """Revoke the user's active keys and make a new one; returns (username, key, prefix).
    Only the key's hash and its first characters are stored."""
    from piyasa.admin import issue  # it builds on this module

    issued = await issue.api_key(services, actor, ref, name)
    return issued.username, issued.secret, issued.extra["prefix"]


async def revoke_api_key(services: Services, actor: Actor, ref: int | str, key_id: int) -> str:
    async def apply(session: AsyncSession, user: User) -> None:
        result = await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if not result.rowcount:
            raise UserError("that API key is already revoked or unknown", "gone")

    name, _uid, _ = await _change(services, actor, ref, "user.api_key_revoke", apply)
    return name


async def unlink_identity(
    services: Services, actor: Actor, ref: int | str, identity_id: int
) -> str:
    async def apply(session: AsyncSession, user: User) -> None:
        ident = next((i for i in user.identities if i.id == identity_id), None)
        if ident is None:
            raise UserError("that chat account is no longer linked", "gone")
        if actor.identity == (ident.provider, ident.external_id):
            raise UserError(
                "you cannot unlink the chat account you are using (that would lock you out)",
                "self",
            )
        user.identities.remove(ident)

    name, _uid, _ = await _change(services, actor, ref, "user.unlink", apply)
    return name


async def revoke_elevation(services: Services, actor: Actor, ref: int | str) -> str:
    async with services.sessions() as session:
        user = await _load(session, ref)
    had = await auth.revoke_elevation(services, user.id)
    await _record(services, actor, "user.elevation_revoke", user.username, revoked=had)
    return user.username


async def terminate_all(services: Services, actor: Actor, ref: int | str) -> str:
    """Unlink every chat account, revoke every API key and the step-up elevation."""

    async def apply(session: AsyncSession, user: User) -> dict[str, int]:
        n_ids = len(user.identities)
        user.identities.clear()
        result = await session.execute(
            update(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        await auth.end_elevation(session, user.id)
        return {"identities": n_ids, "api_keys": int(result.rowcount or 0)}

    name, _uid, counts = await _change(
        services, actor, ref, "user.terminate_all", apply, self_what="end every session of"
    )
    await _record(services, actor, "user.sessions_ended", name, **counts)
    return name


async def delete_user(services: Services, actor: Actor, ref: int | str) -> str:
    async def apply(session: AsyncSession, user: User) -> None:
        await session.delete(user)

    name, _uid, _ = await _change(
        services,
        actor,
        ref,
        "user.delete",
        apply,
        admin_check=True,
        self_what="delete",
        deleting=True,
    )  # the elevation row goes with the user (ON DELETE CASCADE)
    return name


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


async def _active_admins(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.locked.is_(False))
        )
        or 0
    )


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
