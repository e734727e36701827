"""webhook deliveries and their attempts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _seq() -> sa.Column[int]:
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(always=False),
        nullable=False,
    )


def _scoped(table: str) -> list[sa.Column[object] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("project_id", sa.Text(), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "deliveries",
        _seq(),
        sa.Column("id", sa.Text(), nullable=False),
        *_scoped("deliveries"),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("dialect", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("order_key", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("retry_until", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("last_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_deliveries"),
        sa.UniqueConstraint("id", name="uq_deliveries_id"),
    )
    op.create_index(
        "ix_deliveries_event_seq_dialect_url",
        "deliveries",
        ["event_seq", "dialect", "url"],
        unique=True,
    )
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_deliveries_order_key_url_event_seq", "deliveries", ["order_key", "url", "event_seq"]
    )
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    op.create_index(
        "ix_deliveries_project_id_sandbox_seq", "deliveries", ["project_id", "sandbox", "seq"]
    )

    op.create_table(
        "delivery_attempts",
        _seq(),
        sa.Column("id", sa.Text(), nullable=False),
        *_scoped("delivery_attempts"),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_delivery_attempts"),
        sa.UniqueConstraint("id", name="uq_delivery_attempts_id"),
    )
    op.create_index(
        "ix_delivery_attempts_delivery_id_seq", "delivery_attempts", ["delivery_id", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_delivery_id_seq", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    for name in (
        "ix_deliveries_project_id_sandbox_seq",
        "ix_deliveries_event_id",
        "ix_deliveries_order_key_url_event_seq",
        "ix_deliveries_state_next_attempt_at",
        "ix_deliveries_event_seq_dialect_url",
    ):
        op.drop_index(name, table_name="deliveries")
    op.drop_table("deliveries")
