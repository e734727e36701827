"""Transaction persistence. Payment operations (authorize, capture, refund) build on this."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from settle.db.codec import dump_json, load_json
from settle.db.database import Row, Tx
from settle.db.queries import scoped_row, scoped_rows
from settle.errors import NotFoundError
from settle.ids import new_id
from settle.payments.models import WAITING, Transaction
from settle.projects.models import Scope

_COLUMNS: Final = (
    "id, project_id, sandbox, invoice_id, customer_id, name, amount, currency, status,"
    " authorized_amount, captured_amount, refunded_amount, voided_amount, error_code,"
    " error_message, metadata, created_at, updated_at"
)
_INSERT: Final = (
    f"INSERT INTO transactions ({_COLUMNS}) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
)


def _from_row(row: Row) -> Transaction:
    return Transaction(
        id=row["id"],
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        invoice_id=row["invoice_id"],
        customer_id=row["customer_id"],
        name=row["name"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        authorized_amount=row["authorized_amount"],
        captured_amount=row["captured_amount"],
        refunded_amount=row["refunded_amount"],
        voided_amount=row["voided_amount"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        metadata=load_json(row["metadata"]) or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def new_waiting_transaction(
    scope: Scope,
    *,
    invoice_id: str,
    customer_id: str | None,
    name: str | None,
    amount: int,
    currency: str,
    now: int,
) -> Transaction:
    return Transaction(
        id=new_id("tr_"),
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        invoice_id=invoice_id,
        customer_id=customer_id,
        name=name,
        amount=amount,
        currency=currency,
        status=WAITING,
        created_at=now,
        updated_at=now,
    )


async def insert_transaction(tx: Tx, t: Transaction) -> None:
    await tx.execute(
        _INSERT,
        t.id,
        t.project_id,
        t.sandbox,
        t.invoice_id,
        t.customer_id,
        t.name,
        t.amount,
        t.currency,
        t.status,
        t.authorized_amount,
        t.captured_amount,
        t.refunded_amount,
        t.voided_amount,
        t.error_code,
        t.error_message,
        dump_json(t.metadata),
        t.created_at,
        t.updated_at,
    )


async def get_transaction(tx: Tx, scope: Scope, transaction_id: str) -> Transaction:
    row = await scoped_row(tx, "transactions", _COLUMNS, scope, transaction_id)
    if row is None:
        raise NotFoundError("transaction", transaction_id)
    return _from_row(row)


async def get_transactions(tx: Tx, scope: Scope, ids: Iterable[str]) -> dict[str, Transaction]:
    rows = await scoped_rows(tx, "transactions", _COLUMNS, scope, ids)
    return {row["id"]: _from_row(row) for row in rows}


async def set_waiting_terms(
    tx: Tx, transaction_id: str, *, amount: int, customer_id: str | None, now: int
) -> None:
    """Follow an unpaid invoice's new amount or customer."""
    await tx.execute(
        "UPDATE transactions SET amount = $2, customer_id = $3, updated_at = $4"
        " WHERE id = $1 AND status = 'waiting'",
        transaction_id,
        amount,
        customer_id,
        now,
    )


async def delete_transaction(tx: Tx, transaction_id: str) -> None:
    await tx.execute(
        "DELETE FROM transactions WHERE id = $1 AND status = 'waiting'", transaction_id
    )
