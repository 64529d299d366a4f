"""Password policy, temporary passwords and brute-force throttling (OWASP ASVS 5.0).

Policy, the one definition every surface calls (``piyasa setup``, `piyasa user add` and
``reset-password``, the Telegram setup wizard, ``/password``, the add-user dialog on Telegram
and Slack) through :func:`problem`: at least 12 characters (at most 256, so hashing cannot be
used as a DoS); not in the shipped common-password list nor one of Piyasa's own words
(the product name, "password" in Turkish), also not one padded with digits/symbols or
repeated; not containing the username; and not guessable by the strength estimate below
(about 50 bits: twelve digits are refused, twelve random letters pass). No composition
rules: length, a deny list and the estimate are what ASVS asks for.
:func:`strength` gives the same verdict plus a label and hints for the person typing.

Throttling is counted per account, in the database, so it holds across processes and
restarts: ``users.failed_logins`` is the current streak of failures (reset by a success),
``users.last_failed_at`` when the last one happened. After ``free_failures`` failures in a
row every further attempt must wait a delay that doubles each time (up to
``max_delay_s``); on top of that no more than ``max_per_hour`` failures are ever accepted
for checking within any sliding hour (counted from the audit log, where every failure is
recorded). Attempts refused by the throttle are not checked at all, so they cannot probe.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources

from sqlalchemy import func, select, update

from piyasa.admin import audit
from piyasa.admin.auth import hash_password, verify_password
from piyasa.db.models import AuditEntry, User
from piyasa.services import Services

MIN_LENGTH = 12
MAX_LENGTH = 256
MIN_BITS = 50.0  # below this estimate a password is "weak" and refused
LOGIN_ACTION = "user.login"
_PAD = string.digits + string.punctuation + string.whitespace
# no 0/O, 1/l/I: read from a phone screen and typed on another device
_TEMP_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Words an attacker of this deployment tries first: ours, and "password" in Turkish.
CONTEXT_WORDS = frozenset({"piyasa", "parola", "sifre", "şifre"})
# Fragments that make any password easier to guess wherever they appear in it.
_GUESSABLE_PARTS = (
    *sorted(CONTEXT_WORDS),
    "password",
    "qwerty",
    "123456",
    "admin",
    "letmein",
    "welcome",
    "iloveyou",
)
_POOLS = (("[a-z]", 26), ("[A-Z]", 26), ("[0-9]", 10), (r"[^A-Za-z0-9]", 33))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (see the header of ``wordlists/common-passwords.txt`` for its source)."""
    text = resources.files("piyasa.admin.wordlists").joinpath("common-passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@cache
def _deny_list() -> frozenset[str]:
    return common_passwords() | CONTEXT_WORDS


def _has_guessable_part(password: str, username: str | None) -> bool:
    low = password.lower()
    return any(w in low for w in _GUESSABLE_PARTS) or bool(username and username.lower() in low)


def _has_repeats(password: str) -> bool:
    return bool(re.search(r"(.)\1\1", password)) or len(set(password)) < len(password) / 2


def estimate_bits(password: str, username: str | None = None) -> float:
    """A rough guessing-entropy estimate in bits: length x log2(character pool), less 30
    for a guessable fragment or the username inside, less 15 for repeated characters."""
    pool = sum(size for pattern, size in _POOLS if re.search(pattern, password))
    bits = len(password) * math.log2(max(pool, 2))
    if _has_guessable_part(password, username):
        bits -= 30
    if _has_repeats(password):
        bits -= 15
    return bits


def problem(password: str, username: str | None = None) -> str | None:
    """The password policy: why ``password`` is refused (``too_short``, ``too_long``,
    ``common``, ``contains_username``, ``weak``), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    common = _deny_list()
    low = password.lower()
    core = low.strip(_PAD)
    if low in common or (len(core) >= 3 and core in common):
        return "common"
    for unit in range(1, len(low) // 2 + 1):
        if len(low) % unit == 0 and low == low[:unit] * (len(low) // unit):
            if unit <= 4 or low[:unit] in common or low[:unit].strip(_PAD) in common:
                return "common"
            break
    if username and len(username) >= 3 and username.lower() in low:
        return "contains_username"
    if estimate_bits(password, username) < MIN_BITS:
        return "weak"
    return None


PROBLEM_TEXT = {
    "too_short": f"the password is too short: use at least {MIN_LENGTH} characters",
    "too_long": f"the password is too long: use at most {MAX_LENGTH} characters",
    "common": "this password is on the list of common passwords; choose another",
    "contains_username": "the password must not contain the username",
    "weak": "this password is easy to guess: make it longer (a few unrelated words are easy "
    "to remember) and avoid common words and repeats",
}


@dataclass(frozen=True)
class Strength:
    """The policy's verdict for someone typing a password, with advice."""

    score: int  # 0 refused by the policy .. 4 strong
    label: str  # the refusal reason (too_short, common, weak, ...) or fair | good | strong
    hints: tuple[str, ...]  # add_length, add_variety, common_word, repeated

    @property
    def refused(self) -> bool:
        return self.score == 0


def strength(password: str, username: str | None = None) -> Strength:
    """:func:`problem`'s verdict as a score, a label and hints (never accepts what it refuses)."""
    bits = estimate_bits(password, username)
    hints: list[str] = []
    if len(password) < MIN_LENGTH or bits < 70:
        hints.append("add_length")
    if sum(1 for pattern, _ in _POOLS if re.search(pattern, password)) <= 1:
        hints.append("add_variety")
    if _has_guessable_part(password, username):
        hints.append("common_word")
    if _has_repeats(password):
        hints.append("repeated")
    reason = problem(password, username)
    if reason:
        return Strength(0, reason, tuple(hints))
    score, label = (2, "fair") if bits < 70 else (3, "good") if bits < 90 else (4, "strong")
    return Strength(score, label, tuple(hints))


HINT_TEXT_EN = {
    "add_length": f"use at least {MIN_LENGTH} characters; a few unrelated words are easy",
    "add_variety": "mix upper and lower case, digits and symbols",
    "common_word": "avoid common words and your username",
    "repeated": "avoid repeated characters",
}


def describe_en(s: Strength) -> str:
    """One line for the CLI (which speaks English, like the rest of the CLI)."""
    text = f"refused: {PROBLEM_TEXT[s.label]}" if s.refused else f"strength: {s.label}"
    if s.hints:
        text += " — " + "; ".join(HINT_TEXT_EN[h] for h in s.hints)
    return text


def generate_temporary() -> str:
    """A random temporary password: 4 groups of 4 (about 92 bits), easy to type."""
    raw = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class Throttle:
    """Growing delays after a streak of failures, and a hard cap per sliding hour."""

    free_failures: int = 3
    base_delay_s: float = 2.0
    max_delay_s: float = 900.0
    max_per_hour: int = 100

    def delay_after(self, streak: int) -> float:
        """Seconds to wait after ``streak`` failures in a row before the next check."""
        if streak < self.free_failures:
            return 0.0
        return min(self.base_delay_s * 2 ** (streak - self.free_failures), self.max_delay_s)


THROTTLE = Throttle()


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    reason: str = ""  # "invalid" | "locked" | "throttled" | "no_password"
    retry_after_s: int = 0
    must_change: bool = False
    user_id: int | None = None


@dataclass(frozen=True)
class FailureStats:
    """What the user card shows about password failures."""

    streak: int
    last_hour: int
    last_failed_at: datetime | None
    retry_after_s: int


async def failures_last_hour(
    services: Services, username: str, now: datetime | None = None
) -> list[datetime]:
    now = now or datetime.now(UTC)
    stmt = (
        select(AuditEntry.at)
        .where(
            AuditEntry.at > now - timedelta(hours=1),
            AuditEntry.action == LOGIN_ACTION,
            AuditEntry.target == username,
            AuditEntry.result == "failed",
        )
        .order_by(AuditEntry.at)
    )
    async with services.sessions() as session:
        return list((await session.scalars(stmt)).all())


def _wait_s(
    streak: int, last_failed_at: datetime | None, hour: list[datetime], now: datetime, t: Throttle
) -> float:
    wait = 0.0
    if last_failed_at is not None:
        wait = t.delay_after(streak) - (now - last_failed_at).total_seconds()
    if len(hour) >= t.max_per_hour:
        oldest = hour[len(hour) - t.max_per_hour]
        wait = max(wait, (oldest + timedelta(hours=1) - now).total_seconds())
    return max(wait, 0.0)


async def failure_stats(
    services: Services, user: User, *, now: datetime | None = None, throttle: Throttle = THROTTLE
) -> FailureStats:
    now = now or datetime.now(UTC)
    hour = await failures_last_hour(services, user.username, now)
    wait = _wait_s(user.failed_logins, user.last_failed_at, hour, now, throttle)
    return FailureStats(user.failed_logins, len(hour), user.last_failed_at, int(wait + 0.999))


_DUMMY_HASH: list[str] = []


def _burn_time(password: str) -> None:
    """Verify against a dummy hash so an unknown username costs the same as a known one."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    verify_password(_DUMMY_HASH[0], password)


async def check_login(
    services: Services,
    username: str,
    password: str,
    *,
    surface: str = "cli",
    throttle: Throttle = THROTTLE,
) -> LoginResult:
    """Check a password for ``username``: the one place a password is ever used.

    Unknown users and wrong passwords get the same answer. Every checked attempt is
    audited (never the password); throttled ones are audited as such and not checked.
    """
    name = username.strip().lower()
    now = datetime.now(UTC)
    async with services.sessions() as session:
        user = await session.scalar(select(User).where(User.username == name))
    if user is None:
        _burn_time(password)
        return LoginResult(False, "invalid")

    async def record(result: str, **params: object) -> None:
        await audit.record(
            services,
            actor=user.username,
            actor_user_id=user.id,
            surface=surface,
            action=LOGIN_ACTION,
            target=user.username,
            params=params,
            result=result,
        )

    if user.locked:
        await record("refused_locked")
        return LoginResult(False, "locked", user_id=user.id)
    hour = await failures_last_hour(services, user.username, now)
    wait = _wait_s(user.failed_logins, user.last_failed_at, hour, now, throttle)
    if wait > 0:
        await record("throttled", retry_after_s=int(wait + 0.999))
        return LoginResult(False, "throttled", int(wait + 0.999), user_id=user.id)
    if not user.password_hash:
        _burn_time(password)
        await record("failed", reason="no_password")
        return LoginResult(False, "invalid", user_id=user.id)
    ok = verify_password(user.password_hash, password)
    async with services.sessions() as session, session.begin():
        if ok:
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=0, ok_logins=User.ok_logins + 1, last_login_at=now)
            )
        else:
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=User.failed_logins + 1, last_failed_at=now)
            )
    if not ok:
        await record("failed", streak=user.failed_logins + 1)
        return LoginResult(False, "invalid", user_id=user.id)
    await record("ok", must_change=user.must_change_password)
    return LoginResult(True, must_change=user.must_change_password, user_id=user.id)


async def count_failures(services: Services, username: str) -> int:
    """Failures of ``username`` in the last hour (for tests and the card)."""
    async with services.sessions() as session:
        return int(
            await session.scalar(
                select(func.count(AuditEntry.id)).where(
                    AuditEntry.at > datetime.now(UTC) - timedelta(hours=1),
                    AuditEntry.action == LOGIN_ACTION,
                    AuditEntry.target == username,
                    AuditEntry.result == "failed",
                )
            )
            or 0
        )
