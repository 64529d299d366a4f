"""Who is talking: chat identities -> panel users, and one-time link codes.

Authorization reads the numeric Telegram id (or Slack user id), never a username, since
usernames can be changed and re-registered by someone else. A link code is the only way a
chat account becomes a user: created by an admin (CLI or chat), valid 10 minutes, single
use (compare-and-delete in the database), redeemed in a private chat.

Resolved principals are cached per process and checked against the principals version
(``piyasa.db.principals``) on every request, so a change made anywhere applies at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from piyasa.admin import onetime
from piyasa.admin.onetime import normalize_code as normalize_code  # re-exported
from piyasa.db import principals
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
# The database is unreachable: serve the last principal seen (degraded read-only mode).
_DB_DOWN = (SQLAlchemyError, OSError, TimeoutError)


@dataclass
class PrincipalMemo:
    """Principals this process resolved, valid while the principals version is ``version``."""

    version: int | None = None
    entries: dict[tuple[str, str], Principal | None] = field(default_factory=dict)

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
    next request of every process. When the database is unreachable the last principal this
    process saw is used (degraded mode: read-only chat keeps working); with none, the
    database error propagates.
    """
    memo = principal_memo(services)
    key = (provider, str(external_id))
    try:
        async with services.sessions() as session:
            version = await principals.read_version(session)
    except _DB_DOWN:
        if key in memo.entries:
            return memo.entries[key]
        raise
    if version is None:  # no counter to trust a memo by
        return await resolve_uncached(services, provider, external_id)
    if version != memo.version:
        memo.clear()
        memo.version = version
    if key in memo.entries:
        return memo.entries[key]
    principal = await resolve_uncached(services, provider, external_id)
    if memo.version == version:  # nothing newer was seen while this one was read
        if len(memo.entries) >= PRINCIPAL_MEMO_MAX:
            memo.clear()
        memo.entries[key] = principal
    return principal


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
