"""Tutorials: ``tutorial_progress`` (how far each user got in each tutorial), written by
chatops/commands/tutorials/ so a tutorial resumes after a restart.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tutorial_progress",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tutorial", sa.String(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tutorial_progress_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "tutorial", name=op.f("pk_tutorial_progress")),
    )


def downgrade() -> None:
    op.drop_table("tutorial_progress")
