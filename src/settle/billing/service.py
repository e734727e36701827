"""Invoice operations that move the invoice's transaction with it. Never commits."""

from __future__ import annotations

from typing import Any

from settle.clock import now_us
from settle.db.database import Tx
from settle.errors import ConflictError, ErrorCode
from settle.events.outbox import record
from settle.events.types import EventType
from settle.ids import new_id
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceInput
from settle.payments import service as payments
from settle.payments.models import WAITING
from settle.projects.models import Scope


async def create_invoice(
    tx: Tx, scope: Scope, data: InvoiceInput, *, customer_held: bool = False
) -> Invoice:
    """A new invoice, with the transaction that is ``waiting`` for its payment.
    ``customer_held``: the caller read its customer live under a share lock (see
    ``invoices.check_references``)."""
    await invoices.check_references(tx, scope, data, customer_held=customer_held)
    now = now_us()
    invoice_id = new_id("iv_")
    transaction = payments.new_waiting_transaction(
        scope,
        invoice_id=invoice_id,
        customer_id=data.customer_id,
        name=data.name,
        amount=data.amount,
        currency=data.currency,
        now=now,
    )
    invoice = invoices.new_invoice(
        scope, data, invoice_id=invoice_id, transaction_id=transaction.id, now=now
    )
    await invoices.insert_invoice(tx, invoice)
    await payments.insert_transaction(tx, transaction)
    await record(tx, scope, EventType.INVOICE_CREATED, of=invoice)
    return invoice


async def _unpaid(tx: Tx, scope: Scope, invoice_id: str, action: str) -> Invoice:
    """The invoice, locked, if nobody tried to pay it yet (a declined attempt counts: its
    transaction's log must keep describing the amount it was for)."""
    invoice = await invoices.lock_unpaid(tx, scope, invoice_id, action)
    transaction = await payments.get_transaction(tx, scope, invoice.transaction_id)
    if transaction.status != WAITING:
        raise ConflictError(
            f"The invoice {invoice_id!r} cannot be {action}: its transaction is "
            f"{transaction.status}.",
            code=ErrorCode.INVOICE_ALREADY_USED,
        )
    return invoice


async def update_invoice(tx: Tx, scope: Scope, invoice_id: str, changes: InvoiceChanges) -> Invoice:
    invoice = await _unpaid(tx, scope, invoice_id, "changed")
    updated = await invoices.apply_changes(tx, invoice, changes)
    t = updated.terms
    await payments.set_waiting_terms(
        tx,
        updated.transaction_id,
        amount=t.amount,
        customer_id=t.customer_id,
        now=updated.updated_at,
    )
    await record(tx, scope, EventType.INVOICE_CHANGED, of=updated)
    return updated


async def assign_customer(tx: Tx, scope: Scope, invoice_id: str, customer_id: str) -> Invoice:
    invoice = await _unpaid(tx, scope, invoice_id, "reassigned")
    updated = await invoices.set_customer(tx, scope, invoice, customer_id)
    await payments.set_waiting_terms(
        tx,
        updated.transaction_id,
        amount=updated.terms.amount,
        customer_id=customer_id,
        now=updated.updated_at,
    )
    await record(tx, scope, EventType.INVOICE_CHANGED, of=updated)
    return updated


async def delete_invoice(tx: Tx, scope: Scope, invoice_id: str) -> None:
    """Only an invoice nobody paid can be deleted; its waiting transaction goes with it."""
    invoice = await _unpaid(tx, scope, invoice_id, "deleted")
    await invoices.mark_deleted(tx, invoice)
    await payments.delete_transaction(tx, invoice.transaction_id)
    # The invoice as it was last: a deleted invoice can no longer be read.
    await record(tx, scope, EventType.INVOICE_DELETED, of=invoice)


async def set_metadata(tx: Tx, scope: Scope, invoice: Invoice, metadata: dict[str, str]) -> Invoice:
    """Replace the metadata of ``invoice`` (locked by the caller), in any state."""
    updated = await invoices.set_metadata(tx, invoice, metadata)
    await record(tx, scope, EventType.INVOICE_CHANGED, of=updated)
    return updated


async def set_attribute(tx: Tx, scope: Scope, invoice: Invoice, name: str, value: Any) -> Invoice:
    """Set one descriptive attribute (an address, ...) of ``invoice`` (locked by the caller),
    in any state."""
    updated = await invoices.set_attribute(tx, invoice, name, value)
    await record(tx, scope, EventType.INVOICE_CHANGED, of=updated)
    return updated
