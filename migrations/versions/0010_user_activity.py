"""Users' chat activity: when each was last seen in chat, and on how many days

``users.last_seen_at``: the last request the user made from Telegram or Slack (written at
most once a minute per user, see piyasa/admin/activity.py), indexed so ``/users`` sorts by
it. ``users.active_days``: on how many UTC days the user was seen. Before this, only
``/password`` moved ``last_login_at``/``ok_logins``, so chat users showed "never" and 0.

Columns are added in place on both backends; the downgrade drops them with native ALTER
TABLE ... DROP COLUMN (SQLite 3.35+), never by copying ``users``: with foreign keys on,
dropping the old copy would cascade-delete every identity and API key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("active_days", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(op.f("ix_users_last_seen_at"), "users", ["last_seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_last_seen_at"), table_name="users")
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("active_days")
        batch.drop_column("last_seen_at")
