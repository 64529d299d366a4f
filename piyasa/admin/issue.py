"""One-time secrets for a user — a temporary password, an API key, a TOTP seed, a link
code, a new account with its link code — issued so that they can be taken back.

A chat surface shows such a secret exactly once, in a private message, and only learns
that the message failed *after* the secret exists. So every function here returns an
:class:`Issued` whose :meth:`Issued.undo` puts back what issuing changed — the previous
password hash and flags, the API keys it revoked, the previous TOTP state, the link code,
the new account — unless something else changed it since (each undo is a
compare-and-set on what this issue wrote), and audits that with result ``undone``.

The secrets themselves are returned to the caller only; they are never logged or audited.
Used by the chat commands (through :mod:`chatops.handover`) and by the ``piyasa user``
CLI (through the wrappers in :mod:`piyasa.admin.users`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import auth, passwords
from piyasa.admin import users as svc
from piyasa.admin.health.apikeys import hash_key
from piyasa.admin.identity import create_link_code, void_link_code
from piyasa.admin.identity import users_changed as identity_users_changed
from piyasa.admin.users import rules
from piyasa.db.models import ApiKey, User
from piyasa.services import Services

Undo = Callable[[], Awaitable[bool]]  # True when it put the old state back


@dataclass
class Issued:
    """A secret just created for ``username``; ``extra`` holds what is shown with it
    (a key prefix, an otpauth URI, a generated password for a new account)."""

    services: Services
    actor: svc.Actor
    action: str  # the audit action of the change, e.g. "user.password_reset"
    username: str
    user_id: int
    secret: str
    extra: dict[str, str] = field(default_factory=dict)
    _undo: Undo | None = field(default=None, repr=False)

    async def undo(self, reason: str) -> bool:
        """Take the secret back (it could not be delivered); audited as ``undone``, or
        ``undo_skipped`` when the account changed since and nothing was put back."""
        done = await self._undo() if self._undo is not None else False
        await rules._record(
            self.services,
            self.actor,
            self.action,
            self.username,
            "undone" if done else "undo_skipped",
            reason=reason,
        )
        return done


async def temp_password(services: Services, actor: svc.Actor, ref: int | str) -> Issued:
    """A new temporary password (must be changed at next use). Undo: the previous hash,
    must-change flag and failure streak come back if the temporary one is still set."""
    temp = passwords.generate_temporary()
    digest = auth.hash_password(temp)
    before: dict[str, object] = {}

    async def apply(_s: AsyncSession, user: User) -> None:
        before.update(
            password_hash=user.password_hash,
            must_change_password=user.must_change_password,
            failed_logins=user.failed_logins,
        )
        user.password_hash = digest
        user.must_change_password = True
        user.failed_logins = 0

    name, uid, _ = await rules._change(services, actor, ref, "user.password_reset", apply)

    async def undo() -> bool:
        async with services.sessions() as session, session.begin():
            result = await session.execute(
                update(User)
                .where(User.id == uid, User.password_hash == digest)  # argon2: salted, unique
                .values(**before)
            )
        return bool(result.rowcount)

    return Issued(services, actor, "user.password_reset", name, uid, temp, _undo=undo)


async def api_key(
    services: Services, actor: svc.Actor, ref: int | str, name: str | None = None
) -> Issued:
    """Revoke the user's active keys and make a new one (only its hash and first
    characters are stored); ``extra["prefix"]``. Undo: the new key is deleted and the keys
    it replaced work again — unless the new key was revoked meanwhile (then someone meant
    every key to stop)."""
    key = svc.new_api_key()
    prefix = key[:10]
    now = datetime.now(UTC)

    async def apply(session: AsyncSession, user: User) -> tuple[list[int], int]:
        old = list(
            (
                await session.scalars(
                    select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                )
            ).all()
        )
        if old:
            await session.execute(update(ApiKey).where(ApiKey.id.in_(old)).values(revoked_at=now))
        row = ApiKey(user_id=user.id, key_hash=hash_key(key), prefix=prefix, name=name)
        session.add(row)
        await session.flush()
        return old, row.id

    username, uid, (old, new_id) = await rules._change(services, actor, ref, "user.api_key", apply)
    await rules._record(
        services, actor, "user.api_key_issued", username, prefix=prefix, revoked=len(old)
    )

    async def undo() -> bool:
        async with services.sessions() as session, session.begin():
            gone = await session.execute(
                delete(ApiKey).where(ApiKey.id == new_id, ApiKey.revoked_at.is_(None))
            )
            if not gone.rowcount:
                return False
            if old:
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.id.in_(old), ApiKey.revoked_at == now)
                    .values(revoked_at=None)
                )
        return True

    return Issued(
        services, actor, "user.api_key", username, uid, key, {"prefix": prefix}, _undo=undo
    )


async def totp_seed(services: Services, actor: svc.Actor, user_id: int) -> Issued:
    """A fresh TOTP seed for the user to scan (not active until proven with a code);
    ``extra["uri"]`` is the otpauth URI. Refused when MFA is already on. Undo: the
    previous pending state (none, or an admin's request) comes back."""
    async with services.sessions() as session, session.begin():
        user = await rules._load(session, user_id)
        if user.totp_enabled:
            raise svc.UserError("two-factor authentication is already on", "mfa_on")
        before = (user.totp_secret_encrypted, user.totp_last_step)
        seed = auth.new_totp_secret()
        sealed = services.box.encrypt(seed)  # Fernet: a fresh IV, so unique
        user.totp_secret_encrypted = sealed
        user.totp_last_step = None
        name = user.username

    async def undo() -> bool:
        async with services.sessions() as session, session.begin():
            result = await session.execute(
                update(User)
                .where(
                    User.id == user_id,
                    User.totp_secret_encrypted == sealed,
                    User.totp_enabled.is_(False),
                )
                .values(totp_secret_encrypted=before[0], totp_last_step=before[1])
            )
        return bool(result.rowcount)

    uri = auth.totp_uri(seed, name)
    return Issued(services, actor, "user.mfa_seed", name, user_id, seed, {"uri": uri}, _undo=undo)


async def link_code(services: Services, actor: svc.Actor, username: str) -> Issued:
    """A one-time link code for ``username`` (10 minutes, single use). Undo: voided."""
    info = await svc.get_user(services, username)
    code = await create_link_code(services, info.id)
    await rules._record(services, actor, "user.link_code", info.username)

    async def undo() -> bool:
        await void_link_code(services, code)
        return True

    return Issued(services, actor, "user.link_code", info.username, info.id, code, _undo=undo)


async def new_user(
    services: Services,
    actor: svc.Actor,
    username: str,
    role: str,
    *,
    password_hash: str | None = None,
    generate_password: bool = False,
    must_change: bool = False,
    mfa: bool = False,
) -> Issued:
    """Create an account and its first link code (the secret); ``extra["password"]`` is
    the generated password when asked for one; ``mfa`` marks an enrolment as requested.
    Undo: the account is deleted again (with its code), if it still exists."""
    temp = passwords.generate_temporary() if generate_password else None
    info = await svc.add_user(
        services,
        username,
        role,
        password_hash=auth.hash_password(temp) if temp else password_hash,
        must_change=must_change,
        actor=actor,
    )
    if mfa:
        await svc.mfa_request(services, actor, info.id)
    code = await create_link_code(services, info.id)

    async def undo() -> bool:
        await void_link_code(services, code)
        async with services.sessions() as session, session.begin():
            user = await session.get(User, info.id)
            if user is None:
                return False
            await session.delete(user)
        await identity_users_changed(services)
        return True

    extra = {"password": temp} if temp else {}
    return Issued(services, actor, "user.add", info.username, info.id, code, extra, _undo=undo)
