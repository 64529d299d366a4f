"""Who may do what, as every process must see it at once: the principals version and
step-up elevations.

Processes keep resolved principals in memory (``piyasa.admin.identity.resolve``) and, before
trusting them, read one counter: ``principals_version.version`` (a primary-key SELECT).
Database triggers bump it in the same transaction as every insert, delete and relevant
update of ``users``, ``identities`` and ``api_keys``, whoever writes: this process,
`piyasa user …` from the shell, another instance, or an operator's SQL in psql. So a lock,
a role change, a link or a key revoke applies on the next request of every process, with
or without Redis, and no code path can forget to announce its change. The counter only has
to *move*: a reader drops what it cached under any other value (a restore that moves it
back still invalidates).

Elevations (a TOTP step-up, valid a few minutes) are rows here too, read on every check,
so `piyasa user revoke NAME --elevation` ends one in every process at once.

The same DDL is frozen in migration 0005; tests/db/test_migrations.py proves both install
the same triggers. A later migration that recreates one of these tables on SQLite (batch
mode copies columns, not triggers) must install its triggers again; that test catches it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, UTCDateTime

VERSION_ROW_ID = 1
# Columns whose change alters what a cached principal (or a key owner) says. Bookkeeping
# columns (login counters, last seen, the last TOTP step) are left out on purpose: they
# change on every login or step-up and would empty every cache for nothing.
USER_COLUMNS = (
    "username",
    "role",
    "locked",
    "language",
    "totp_enabled",
    "totp_secret_encrypted",
    "password_hash",
    "must_change_password",
)
API_KEY_COLUMNS = ("user_id", "key_hash", "revoked_at")
# table -> the columns whose UPDATE counts (None: any column)
TRACKED: dict[str, tuple[str, ...] | None] = {
    "users": USER_COLUMNS,
    "identities": None,
    "api_keys": API_KEY_COLUMNS,
}
PG_FUNCTION = "piyasa_principals_changed"


class PrincipalsVersion(Base):
    """One row (id 1) whose ``version`` moves with every change to who may do what."""

    __tablename__ = "principals_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class Elevation(Base):
    """A step-up: the user proved a TOTP code and may run step-up commands until ``until``."""

    __tablename__ = "elevations"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    until: Mapped[datetime] = mapped_column(UTCDateTime)


_BUMP = f"UPDATE principals_version SET version = version + 1 WHERE id = {VERSION_ROW_ID}"


def install_ddl(dialect: str) -> list[str]:
    """Statements that seed the version row and install the triggers (idempotent)."""
    out = [
        f"INSERT INTO principals_version (id, version) VALUES ({VERSION_ROW_ID}, 0) "
        "ON CONFLICT (id) DO NOTHING"
    ]
    if dialect == "postgresql":
        out.append(
            f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table, columns in TRACKED.items():
            update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
            out.append(f"DROP TRIGGER IF EXISTS trg_{table}_principals ON {table}")
            out.append(
                f"CREATE TRIGGER trg_{table}_principals AFTER INSERT OR DELETE OR TRUNCATE OR "
                f"{update} ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        return out
    for table, columns in TRACKED.items():
        update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
        for suffix, what in (("ins", "INSERT"), ("upd", update), ("del", "DELETE")):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS trg_{table}_principals_{suffix} "
                f"AFTER {what} ON {table} BEGIN {_BUMP}; END"
            )
    return out


def trigger_names(dialect: str) -> set[str]:
    """The triggers :func:`install_ddl` creates (for tests and the migration check)."""
    if dialect == "postgresql":
        return {f"trg_{table}_principals" for table in TRACKED}
    return {f"trg_{t}_principals_{s}" for t in TRACKED for s in ("ins", "upd", "del")}


@event.listens_for(Base.metadata, "after_create")
def _install(target: Any, connection: Any, **_kw: Any) -> None:
    """``create_all`` (tests, benchmarks) gets the same triggers as the migrations."""
    if not {"principals_version", *TRACKED} <= set(inspect(connection).get_table_names()):
        return  # a partial create_all: nothing to attach to yet
    for statement in install_ddl(connection.dialect.name):
        connection.execute(text(statement))


async def read_version(session: AsyncSession) -> int | None:
    """The current principals version; None when the row is missing (then trust no cache)."""
    return await session.scalar(
        select(PrincipalsVersion.version).where(PrincipalsVersion.id == VERSION_ROW_ID)
    )


async def bump(session: AsyncSession) -> None:
    """Move the version by hand, inside the caller's transaction: for a change the triggers
    do not see (e.g. "drop every cache now")."""
    await session.execute(text(_BUMP))
