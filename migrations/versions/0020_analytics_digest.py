"""Analytics digest: ``notify_preferences.analytics_digest`` and ``notify_deliveries.payload``

``analytics_digest`` holds the user's choice from `/notify analytics` as text, like
``digest`` (``"daily 09:00"`` / ``"weekly mon 09:00"`` in the user's ``timezone``), NULL for
none. ``payload`` is what an outbox row of kind ``analytics`` needs to be rendered at send
time (cadence, period end, timezone), NULL for the other kinds. Added in place on both
backends; the downgrade drops them with native ALTER TABLE ... DROP COLUMN.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON = (
    sa.JSON()
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    .with_variant(sqlite.JSON(), "sqlite")
)


def upgrade() -> None:
    with op.batch_alter_table("notify_preferences") as batch:
        batch.add_column(sa.Column("analytics_digest", sa.String(length=32), nullable=True))
    with op.batch_alter_table("notify_deliveries") as batch:
        batch.add_column(sa.Column("payload", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notify_deliveries", recreate="never") as batch:
        batch.drop_column("payload")
    with op.batch_alter_table("notify_preferences", recreate="never") as batch:
        batch.drop_column("analytics_digest")
