"""an invoice's lines live in its own row (a JSON array), not in a table of their own

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 00:00:00

Lines are the invoice's values: written with it, replaced whole, never looked up alone (no
query ever named a line id). As rows of their own each cost PostgreSQL a heap tuple, three
index entries and a foreign-key check: ~30 us of its CPU per line, a third of what a
3-line Reepay invoice cost it, and every read of an invoice joined them back
(bench/README.md, "Lines in the invoice's row").

The existing lines are copied in, in their order, then the table goes; downgrade puts them
back in a table. On a large database the copy runs in Python, 1,000 invoices per batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# The line's fields as the invoice_lines table held them (0001 and 0004), besides its
# invoice and position: the keys of each element of invoices.lines.
_FIELDS = (
    "id",
    "name",
    "amount",
    "quantity",
    "vat_rate",
    "amount_incl_vat",
    "discount_amount",
    "type",
    "reference",
    "description",
    "brand",
    "model",
    "condition",
    "category",
    "marketplace_merchant",
    "marketplace_merchant_is_business",
    "marketplace_merchant_created_at",
    "metadata",
)
_BOOLEANS = ("amount_incl_vat", "marketplace_merchant_is_business")
_BATCH = 1000
# A server-side cursor on PostgreSQL: the rows are read a batch at a time, not all at once.
_STREAMED: dict[str, Any] = {"stream_results": True, "yield_per": _BATCH}

_invoices = sa.table("invoices", sa.column("id", sa.Text()), sa.column("lines", _JSON))


def _element(row: sa.Row[Any]) -> dict[str, Any]:
    """One line as the application writes it (``settle.invoices.service``): absent fields are
    their defaults, so NULL columns are left out."""
    found = row._mapping
    line: dict[str, Any] = {}
    for name in _FIELDS:
        value = found[name]
        if value is None:
            continue
        if name in _BOOLEANS:
            value = bool(value)  # SQLite hands 0/1 back
        elif name == "metadata":
            value = json.loads(value) if isinstance(value, str) else value
            if not value:
                continue
        line[name] = value
    return line


def _grouped(conn: sa.Connection) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    rows = conn.execute(
        sa.text(
            f"SELECT invoice_id, {', '.join(_FIELDS)} FROM invoice_lines"
            " ORDER BY invoice_id, position"
        ),
        execution_options=_STREAMED,
    )
    current: str | None = None
    lines: list[dict[str, Any]] = []
    for row in rows:
        if row.invoice_id != current:
            if current is not None:
                yield current, lines
            current, lines = row.invoice_id, []
        lines.append(_element(row))
    if current is not None:
        yield current, lines


def upgrade() -> None:
    # A constant default: an instant ADD COLUMN on both backends, and an invoice without lines
    # needs no write.
    op.add_column(
        "invoices", sa.Column("lines", _JSON, nullable=False, server_default=sa.text("'[]'"))
    )
    conn = op.get_bind()
    update = (
        _invoices.update()
        .where(_invoices.c.id == sa.bindparam("b_id"))
        .values(lines=sa.bindparam("b_lines", type_=_JSON))
    )
    batch: list[dict[str, Any]] = []
    for invoice_id, lines in _grouped(conn):
        batch.append({"b_id": invoice_id, "b_lines": lines})
        if len(batch) == _BATCH:
            conn.execute(update, batch)
            batch = []
    if batch:
        conn.execute(update, batch)
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_invoice_id_position"))
    op.drop_table("invoice_lines")


def downgrade() -> None:
    lines_table = op.create_table(
        "invoice_lines",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("discount_amount", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("condition", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("marketplace_merchant", sa.Text(), nullable=True),
        sa.Column("marketplace_merchant_is_business", sa.Boolean(), nullable=True),
        sa.Column("marketplace_merchant_created_at", sa.BigInteger(), nullable=True),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("vat_rate", sa.Text(), nullable=True),
        sa.Column("amount_incl_vat", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint("id", name=op.f("uq_invoice_lines_id")),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_lines_invoice_id_position"),
            ["invoice_id", "position"],
            unique=True,
        )
    conn = op.get_bind()
    source = sa.table("invoices", sa.column("id", sa.Text()), sa.column("lines", _JSON))
    rows: list[dict[str, Any]] = []
    found = conn.execute(
        sa.select(source.c.id, source.c.lines).order_by(source.c.id),
        execution_options=_STREAMED,
    )
    for invoice_id, lines in found:
        for position, line in enumerate(lines or []):
            row = {name: line.get(name) for name in _FIELDS}
            # The application's defaults, for the fields it left out.
            row["metadata"] = line.get("metadata") or {}
            row["amount_incl_vat"] = line.get("amount_incl_vat", True)
            row["quantity"] = line.get("quantity", 1)
            row["amount"] = line.get("amount", 0)
            rows.append({**row, "invoice_id": invoice_id, "position": position})
        if len(rows) >= _BATCH:
            conn.execute(lines_table.insert(), rows)
            rows = []
    if rows:
        conn.execute(lines_table.insert(), rows)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("lines")
