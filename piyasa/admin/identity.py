"""Who is talking: chat identities -> panel users, and one-time link codes.

Authorization reads the numeric Telegram id (or Slack user id), never a username, since
usernames can be changed and re-registered by someone else. A link code is the only way a
chat account becomes a user: created by an admin (CLI or chat), valid 10 minutes, single
use (compare-and-delete in the database), redeemed in a private chat.

Resolved principals are cached per process and checked against the principals version
(``piyasa.db.principals``) on every request, so a change made anywhere applies at once.
That memo is also the last-known-good snapshot: when the database is unreachable, a
principal confirmed at most :data:`SNAPSHOT_MAX_AGE_S` ago is served from it (the pipeline
then runs read-only commands only, see ``chatops.pipeline.check_parts``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import onetime
from piyasa.admin.onetime import normalize_code as normalize_code  # re-exported
from piyasa.db import principals
from piyasa.db.availability import availability, is_outage
from piyasa.db.models import ROLES, Identity, User
from piyasa.services import Services

ROLE_LEVEL = {role: level for level, role in enumerate(ROLES, start=1)}
LINK_CODE_TTL_S = 600
LINK_PURPOSE = "link"
LINK_MAX_FAILURES = 10
LINK_FAILURE_WINDOW_S = 3600


@dataclass(frozen=True)
class Principal:
    """A linked chat account as the pipeline sees it."""

    user_id: int
    username: str
    role: str
    locked: bool
    language: str | None
    totp_enabled: bool
    provider: str
    external_id: str

    @property
    def level(self) -> int:
        """0 for a locked account: it may run nothing that needs a role."""
        return 0 if self.locked else ROLE_LEVEL.get(self.role, 0)


def role_level(role: str | None) -> int:
    return ROLE_LEVEL.get(role or "", 0)


PRINCIPAL_MEMO_MAX = 10_000
_MEMO_KEY = "identity.principals"
SNAPSHOT_MAX_AGE_S = 3600.0
"""How old the last-known-good principals may be and still be trusted while the database
is unreachable: one hour after the database last confirmed them. Their only staleness is a
change made elsewhere during the outage (another instance that still reaches the database,
an operator's SQL), and they serve read-only commands only; past this age an outage answers
"database unavailable" even to /whoami."""


@dataclass
class PrincipalMemo:
    """Principals this process resolved, valid while the principals version is ``version``;
    ``confirmed_at`` (time.monotonic) is when the database last said that version holds."""

    version: int | None = None
    entries: dict[tuple[str, str], Principal | None] = field(default_factory=dict)
    confirmed_at: float | None = None

    def snapshot_fresh(self, now: float | None = None) -> bool:
        """Whether the entries may stand in for the database (degraded mode)."""
        if self.confirmed_at is None:
            return False
        return (now if now is not None else time.monotonic()) - self.confirmed_at <= (
            SNAPSHOT_MAX_AGE_S
        )

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()


def principal_memo(services: Services) -> PrincipalMemo:
    """This process's memo of resolved principals (one per Services)."""
    return services.extras.setdefault(_MEMO_KEY, PrincipalMemo())


async def users_changed(services: Services) -> None:
    """Make every process drop its resolved principals before its next request.

    Rarely needed: triggers already move the principals version with every change to users,
    identities and API keys (``piyasa.db.principals``). Call it for a change they cannot
    see, or to empty every cache on purpose."""
    async with services.sessions() as session, session.begin():
        await principals.bump(session)


async def resolve(services: Services, provider: str, external_id: str | int) -> Principal | None:
    """The user linked to this chat account, or None.

    Costs one primary-key SELECT of the principals version per call; the principal itself is
    read again only when that version moved, i.e. when any process changed any user,
    identity or API key since. So a lock, a demotion, a new link takes effect on the very
    next request of every process.

    When the database is unreachable (now, or known to be by
    :mod:`piyasa.db.availability`), the last-known-good principal is returned if the
    database confirmed it within :data:`SNAPSHOT_MAX_AGE_S`; otherwise None. Either way
    the request goes on in degraded mode (``availability(services).down``), where the
    pipeline runs read-only commands only. No database wait happens while it is known
    down: a background check finds the recovery.
    """
    memo = principal_memo(services)
    key = (provider, str(external_id))
    gate = availability(services)
    if gate.down:
        return _from_snapshot(memo, key)
    try:
        async with services.sessions() as session:
            version = await principals.read_version(session)
    except Exception as exc:
        if not is_outage(exc):
            raise
        gate.failed(exc)
        return _from_snapshot(memo, key)
    if version is None:  # no counter to trust a memo by
        return await resolve_uncached(services, provider, external_id)
    if version != memo.version:
        memo.clear()
        memo.version = version
    memo.confirmed_at = time.monotonic()
    if key in memo.entries:
        return memo.entries[key]
    try:
        principal = await resolve_uncached(services, provider, external_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        gate.failed(exc)
        return None
    if memo.version == version:  # nothing newer was seen while this one was read
        if len(memo.entries) >= PRINCIPAL_MEMO_MAX:
            memo.clear()
        memo.entries[key] = principal
    return principal


def _from_snapshot(memo: PrincipalMemo, key: tuple[str, str]) -> Principal | None:
    if memo.snapshot_fresh():
        return memo.entries.get(key)
    return None


async def resolve_uncached(
    services: Services, provider: str, external_id: str | int
) -> Principal | None:
    """The user linked to this chat account, straight from the database."""
    stmt = (
        select(
            User.id,
            User.username,
            User.role,
            User.locked,
            User.language,
            User.totp_enabled,
        )
        .join(Identity, Identity.user_id == User.id)
        .where(Identity.provider == provider, Identity.external_id == str(external_id))
    )
    async with services.sessions() as session:
        row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return Principal(
        user_id=row.id,
        username=row.username,
        role=row.role,
        locked=bool(row.locked),
        language=row.language,
        totp_enabled=bool(row.totp_enabled),
        provider=provider,
        external_id=str(external_id),
    )


async def set_language(services: Services, user_id: int, lang: str) -> None:
    async with services.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(language=lang))


async def create_link_code(services: Services, user_id: int, *, now: float | None = None) -> str:
    """A fresh single-use code for ``user_id``, valid LINK_CODE_TTL_S seconds.

    Stored in the database so a code printed by `piyasa user link-code` (a process that
    exits at once) is still there when the running bot receives ``/link CODE``.
    """
    return await onetime.issue(services, LINK_PURPOSE, user_id, LINK_CODE_TTL_S, now=now)


async def void_link_code(services: Services, code: str) -> None:
    """Burn a link code that was posted where others could read it (a group)."""
    await onetime.void(services, LINK_PURPOSE, code)


async def attach_identity(
    session: AsyncSession,
    user_id: int,
    provider: str,
    external_id: str | int,
    display_name: str | None = None,
) -> bool:
    """Link a chat account to ``user_id`` (no-op when it already is); False when the
    account belongs to another user, since one chat account must map to one user.
    Link codes and the setup code both end here."""
    existing = await session.scalar(
        select(Identity).where(
            Identity.provider == provider, Identity.external_id == str(external_id)
        )
    )
    if existing is not None:
        return existing.user_id == user_id
    session.add(
        Identity(
            user_id=user_id,
            provider=provider,
            external_id=str(external_id),
            display_name=(display_name or "")[:128] or None,
        )
    )
    return True


@dataclass(frozen=True)
class LinkResult:
    ok: bool
    reason: str = ""  # "throttled" | "invalid" | "taken" | "gone"
    username: str = ""


async def redeem_link_code(
    services: Services,
    code: str,
    provider: str,
    external_id: str | int,
    display_name: str | None = None,
    *,
    now: float | None = None,
) -> LinkResult:
    """Link the chat account to the code's user; the code is consumed either way."""
    fail_key = f"link:fail:{provider}:{external_id}"
    if int(await services.cache.get(fail_key) or 0) >= LINK_MAX_FAILURES:
        return LinkResult(False, "throttled")
    used = await onetime.consume(services, LINK_PURPOSE, code, now=now)
    if not used.ok:
        await services.cache.incr(fail_key, 1, ttl=LINK_FAILURE_WINDOW_S)
        return LinkResult(False, "invalid")
    try:
        async with services.sessions() as session, session.begin():
            user = await session.get(User, used.user_id)
            if user is None:
                return LinkResult(False, "gone")
            if not await attach_identity(session, user.id, provider, external_id, display_name):
                return LinkResult(False, "taken")
            username = user.username
    except IntegrityError:
        return LinkResult(False, "taken")
    return LinkResult(True, username=username)
