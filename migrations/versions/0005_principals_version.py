"""Principals version (bumped by triggers) and step-up elevations in the database

Every process caches resolved principals and checks ``principals_version`` before trusting
them; triggers on users, identities and api_keys bump it in the changing transaction. Step-up
elevations move from the cache (process-local without Redis) to ``elevations``; elevations
held in the cache when upgrading simply end (they last five minutes).

The trigger DDL is a frozen copy of ``piyasa.db.principals.install_ddl`` at this revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BUMP = "UPDATE principals_version SET version = version + 1 WHERE id = 1"
_TRACKED = {
    "users": (
        "username",
        "role",
        "locked",
        "language",
        "totp_enabled",
        "totp_secret_encrypted",
        "password_hash",
        "must_change_password",
    ),
    "identities": None,
    "api_keys": ("user_id", "key_hash", "revoked_at"),
}
_FUNCTION = "piyasa_principals_changed"


def _update(columns: tuple[str, ...] | None) -> str:
    return f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"


def upgrade() -> None:
    op.create_table(
        "principals_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_principals_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals_version")),
    )
    op.create_table(
        "elevations",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_elevations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_elevations")),
    )
    op.execute("INSERT INTO principals_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table, columns in _TRACKED.items():
            op.execute(
                f"CREATE TRIGGER trg_{table}_principals AFTER INSERT OR DELETE OR TRUNCATE OR "
                f"{_update(columns)} ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
            )
        return
    for table, columns in _TRACKED.items():
        for suffix, what in (("ins", "INSERT"), ("upd", _update(columns)), ("del", "DELETE")):
            op.execute(
                f"CREATE TRIGGER trg_{table}_principals_{suffix} AFTER {what} ON {table} "
                f"BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TRACKED:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_principals ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
    else:
        for table in _TRACKED:
            for suffix in ("ins", "upd", "del"):
                op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_principals_{suffix}")
    op.drop_table("elevations")
    op.drop_table("principals_version")
