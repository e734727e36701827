"""The events a payment records: which transaction and invoice events follow from an operation
of the log (settle.billing.payments), in one place, so the payment code calls one function
where an operation is written or completed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from settle.db.database import Tx
from settle.events.outbox import record
from settle.events.types import EventType as E
from settle.invoices.models import Invoice, InvoiceState
from settle.payments.gateway import OperationType as T
from settle.payments.models import Operation, OperationStatus, Transaction
from settle.projects.models import Scope

# What an operation tells of its transaction once written (an authorization: requested) or
# completed. An increment of an authorization, and a void or refund that failed (the
# transaction stays as it was), have no event.
TRANSACTION_EVENTS: Final[dict[tuple[str, OperationStatus], E]] = {
    (T.AUTHORIZATION, "pending"): E.TRANSACTION_REQUESTED,
    (T.AUTHORIZATION, "succeeded"): E.TRANSACTION_AUTHORIZED,
    (T.AUTHORIZATION, "failed"): E.TRANSACTION_FAILED,
    (T.CAPTURE, "succeeded"): E.TRANSACTION_CAPTURED,
    (T.CAPTURE, "failed"): E.TRANSACTION_FAILED,
    (T.VOID, "succeeded"): E.TRANSACTION_VOIDED,
    (T.REFUND, "succeeded"): E.TRANSACTION_REFUNDED,
    (T.CHARGEBACK, "succeeded"): E.TRANSACTION_DISPUTED,
}
# What the invoice's new state tells (Reepay announces payments this way).
INVOICE_EVENTS: Final[dict[InvoiceState, E]] = {
    InvoiceState.AUTHORIZED: E.INVOICE_AUTHORIZED,
    InvoiceState.SETTLED: E.INVOICE_SETTLED,
    InvoiceState.FAILED: E.INVOICE_FAILED,
    InvoiceState.CANCELLED: E.INVOICE_CANCELLED,
}


async def record_operations(
    tx: Tx,
    scope: Scope,
    operations: Sequence[Operation],
    transaction: Transaction,
    invoice: Invoice,
    *,
    state_before: InvoiceState | None = None,
) -> None:
    """Record what ``operations`` (just written, or just completed, in log order) made of
    ``transaction`` and ``invoice`` (both as they are now). ``state_before``: the invoice's
    state before this step, when the step may have moved it."""
    for operation in operations:
        kind = TRANSACTION_EVENTS.get((operation.type, operation.status))
        if kind is not None:
            await record(tx, scope, kind, of=transaction)
    invoice_kind = None
    if state_before is not None and invoice.state is not state_before:
        invoice_kind = INVOICE_EVENTS.get(invoice.state)
    refunded = any(op.type == T.REFUND and op.status == "succeeded" for op in operations)
    if invoice_kind is None and not refunded:
        return
    if invoice_kind is not None:
        await record(tx, scope, invoice_kind, of=invoice)
    if refunded:
        await record(tx, scope, E.INVOICE_REFUNDED, of=invoice)
