"""Transactions and their operations log: persistence. What an operation may do is the
ledger's to say (settle.payments.ledger); the orchestration is settle.billing.payments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from settle.clock import now_us
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.db.queries import Part, scoped_row, scoped_rows
from settle.errors import NotFoundError
from settle.ids import new_id
from settle.listing import PageQuery, fetch_page
from settle.payments.gateway import OperationType
from settle.payments.ledger import Derived
from settle.payments.models import WAITING, Operation, Transaction
from settle.projects.models import Scope

_FIELDS: Final = Transaction.__struct_fields__
_COLUMNS: Final = ", ".join(_FIELDS)
_INSERT: Final = (
    f"INSERT INTO transactions ({_COLUMNS}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(_FIELDS) + 1))})"
)
_OP_FIELDS: Final = Operation.__struct_fields__
_OP_COLUMNS: Final = ", ".join(_OP_FIELDS)
_OP_INSERT: Final = (
    f"INSERT INTO transaction_operations ({_OP_COLUMNS}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(_OP_FIELDS) + 1))})"
)
_JSON: Final = frozenset({"metadata", "customer_action"})
# What ``save_derived`` writes: all but the identity, the creation time and the metadata (built
# once, not on every payment step).
_SAVED: Final = tuple(
    f for f in _FIELDS if f not in ("id", "project_id", "sandbox", "created_at", "metadata")
)
_SAVE: Final = (
    "UPDATE transactions SET "
    + ", ".join(f"{n} = ${i}" for i, n in enumerate(_SAVED, start=2))
    + " WHERE id = $1"
)


def _from_row(row: Row) -> Transaction:
    values = {f: row[f] for f in _FIELDS}
    values["metadata"] = load_json(values["metadata"]) or {}
    # strict=False: SQLite hands booleans back as 0/1.
    return msgspec.convert(values, Transaction, strict=False)


def _op_from_row(row: Row) -> Operation:
    values = {f: row[f] for f in _OP_FIELDS}
    values["metadata"] = load_json(values["metadata"]) or {}
    values["customer_action"] = load_json(values["customer_action"])
    return msgspec.convert(values, Operation, strict=False)


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
        _INSERT, *(dump_json(t.metadata) if f == "metadata" else getattr(t, f) for f in _FIELDS)
    )


async def get_transaction(
    tx: Tx, scope: Scope, transaction_id: str, *, lock: Lock = Lock.NONE
) -> Transaction:
    row = await scoped_row(tx, "transactions", _COLUMNS, scope, transaction_id, lock=lock)
    if row is None:
        raise NotFoundError("transaction", transaction_id)
    return _from_row(row)


async def list_transactions(
    tx: Tx, scope: Scope, query: PageQuery, *, customer_id: str | None = None
) -> tuple[list[Transaction], bool]:
    rows, has_more, _ = await fetch_page(
        tx,
        table="transactions",
        columns=_COLUMNS,
        scope=scope,
        query=query,
        match=None if customer_id is None else {"customer_id": customer_id},
    )
    return [_from_row(r) for r in rows], has_more


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


# --- the operations log -------------------------------------------------------------------


def new_operation(
    t: Transaction,
    kind: OperationType,
    amount: int,
    *,
    gateway_name: str,
    operation_key: str | None = None,
    card_id: str | None = None,
    token_id: str | None = None,
    refund_id: str | None = None,
    reason: str | None = None,
    information: str | None = None,
    metadata: dict[str, str] | None = None,
    capture_after: int | None = None,
    on_decline: str | None = None,
) -> Operation:
    return Operation(
        id=new_id("op_"),
        project_id=t.project_id,
        sandbox=t.sandbox,
        transaction_id=t.id,
        type=kind.value,
        status="pending",
        amount=amount,
        currency=t.currency,
        gateway_name=gateway_name,
        # The gateway's idempotency key: random unless the caller derives it from its own.
        operation_key=operation_key or new_id("opk_"),
        card_id=card_id if card_id is not None else t.card_id,
        token_id=token_id if token_id is not None else t.token_id,
        refund_id=refund_id,
        reason=reason,
        information=information,
        metadata=metadata or {},
        created_at=now_us(),
        capture_after=capture_after,
        on_decline=on_decline,
    )


def _column(field: str, value: Any) -> Any:
    return dump_json(value) if field in _JSON and value is not None else value


async def insert_operation(tx: Tx, op: Operation) -> None:
    await tx.execute(
        _OP_INSERT,
        *(
            dump_json(getattr(op, f))
            if f in _JSON and getattr(op, f) is not None
            else getattr(op, f)
            for f in _OP_FIELDS
        ),
    )


async def complete_operation(tx: Tx, op: Operation) -> None:
    """Write the outcome of a pending operation (once: a completed row is never changed)."""
    await tx.execute(
        "UPDATE transaction_operations SET status = $2, gateway_reference = $3, error_code = $4,"
        " error_message = $5, customer_action = $6, completed_at = $7"
        " WHERE id = $1 AND status = 'pending'",
        op.id,
        op.status,
        op.gateway_reference,
        op.error_code,
        op.error_message,
        None if op.customer_action is None else dump_json(op.customer_action),
        op.completed_at,
    )


async def note_customer_action(tx: Tx, op_id: str, action: dict[str, str]) -> None:
    """A pending operation waits for the payer: where to send them."""
    await tx.execute(
        "UPDATE transaction_operations SET customer_action = $2"
        " WHERE id = $1 AND status = 'pending'",
        op_id,
        dump_json(action),
    )


async def operations_of(tx: Tx, transaction_id: str) -> list[Operation]:
    rows = await tx.fetch(
        f"SELECT {_OP_COLUMNS} FROM transaction_operations WHERE transaction_id = $1 ORDER BY seq",
        transaction_id,
    )
    return [_op_from_row(r) for r in rows]


# A transaction beside its operations log: one row per operation (one row with NULL
# operation columns for an empty log), in the log's order.
_LOG_NAMES: Final = (*_FIELDS, *(f"o_{f}" for f in _OP_FIELDS))
_LOG_EXPRS: Final = (*(f"t.{f}" for f in _FIELDS), *(f"o.{f}" for f in _OP_FIELDS))
_LOG_FROM: Final = (
    "FROM transactions t LEFT JOIN transaction_operations o ON o.transaction_id = t.id"
)
_LOG_JOIN: Final = (
    f"SELECT {', '.join(f'{e} AS {n}' for e, n in zip(_LOG_EXPRS, _LOG_NAMES, strict=True))}"
    f" {_LOG_FROM}"
    " WHERE t.id = $1 AND t.project_id = $2 AND t.sandbox = $3 ORDER BY o.seq"
)


def log_part(where: str) -> Part:
    """The transaction that ``where`` finds (a condition on ``transactions t``) with its log,
    as a part of a ``settle.db.queries.union_of`` statement (read back with ``from_log``)."""
    return Part(
        _LOG_NAMES,
        _LOG_EXPRS,
        ("transactions t", "transaction_operations o"),
        f"{_LOG_FROM} WHERE {where}",
        order="o.seq",
    )


def from_log(rows: list[Row] | list[dict[str, Any]]) -> tuple[Transaction, list[Operation]] | None:
    """The transaction and its log from ``_LOG_JOIN``-shaped rows (None: no row)."""
    if not rows:
        return None
    log = [
        _op_from_row({f: row[f"o_{f}"] for f in _OP_FIELDS})
        for row in rows
        if row["o_id"] is not None
    ]
    return _from_row(rows[0]), log


async def transaction_with_log(
    tx: Tx, scope: Scope, transaction_id: str
) -> tuple[Transaction, list[Operation]]:
    """A transaction and its operations log in one statement (a payment step reads both under
    its invoice's lock, which every writer of either holds: one round trip, not two)."""
    found = from_log(await tx.fetch(_LOG_JOIN, transaction_id, scope.project_id, scope.sandbox))
    if found is None:
        raise NotFoundError("transaction", transaction_id)
    return found


async def operations_for(tx: Tx, transaction_ids: Iterable[str]) -> dict[str, list[Operation]]:
    """The logs of several transactions in one statement."""
    wanted = sorted(set(transaction_ids))
    found: dict[str, list[Operation]] = {i: [] for i in wanted}
    if not wanted:
        return found
    marks = ", ".join(f"${i}" for i in range(1, len(wanted) + 1))
    rows = await tx.fetch(
        f"SELECT {_OP_COLUMNS} FROM transaction_operations WHERE transaction_id IN ({marks})"
        " ORDER BY seq",
        *wanted,
    )
    for row in rows:
        found[row["transaction_id"]].append(_op_from_row(row))
    return found


async def get_operation(tx: Tx, operation_key: str, *, lock: Lock = Lock.NONE) -> Operation | None:
    row = await tx.fetchrow(
        f"SELECT {_OP_COLUMNS} FROM transaction_operations WHERE operation_key = $1",
        operation_key,
        lock=lock,
    )
    return None if row is None else _op_from_row(row)


async def pending_operations(tx: Tx, started_before: int) -> list[Operation]:
    """Operations still pending that began before ``started_before`` (for recovery)."""
    rows = await tx.fetch(
        f"SELECT {_OP_COLUMNS} FROM transaction_operations"
        " WHERE status = 'pending' AND created_at < $1 ORDER BY seq",
        started_before,
    )
    return [_op_from_row(r) for r in rows]


async def get_refund(tx: Tx, scope: Scope, refund_id: str) -> Operation:
    """The refund operation whose refund id is ``refund_id`` (unique: one indexed lookup)."""
    row = await tx.fetchrow(
        f"SELECT {_OP_COLUMNS} FROM transaction_operations"
        " WHERE refund_id = $1 AND project_id = $2 AND sandbox = $3",
        refund_id,
        scope.project_id,
        scope.sandbox,
    )
    if row is None:
        raise NotFoundError("refund", refund_id)
    return _op_from_row(row)


async def refunds_of(tx: Tx, scope: Scope, transaction_id: str) -> list[Operation]:
    await get_transaction(tx, scope, transaction_id)
    return [op for op in await operations_of(tx, transaction_id) if op.refund_id is not None]


async def save_derived(tx: Tx, t: Transaction, state: Derived, **source: Any) -> Transaction:
    """Write what the log now says of ``t`` (and, at the first authorization, its source and
    checks: ``card_id``, ``token_id``, ``gateway_name``, ``cvc_check``, ...)."""
    updated = msgspec.structs.replace(
        t,
        status=state.status,
        authorized_amount=state.authorized_amount,
        captured_amount=state.captured_amount,
        refunded_amount=state.refunded_amount,
        voided_amount=state.voided_amount,
        error_code=state.error_code,
        error_message=state.error_message,
        authorized_at=state.authorized_at,
        captured_at=state.captured_at,
        voided_at=state.voided_at,
        refunded_at=state.refunded_at,
        chargedback_at=state.chargedback_at,
        updated_at=now_us(),
        **{k: v for k, v in source.items() if v is not None},
    )
    await tx.execute(_SAVE, t.id, *(getattr(updated, n) for n in _SAVED))
    return updated
