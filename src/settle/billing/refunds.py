"""Refunds of a settled invoice, asked for by invoice rather than by transaction (Reepay's
``POST /v1/refund``): the rules of the invoice around the ledger's own. Never commits.

An invoice is refundable once it is settled (its payment captured, in whole or in part), up to
what was captured and not refunded yet; without an amount, all of that. The refund itself is a
gateway operation of the invoice's transaction (``settle.billing.payments``: written pending,
the gateway called outside any database transaction, the outcome written after), so a refund
made here is the same refund the ProcessOut face lists, and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from settle.billing import payments
from settle.billing.payments import append_operation, lock_payment
from settle.billing.states import MANUAL, ManualTransfer
from settle.clock import now_us
from settle.db.database import Lock, Tx
from settle.errors import ConflictError, ErrorCode
from settle.events.payments import record_operations
from settle.ids import new_id
from settle.invoices import service as invoices
from settle.invoices import vat
from settle.invoices.models import Invoice, InvoiceState
from settle.payments import ledger
from settle.payments import service as transactions
from settle.payments.gateway import OperationType
from settle.payments.models import Operation
from settle.projects.models import Scope


def credit_note_id(refund_id: str) -> str:
    """The credit note a refund makes: one per refund, named after it (``re_X`` -> ``cn_X``),
    so that it needs no row of its own and a replayed refund names the same note."""
    return "cn_" + refund_id.removeprefix("re_")


class CreditNote(msgspec.Struct, frozen=True, kw_only=True):
    """The credit note of one succeeded refund: what it gives back, with its VAT."""

    id: str
    refund_id: str
    operation_id: str  # the refund operation (the vendor's transaction)
    amount: int  # including VAT, minor units
    amount_vat: int
    amount_ex_vat: int
    currency: str
    created_at: int  # when the refund succeeded
    text: str | None  # the refund's reason


def credit_notes(invoice: Invoice, log: Iterable[Operation]) -> list[CreditNote]:
    """The invoice's credit notes: one per refund that succeeded (through a gateway or by
    hand), in the order they succeeded. A refund pending or failed gives nothing back, so it
    has no note (yet).

    VAT rule: a credit gives back VAT in proportion to the invoice's own, rounded by
    ``vat.vat_share`` (``round_half_even``, the rounding of the order lines), cumulatively:
    a note's VAT is the share of all refunded up to and including it minus the share of all
    refunded before it. A note's figures are fixed once written (later notes come after it),
    and the notes of a fully refunded invoice carry exactly its VAT, however it was split.
    Pure: the notes are derived from the payment's operations, never stored."""
    refunds = sorted(
        (
            op
            for op in log
            if op.type == OperationType.REFUND and op.status == "succeeded" and op.refund_id
        ),
        key=lambda op: (op.completed_at or op.created_at, op.id),
    )
    if not refunds:  # most invoices, shown in every list: no VAT figures to work out
        return []
    amount = invoice.terms.amount
    included = vat.included_vat(invoice)
    out: list[CreditNote] = []
    refunded = shared = 0
    for op in refunds:
        assert op.refund_id is not None
        refunded += op.amount
        share = vat.vat_share(refunded, amount, included)
        note_vat, shared = share - shared, share
        out.append(
            CreditNote(
                id=credit_note_id(op.refund_id),
                refund_id=op.refund_id,
                operation_id=op.id,
                amount=op.amount,
                amount_vat=note_vat,
                amount_ex_vat=op.amount - note_vat,
                currency=op.currency,
                created_at=op.completed_at or op.created_at,
                text=op.reason,
            )
        )
    return out


async def begin_invoice_refund(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    amount: int | None,
    *,
    text: str | None,
    information: str | None = None,
) -> payments.Attempt:
    """Step 1 of refunding ``amount`` minor units (None: all that is left) of the invoice.
    Through the card's gateway: an invoice settled by hand is refunded by ``refund_manually``."""
    # Locked first, as every payment operation locks it: the checks below and the ledger's
    # see the same state, and a concurrent capture or refund waits.
    invoice = await invoices.get_invoice(tx, scope, invoice_id, lock=Lock.UPDATE, lines=False)
    if invoice.state is not InvoiceState.SETTLED:
        raise ConflictError(
            f"The invoice {invoice_id!r} is not settled ({invoice.state.value}): only a settled"
            " invoice can be refunded.",
            code=ErrorCode.INVOICE_NOT_SETTLED,
        )
    transaction = await transactions.get_transaction(tx, scope, invoice.transaction_id)
    if transaction.card_reference is None:
        raise ConflictError(
            f"The invoice {invoice_id!r} was not settled by card: it cannot be refunded through"
            " a gateway (a manually settled invoice is refunded with manual_transfer).",
            code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
        )
    wanted = transaction.available_amount if amount is None else amount
    # The ledger refuses more than what is left (code TRANSACTION_AMOUNT_TOO_HIGH).
    return await payments.begin_refund(
        tx, scope, invoice.transaction_id, wanted, reason=text, information=information
    )


async def refund_manually(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    amount: int | None,
    transfer: ManualTransfer,
    *,
    text: str | None,
) -> Operation:
    """Refund ``amount`` (None: all that is left) of an invoice settled by a manual transfer,
    by money paid back outside the gateway: a refund no gateway saw, succeeded as it is
    written, with the transfer's details as its metadata (as a manual settle is a capture no
    gateway saw). An invoice settled by card is refunded through its gateway instead."""
    locked = await lock_payment(tx, scope, invoice_id)
    invoice = locked.invoice
    if invoice.state is not InvoiceState.SETTLED:
        raise ConflictError(
            f"The invoice {invoice_id!r} is not settled ({invoice.state.value}): only a settled"
            " invoice can be refunded.",
            code=ErrorCode.INVOICE_NOT_SETTLED,
        )
    if locked.transaction.card_reference is not None or not any(
        op.type == OperationType.CAPTURE and op.gateway_name == MANUAL for op in locked.log
    ):
        raise ConflictError(
            f"The invoice {invoice_id!r} was settled by card: it is refunded through the card's"
            " gateway, without manual_transfer.",
            code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
        )
    wanted = locked.state.available_amount if amount is None else amount
    ledger.check_refund(locked.state, wanted)  # more than is left: TRANSACTION_AMOUNT_TOO_HIGH
    op = transactions.new_operation(
        locked.transaction,
        OperationType.REFUND,
        wanted,
        gateway_name=MANUAL,
        refund_id=new_id("re_"),
        reason=text,
        metadata=transfer.as_metadata(),
    )
    op = msgspec.structs.replace(op, status="succeeded", completed_at=now_us())
    await append_operation(tx, locked, op)
    await record_operations(tx, scope, [op], locked.transaction, locked.invoice)
    return op
