"""the lines of a refund's credit note (Reepay's note_lines)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 19:00:00

Written beside 0015 (webhook deliveries), merged after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_note_lines",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("vat_rate", sa.Text(), nullable=True),
        sa.Column("amount_incl_vat", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.Column("order_line_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_credit_note_lines_project_id_projects"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_credit_note_lines"),
    )
    op.create_index(
        "ix_credit_note_lines_refund_id_position",
        "credit_note_lines",
        ["refund_id", "position"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_credit_note_lines_refund_id_position", table_name="credit_note_lines")
    op.drop_table("credit_note_lines")
