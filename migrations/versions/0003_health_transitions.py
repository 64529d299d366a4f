"""Health history: health_transitions (one row per component state change).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:22:10.051460
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("previous_state", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(length=255), nullable=False),
        sa.CheckConstraint(
            "state IN ('healthy', 'warning', 'critical', 'unknown')",
            name=op.f("ck_health_transitions_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_transitions")),
    )
    op.create_index("ix_health_transitions_at", "health_transitions", ["at"], unique=False)
    op.create_index(
        "ix_health_transitions_component_at",
        "health_transitions",
        ["component", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_health_transitions_component_at", table_name="health_transitions")
    op.drop_index("ix_health_transitions_at", table_name="health_transitions")
    op.drop_table("health_transitions")
