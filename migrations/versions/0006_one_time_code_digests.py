"""One-time codes: keyed digests, a selector and a per-code attempt count

Codes grow from 8 characters (40 bits, unsalted SHA-256) to 16 Crockford base32 characters
(80 bits) stored as HMAC-SHA256 under the secret key, with the first group in clear as a
selector so wrong tries can be counted per code. The table is recreated: codes issued
before this revision stop working (they expired within the hour anyway; `piyasa setup` or
`piyasa user link-code` prints a new one). Downgrading drops the new codes the same way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _user_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f("fk_one_time_codes_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.drop_index(op.f("ix_one_time_codes_purpose"), table_name="one_time_codes")
    op.drop_table("one_time_codes")
    op.create_table(
        "one_time_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("selector", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk(),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_one_time_codes")),
    )
    op.create_index(
        "ix_one_time_codes_purpose_selector",
        "one_time_codes",
        ["purpose", "selector"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_one_time_codes_purpose_selector", table_name="one_time_codes")
    op.drop_table("one_time_codes")
    op.create_table(
        "one_time_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk(),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_one_time_codes")),
    )
    op.create_index(op.f("ix_one_time_codes_purpose"), "one_time_codes", ["purpose"], unique=False)
