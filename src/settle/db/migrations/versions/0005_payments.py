"""payments: cards, tokens, the transaction operations log, the sandbox gateway's memory

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
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


_TRANSACTION_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("card_id", sa.Text()),
    ("token_id", sa.Text()),
    ("gateway_name", sa.Text()),
    ("card_reference", sa.Text()),
    ("cvc_check", sa.Text()),
    ("avs_check", sa.Text()),
    ("three_d_s_status", sa.Text()),
    ("authorized_at", sa.BigInteger()),
    ("captured_at", sa.BigInteger()),
    ("voided_at", sa.BigInteger()),
    ("refunded_at", sa.BigInteger()),
    ("chargedback_at", sa.BigInteger()),
]


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable): no rebuild of a table of millions of transactions.
    for name, type_ in _TRANSACTION_COLUMNS:
        op.add_column("transactions", sa.Column(name, type_, nullable=True))
    op.create_index("ix_transactions_customer_id", "transactions", ["customer_id"])

    op.create_table(
        "transaction_operations",
        _seq(),
        sa.Column("id", sa.Text(), nullable=False),
        *_scoped("transaction_operations"),
        sa.Column("transaction_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("card_id", sa.Text(), nullable=True),
        sa.Column("token_id", sa.Text(), nullable=True),
        sa.Column("gateway_name", sa.Text(), nullable=False),
        sa.Column("gateway_reference", sa.Text(), nullable=True),
        sa.Column("operation_key", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("refund_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("information", sa.Text(), nullable=True),
        sa.Column(
            "customer_action",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("capture_after", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_transaction_operations"),
        sa.UniqueConstraint("id", name="uq_transaction_operations_id"),
        sa.UniqueConstraint("operation_key", name="uq_transaction_operations_operation_key"),
        sa.UniqueConstraint("refund_id", name="uq_transaction_operations_refund_id"),
    )
    op.create_index(
        "ix_transaction_operations_transaction_id_seq",
        "transaction_operations",
        ["transaction_id", "seq"],
    )
    op.create_index("ix_transaction_operations_status", "transaction_operations", ["status"])

    op.create_table(
        "cards",
        _seq(),
        sa.Column("id", sa.Text(), nullable=False),
        *_scoped("cards"),
        sa.Column("scheme", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("iin", sa.Text(), nullable=False),
        sa.Column("last_4_digits", sa.Text(), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("cvc_check", sa.Text(), nullable=False),
        sa.Column("avs_check", sa.Text(), nullable=False),
        sa.Column("gateway_name", sa.Text(), nullable=False),
        sa.Column("gateway_reference", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("anonymized_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_cards"),
        sa.UniqueConstraint("id", name="uq_cards_id"),
    )
    op.create_index("ix_cards_project_id_sandbox_seq", "cards", ["project_id", "sandbox", "seq"])

    op.create_table(
        "tokens",
        _seq(),
        sa.Column("id", sa.Text(), nullable=False),
        *_scoped("tokens"),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("card_id", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_tokens"),
        sa.UniqueConstraint("id", name="uq_tokens_id"),
    )
    op.create_index("ix_tokens_customer_id_seq", "tokens", ["customer_id", "seq"])

    op.create_table(
        "sandbox_vault",
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("behaviour", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reference", name="pk_sandbox_vault"),
    )
    op.create_table(
        "sandbox_operations",
        sa.Column("operation_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column(
            "outcome",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operation_key", name="pk_sandbox_operations"),
    )


def downgrade() -> None:
    op.drop_table("sandbox_operations")
    op.drop_table("sandbox_vault")
    op.drop_index("ix_tokens_customer_id_seq", table_name="tokens")
    op.drop_table("tokens")
    op.drop_index("ix_cards_project_id_sandbox_seq", table_name="cards")
    op.drop_table("cards")
    op.drop_index("ix_transaction_operations_status", table_name="transaction_operations")
    op.drop_index(
        "ix_transaction_operations_transaction_id_seq", table_name="transaction_operations"
    )
    op.drop_table("transaction_operations")
    op.drop_index("ix_transactions_customer_id", table_name="transactions")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        for name, _ in reversed(_TRANSACTION_COLUMNS):
            batch_op.drop_column(name)
