"""Analytics rollups (issue 15): ``analytics_facts``, ``analytics_bots``, ``analytics_fleet``,
``analytics_errors``, ``analytics_state`` and ``messages.rolled`` (the rollup job's per-row
progress, 0/1/2) with a partial index over bot rows not fully rolled up, plus an index on
``messages.created_at`` for rebuilds and pruning. Existing messages start at 0, so the first
run of the job backfills their rollups.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UNROLLED = "rolled < 2 AND author_kind = 'bot'"
SUMS_INDEX = (
    "grain",
    "bucket",
    "bot_id",
    "messages",
    "sent",
    "failed",
    "rate_limited",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "cost_micros",
    "lat_count",
    "lat_sum",
    "lat_slow",
    "lat_min",
    "lat_max",
)


def _measures() -> list[sa.Column]:
    ints = ("messages", "sent", "failed", "rate_limited")
    bigs = ("tokens_in", "tokens_out", "tokens_cached", "cost_micros")
    return [
        *(sa.Column(n, sa.Integer(), nullable=False) for n in ints),
        *(sa.Column(n, sa.BigInteger(), nullable=False) for n in bigs),
        sa.Column("lat_count", sa.Integer(), nullable=False),
        sa.Column("lat_sum", sa.BigInteger(), nullable=False),
        sa.Column("lat_slow", sa.Integer(), nullable=False),
        sa.Column("lat_min", sa.Integer(), nullable=True),
        sa.Column("lat_max", sa.Integer(), nullable=True),
        sa.Column("hist", sa.LargeBinary(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "analytics_facts",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint(
            "grain", "bucket", "bot_id", "chat_id", "topic", "model", name="pk_analytics_facts"
        ),
    )
    op.create_index("ix_analytics_facts_bot", "analytics_facts", ["grain", "bot_id", "bucket"])
    op.create_table(
        "analytics_bots",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("grain", "bucket", "bot_id", name="pk_analytics_bots"),
    )
    # covering the per-bot sums (all measures but hist): the overview reads the index only
    op.create_index("ix_analytics_bots_sums", "analytics_bots", list(SUMS_INDEX))
    op.create_table(
        "analytics_fleet",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("grain", "bucket", name="pk_analytics_fleet"),
    )
    op.create_table(
        "analytics_errors",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "grain", "bucket", "bot_id", "error_class", name="pk_analytics_errors"
        ),
    )
    op.create_index("ix_analytics_errors_bot", "analytics_errors", ["grain", "bot_id", "bucket"])
    op.create_table(
        "analytics_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_analytics_state"),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("rolled", sa.SmallInteger(), server_default="0", nullable=False))
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_index(
        "ix_messages_unrolled",
        "messages",
        ["id"],
        sqlite_where=sa.text(UNROLLED),
        postgresql_where=sa.text(UNROLLED),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_unrolled", table_name="messages")
    op.drop_index("ix_messages_created", table_name="messages")
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.drop_column("rolled")
    op.drop_table("analytics_state")
    op.drop_index("ix_analytics_errors_bot", table_name="analytics_errors")
    op.drop_table("analytics_errors")
    op.drop_table("analytics_fleet")
    op.drop_index("ix_analytics_bots_sums", table_name="analytics_bots")
    op.drop_table("analytics_bots")
    op.drop_index("ix_analytics_facts_bot", table_name="analytics_facts")
    op.drop_table("analytics_facts")
