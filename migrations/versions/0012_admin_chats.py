"""Admin chats adopted in chat: the /setup wizard's "Admin chat" step

``admin_chats`` holds the groups an admin chose as admin chats from Telegram (the bot was
added with the wizard's link and confirmed in private). They are read together with
``PIYASA_ADMIN_CHAT_IDS`` at every start, so alerts keep their destination after a restart
without editing the environment.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_chats",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_admin_chats")),
    )


def downgrade() -> None:
    op.drop_table("admin_chats")
