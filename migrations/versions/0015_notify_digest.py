"""Per-user notification digest: ``notify_preferences.digest``

``digest`` holds the user's choice from `/notify digest` as text, ``"daily 09:00"`` or
``"weekly mon 09:00"`` (in the user's ``timezone``), NULL for none; `piyasa up` schedules
it (piyasa/admin/notify/digest_jobs.py). Added in place on both backends; the downgrade
drops it with native ALTER TABLE ... DROP COLUMN.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_preferences") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notify_preferences", recreate="never") as batch:
        batch.drop_column("digest")
