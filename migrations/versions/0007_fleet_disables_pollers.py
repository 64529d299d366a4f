"""Fleet parts that fail stay visible: disabled bots and pairs with their reason; pollers

``bots.disabled_reason``/``disabled_at``: the fleet stopped the bot (401 Unauthorized, an
invalid schedule). ``bot_chats.disabled_reason``/``disabled_at``: the fleet stopped one
bot in one chat (403 kicked, 400 chat not found); ``bot_chats.listed`` False marks a row
that only records such a disable in a chat whose members are not listed (every bot).
``fleet_pollers``: which instance long-polls each bot, so a 409 names the other one.

Columns are added in place on both backends (SQLite batch mode needs no table copy for
ADD COLUMN); the downgrade drops them with native ALTER TABLE ... DROP COLUMN (SQLite
3.35+), never by copying ``bots``: with foreign keys on, dropping the old copy would
cascade-delete every message and outbox row of the fleet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bots") as batch:
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("bot_chats") as batch:
        batch.add_column(sa.Column("listed", sa.Boolean(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "fleet_pollers",
        sa.Column("bot_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("instance", sa.String(length=96), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_fleet_pollers_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("bot_id", name=op.f("pk_fleet_pollers")),
    )


def downgrade() -> None:
    op.drop_table("fleet_pollers")
    for table, columns in (
        ("bot_chats", ("disabled_at", "disabled_reason", "listed")),
        ("bots", ("disabled_at", "disabled_reason")),
    ):
        with op.batch_alter_table(table, recreate="never") as batch:
            for column in columns:
                batch.drop_column(column)
