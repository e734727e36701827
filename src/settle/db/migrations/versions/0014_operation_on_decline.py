"""an operation says what its decline does beyond failing it (a Reepay settle fails its invoice)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 17:10:00

Kept in a column of its own, not in the operation's metadata:
metadata is the merchant's, shown through the ProcessOut face and settable by any client.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable ADD COLUMN: no table rebuild on either backend, instant at any size.
    op.add_column("transaction_operations", sa.Column("on_decline", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transaction_operations", schema=None) as batch_op:
        batch_op.drop_column("on_decline")
