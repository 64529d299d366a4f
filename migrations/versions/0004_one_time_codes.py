"""One-time codes in the database (link and setup codes)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:22:08.871806
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "one_time_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_one_time_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_one_time_codes")),
    )
    op.create_index(op.f("ix_one_time_codes_purpose"), "one_time_codes", ["purpose"], unique=False)


def downgrade() -> None:

    op.drop_index(op.f("ix_one_time_codes_purpose"), table_name="one_time_codes")
    op.drop_table("one_time_codes")
