"""deliveries: a dead URL's new deliveries are parked, not deferred one by one

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 00:40:00

A URL that gave no answer rests; its due rows were moved past the rest (one UPDATE of every
due row of the URL), and its new rows were made due at the rest's end. So when the rest ended
the URL's whole backlog came due at once, a few attempts failed, and the whole backlog was
moved again: one write per waiting delivery each ~30 s, however long the URL stayed dead.
Measured on PostgreSQL (bench/README.md, "A dead receiver's backlog"): with the bench body's
unresolvable ``webhook_url`` 60,000-100,000 rows were moved in one statement during a create
load, and the delivery lag of a live receiver's webhooks went from 0.5 s to 1.2-2.5 s at p99.

Now a resting URL's new rows are made ``parked``: due only at the end of their retry window
(where they fail for good if the URL never answered again). The URL's rows that were due when
it stopped answering keep being retried with their backoff; the first answer the URL gives
(any status) makes its parked rows due at once, in one statement through the partial index
below, which holds parked rows only; when one of those retried rows fails for good, the oldest
parked row takes over as a probe (the index is in ``seq`` order for it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PARKED = sa.text("state = 'pending' AND parked")


def upgrade() -> None:
    # A constant default: an instant ADD COLUMN on both backends.
    op.add_column(
        "deliveries",
        sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_deliveries_parked",
        "deliveries",
        ["project_id", "sandbox", "url", "seq"],
        postgresql_where=PARKED,
        sqlite_where=PARKED,
    )


def downgrade() -> None:
    # Parked rows become due at once (as the URL's first answer would make them).
    op.execute(
        "UPDATE deliveries SET next_attempt_at = created_at WHERE state = 'pending' AND parked"
    )
    op.drop_index("ix_deliveries_parked", table_name="deliveries")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("parked")
