"""Fleet administration from chat: a per-chat message budget and the settings' history

``chats.msg_budget``: fleet messages per hour in one chat (None: no cap of its own), set
from ``/chats`` and honoured by the planner. ``setting_changes``: every change of the
``settings`` table made through ``piyasa.fleetadmin.settings`` (old and new value, version,
actor, reason), so ``/settings`` shows history and undoes the last change.

The column is added in place on both backends; the downgrade drops it with native ALTER
TABLE ... DROP COLUMN (SQLite 3.35+), never by copying ``chats``: with foreign keys on,
dropping the old copy would cascade-delete every message and outbox row of the fleet.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = (
    sa.JSON()
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    .with_variant(sqlite.JSON(), "sqlite")
)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("msg_budget", sa.Integer(), nullable=True))
    op.create_table(
        "setting_changes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("old_value", JSON, nullable=True),
        sa.Column("new_value", JSON, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undo_of", BIG_ID, nullable=True),
        sa.Column("undone_by", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["undo_of"],
            ["setting_changes.id"],
            name=op.f("fk_setting_changes_undo_of_setting_changes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setting_changes")),
    )
    op.create_index("ix_setting_changes_key_id", "setting_changes", ["key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_setting_changes_key_id", table_name="setting_changes")
    op.drop_table("setting_changes")
    with op.batch_alter_table("chats", recreate="never") as batch:
        batch.drop_column("msg_budget")
