"""idempotency_keys: the claims still open, in an index of their own

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 02:30:00

Every 30 s the recovery loop frees the Idempotency-Keys whose request died before it started
any work (``status = 0`` with no body, older than the recovery delay). No index served that
filter: PostgreSQL read the whole table each time (a sequential scan of the 24 hours of keys
kept; measured with 1,000,000 keys, 175-250 ms per run), and on SQLite the same scan ran
inside a write transaction, holding the server's event loop and the file's write lock. The
claims still open are the keys of requests in flight: this partial index holds only those.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

CLAIMED = sa.text("status = 0")


def upgrade() -> None:
    op.create_index(
        "ix_idempotency_keys_claimed",
        "idempotency_keys",
        ["created_at"],
        postgresql_where=CLAIMED,
        sqlite_where=CLAIMED,
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_claimed", table_name="idempotency_keys")
