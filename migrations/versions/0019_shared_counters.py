"""Fleet-wide limits on PostgreSQL without Redis: ``shared_counters`` (planner budget,
hourly counts, last speaker, Telegram token buckets); written by piyasa/cluster/counters.py.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-11 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_counters",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_shared_counters")),
    )
    op.create_index(
        op.f("ix_shared_counters_updated_at"), "shared_counters", ["updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shared_counters_updated_at"), table_name="shared_counters")
    op.drop_table("shared_counters")
