"""Notifications (issue 13): incidents, read state, delivery outbox, silences, routes,
preferences and channel configurations (sealed with services.box).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:30:15.299401
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(length=200), nullable=False),
        sa.Column("active_fingerprint", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title_key", sa.String(length=100), nullable=False),
        sa.Column("body_key", sa.String(length=100), nullable=True),
        sa.Column(
            "params",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "labels",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("fail_streak", sa.Integer(), nullable=False),
        sa.Column("ok_streak", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("acted_by", sa.String(length=128), nullable=True),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_kind", sa.String(length=16), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_kind", sa.String(length=16), nullable=True),
        sa.Column("notify_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "severity IN ('critical', 'warning', 'info', 'success')",
            name=op.f("ck_notifications_severity"),
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved', 'silenced')",
            name=op.f("ck_notifications_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("active_fingerprint", name=op.f("uq_notifications_active_fingerprint")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due_at", ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index("ix_notifications_group_key", ["group_key"], unique=False)
        batch_op.create_index("ix_notifications_last_seen", ["last_seen"], unique=False)

    op.create_table(
        "notify_channels",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notify_channels")),
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "notification_ids",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed')", name=op.f("ck_notify_deliveries_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notify_deliveries_dedupe_key")),
    )
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notify_deliveries_destination"), ["destination"], unique=False
        )
        batch_op.create_index(
            "ix_notify_deliveries_state_next", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "notify_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "matchers",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "destinations",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_routes")),
        sa.UniqueConstraint("name", name=op.f("uq_notify_routes_name")),
    )
    op.create_table(
        "notify_silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "matchers",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('silence', 'maintenance')", name=op.f("ck_notify_silences_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_silences")),
    )
    with op.batch_alter_table("notify_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_silences_ends_at"), ["ends_at"], unique=False)

    op.create_table(
        "notification_reads",
        sa.Column(
            "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_reads_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_reads_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_id", "user_id", name=op.f("pk_notification_reads")),
    )
    op.create_table(
        "notify_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column(
            "severities",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "channels",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
            .with_variant(sqlite.JSON(), "sqlite"),
            nullable=False,
        ),
        sa.Column("quiet_hours", sa.String(length=16), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notify_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notify_preferences")),
    )


def downgrade() -> None:
    op.drop_table("notify_preferences")
    op.drop_table("notification_reads")
    with op.batch_alter_table("notify_silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_silences_ends_at"))

    op.drop_table("notify_silences")
    op.drop_table("notify_routes")
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_deliveries_state_next")
        batch_op.drop_index(batch_op.f("ix_notify_deliveries_destination"))

    op.drop_table("notify_deliveries")
    op.drop_table("notify_channels")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_last_seen")
        batch_op.drop_index("ix_notifications_group_key")
        batch_op.drop_index(batch_op.f("ix_notifications_fingerprint"))
        batch_op.drop_index("ix_notifications_due_at")

    op.drop_table("notifications")
