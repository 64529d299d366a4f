"""Remove the demo rows older versions seeded into the database in use

Before 0.2 the sandbox seeded its demo admin (`sandbox_admin`, an admin bound to the real
Telegram account id 900001), demo bots and demo chats into whatever database `piyasa up`
used, and nothing removed them. The demo now runs on its own database; this revision
deletes what was left behind (rows cascade: identities, keys, codes, memberships,
messages, outbox) and prints what it removed. Downgrade restores nothing: demo rows
never belonged in a production database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:30:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of piyasa.sandbox.demo as of 0.1 (a migration must not follow later edits).
DEMO_USERNAME = "sandbox_admin"
DEMO_TELEGRAM_USER_IDS = ("900001", "900002", "900003")
DEMO_BOT_TOKENS = (
    "7000000001:SANDBOX-fleet-bot-1-token-do-not-use-0",
    "7000000002:SANDBOX-fleet-bot-2-token-do-not-use-0",
    "7000000003:SANDBOX-fleet-bot-3-token-do-not-use-0",
    "7000000004:SANDBOX-fleet-bot-4-token-do-not-use-0",
)
DEMO_CHAT_IDS = (-1009000000001, -1009000000101, -1009000000102)


def _delete(table: str, where: str, **params: object) -> int:
    statement = sa.text(f"DELETE FROM {table} WHERE {where}")
    for name, value in params.items():
        if isinstance(value, tuple):
            statement = statement.bindparams(sa.bindparam(name, expanding=True))
    return op.get_bind().execute(statement, params).rowcount or 0


def upgrade() -> None:
    fingerprints = tuple(hashlib.sha256(t.encode()).hexdigest() for t in DEMO_BOT_TOKENS)
    removed = {
        # The demo admin with its identities, keys and codes (ON DELETE CASCADE).
        "users": _delete(
            "users",
            "username = :name AND id IN (SELECT user_id FROM identities "
            "WHERE provider = 'telegram' AND external_id IN :ids)",
            name=DEMO_USERNAME,
            ids=DEMO_TELEGRAM_USER_IDS,
        ),
        # Demo Telegram accounts linked to real users through the demo chat.
        "identities": _delete(
            "identities",
            "provider = 'telegram' AND external_id IN :ids",
            ids=DEMO_TELEGRAM_USER_IDS,
        ),
        "bots": _delete("bots", "token_fingerprint IN :fps", fps=fingerprints),
        "chats": _delete("chats", "telegram_id IN :ids", ids=DEMO_CHAT_IDS),
    }
    found = {table: n for table, n in removed.items() if n}
    if found:
        listed = ", ".join(f"{n} {table}" for table, n in found.items())
        print(f"migration 0008: removed demo rows an older version left here: {listed}")


def downgrade() -> None:
    """Nothing to restore (see the module docstring)."""
