"""idempotency keys: recorded answers to retried writes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_idempotency_keys_project_id_projects"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_idempotency_keys"),
    )
    op.create_index(
        "ix_idempotency_keys_project_id_sandbox_idempotency_key",
        "idempotency_keys",
        ["project_id", "sandbox", "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index(
        "ix_idempotency_keys_project_id_sandbox_idempotency_key", table_name="idempotency_keys"
    )
    op.drop_table("idempotency_keys")
