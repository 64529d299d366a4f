"""Groups upgraded to supergroups: the old Telegram chat id and the new one

``chat_migrations`` keeps, per old chat id, the ``-100…`` id Telegram moved the chat to
(learned from a ``migrate_to_chat_id``/``migrate_from_chat_id`` service message or from a
400 carrying ``parameters.migrate_to_chat_id``), so the admin chats listed in
``PIYASA_ADMIN_CHAT_IDS`` follow the move across restarts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_migrations",
        sa.Column("old_chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("new_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("migrated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("old_chat_id", name=op.f("pk_chat_migrations")),
    )


def downgrade() -> None:
    op.drop_table("chat_migrations")
