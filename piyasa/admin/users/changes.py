"""Single-user changes — role, lock, passwords, MFA, sessions, delete — each through
:func:`piyasa.admin.users.rules._change`, so the safety rules hold for every one."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import auth, passwords
from piyasa.admin.notify import producers
from piyasa.admin.users.model import API_KEY_PREFIX, CLI, Actor, UserError, check_password
from piyasa.admin.users.rules import _change, _load, _record
from piyasa.db.models import ROLES, ApiKey, User
from piyasa.services import Services

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
