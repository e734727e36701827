"""deleted invoices keep their row (list cursors naming them stay valid); lines carry VAT

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs on both backends (nullable, or with a constant default): no table
    # rebuild, so they are instant even on a database of millions of invoices.
    op.add_column("invoices", sa.Column("deleted_at", sa.BigInteger(), nullable=True))
    op.add_column("invoice_lines", sa.Column("vat_rate", sa.Text(), nullable=True))
    op.add_column(
        "invoice_lines",
        sa.Column("amount_incl_vat", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_column("amount_incl_vat")
        batch_op.drop_column("vat_rate")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
