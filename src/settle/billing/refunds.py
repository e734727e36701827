"""Refunds of a settled invoice, asked for by invoice rather than by transaction (Reepay's
``POST /v1/refund``): the rules of the invoice around the ledger's own. Never commits.

An invoice is refundable once it is settled (its payment captured, in whole or in part), up to
what was captured and not refunded yet; without an amount, all of that. The refund itself is a
gateway operation of the invoice's transaction (``settle.billing.payments``: written pending,
the gateway called outside any database transaction, the outcome written after), so a refund
made here is the same refund the ProcessOut face lists, and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import msgspec

from settle.billing import payments
from settle.billing.payments import append_operation, lock_payment
from settle.billing.states import ManualTransfer
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


class NoteLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a credit note, as the refund was asked with it: ``amount`` minor units per
    unit, including VAT at ``vat_rate`` when ``amount_incl_vat`` (the order lines' rule,
    ``settle.invoices.vat``); ``order_line_id`` the invoice's line it credits, if any."""

    text: str
    amount: int
    quantity: int
    vat_rate: str | None = None
    amount_incl_vat: bool = True
    origin: str | None = None
    order_line_id: str | None = None

    @property
    def figures(self) -> vat.LineAmounts:
        return vat.line_amounts(
            self.amount, self.quantity, self.vat_rate, incl_vat=self.amount_incl_vat
        )


def lines_total(lines: Iterable[NoteLine]) -> int:
    """What a refund of these lines gives back, in minor units including VAT."""
    return sum(line.figures.amount for line in lines)


class CreditNote(msgspec.Struct, frozen=True, kw_only=True):
    """The credit note of one succeeded refund: what it gives back, with its VAT, and the
    lines it was asked with (none: the note is one line of the whole credit)."""

    id: str
    refund_id: str
    operation_id: str  # the refund operation (the vendor's transaction)
    amount: int  # including VAT, minor units
    amount_vat: int
    amount_ex_vat: int
    currency: str
    created_at: int  # when the refund succeeded
    text: str | None  # the refund's reason
    lines: tuple[NoteLine, ...] = ()


def credit_notes(
    invoice: Invoice,
    log: Iterable[Operation],
    lines: Mapping[str, Sequence[NoteLine]] | None = None,
) -> list[CreditNote]:
    """The invoice's credit notes: one per refund that succeeded (through a gateway or by
    hand), in the order they succeeded. A refund pending or failed gives nothing back, so it
    has no note (yet).

    VAT rule: a credit gives back VAT in proportion to the invoice's own, rounded by
    ``vat.vat_share`` (``round_half_even``, the rounding of the order lines), cumulatively:
    a note's VAT is the share of all refunded up to and including it minus the share of all
    refunded before it. A note's figures are fixed once written (later notes come after it),
    and the notes of a fully refunded invoice carry exactly its VAT, however it was split.

    A refund asked with lines (``lines``, by refund id: ``note_lines_of``) states its own
    rates: its note's VAT is the sum of its lines' (each by the order lines' rule), and the
    share rule goes on after it as if the note had taken its share (later notes keep their
    proportion; the notes' VAT then differs from the invoice's by what the lines stated).
    Pure: the notes are derived from the payment's operations and the lines asked for."""
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
        noted = tuple(lines.get(op.refund_id, ())) if lines else ()
        if noted:
            note_vat = sum(line.figures.amount_vat for line in noted)
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
                lines=noted,
            )
        )
    return out


_LINE_COLUMNS: Final = (
    "refund_id, position, text, amount, quantity, vat_rate, amount_incl_vat, origin, order_line_id"
)


async def save_note_lines(tx: Tx, scope: Scope, refund_id: str, lines: Sequence[NoteLine]) -> None:
    """Keep the lines a refund was asked with (in the refund's own database transaction)."""
    if not lines:
        return
    await tx.executemany(
        f"INSERT INTO credit_note_lines (project_id, sandbox, {_LINE_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [
            (
                scope.project_id,
                scope.sandbox,
                refund_id,
                position,
                line.text,
                line.amount,
                line.quantity,
                line.vat_rate,
                line.amount_incl_vat,
                line.origin,
                line.order_line_id,
            )
            for position, line in enumerate(lines)
        ],
    )


def refund_ids(log: Iterable[Operation]) -> list[str]:
    """The refunds of a log that have a credit note (succeeded)."""
    return [
        op.refund_id
        for op in log
        if op.type == OperationType.REFUND and op.status == "succeeded" and op.refund_id
    ]


async def note_lines_of(tx: Tx, scope: Scope, refunds: Sequence[str]) -> dict[str, list[NoteLine]]:
    """The lines of these refunds' credit notes, by refund id (one statement; none for an
    empty ``refunds``: an invoice never refunded reads nothing more)."""
    if not refunds:
        return {}
    marks = ", ".join(f"${i}" for i in range(3, len(refunds) + 3))
    rows = await tx.fetch(
        f"SELECT {_LINE_COLUMNS} FROM credit_note_lines"
        f" WHERE project_id = $1 AND sandbox = $2 AND refund_id IN ({marks})"
        " ORDER BY refund_id, position",
        scope.project_id,
        scope.sandbox,
        *refunds,
    )
    out: dict[str, list[NoteLine]] = {}
    for row in rows:
        out.setdefault(row["refund_id"], []).append(
            NoteLine(
                text=row["text"],
                amount=row["amount"],
                quantity=row["quantity"],
                vat_rate=row["vat_rate"],
                amount_incl_vat=bool(row["amount_incl_vat"]),
                origin=row["origin"],
                order_line_id=row["order_line_id"],
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
    lines: Sequence[NoteLine] = (),
) -> payments.Attempt:
    """Step 1 of refunding ``amount`` minor units (None: all that is left) of the invoice.
    Through the card's gateway: an invoice settled by hand is refunded by ``refund_manually``.
    ``lines``: its credit note's (``check_note_lines``), kept with the pending refund."""
    # Locked first, as every payment operation locks it: the checks below and the ledger's
    # see the same state, and a concurrent capture or refund waits.
    invoice = await invoices.get_invoice(tx, scope, invoice_id, lock=Lock.UPDATE)
    if invoice.state is not InvoiceState.SETTLED:
        raise ConflictError(
            f"The invoice {invoice_id!r} is not settled ({invoice.state.value}): only a settled"
            " invoice can be refunded.",
            code=ErrorCode.INVOICE_NOT_SETTLED,
        )
    transaction, log = await transactions.transaction_with_log(tx, scope, invoice.transaction_id)
    if transaction.card_reference is None or ledger.paid_by_hand(log):
        raise ConflictError(
            f"The invoice {invoice_id!r} was not settled by card: it cannot be refunded through"
            " a gateway (a manually settled invoice is refunded with manual_transfer).",
            code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
        )
    wanted = transaction.available_amount if amount is None else amount
    # The ledger refuses more than what is left (code TRANSACTION_AMOUNT_TOO_HIGH).
    attempt = await payments.begin_refund(
        tx, scope, invoice.transaction_id, wanted, reason=text, information=information
    )
    assert attempt.operation.refund_id is not None
    await save_note_lines(tx, scope, attempt.operation.refund_id, lines)
    return attempt


async def refund_manually(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    amount: int | None,
    transfer: ManualTransfer,
    *,
    text: str | None,
    lines: Sequence[NoteLine] = (),
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
    if not ledger.paid_by_hand(locked.log):
        raise ConflictError(
            f"The invoice {invoice_id!r} was settled by card: it is refunded through the card's"
            " gateway, without manual_transfer.",
            code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
        )
    wanted = locked.state.available_amount if amount is None else amount
    # More than is left: TRANSACTION_AMOUNT_TOO_HIGH.
    ledger.check_refund(locked.state, wanted, currency=locked.transaction.currency)
    op = transactions.new_operation(
        locked.transaction,
        OperationType.REFUND,
        wanted,
        gateway_name=ledger.MANUAL,
        refund_id=new_id("re_"),
        reason=text,
        metadata=transfer.as_metadata(),
    )
    op = msgspec.structs.replace(op, status="succeeded", completed_at=now_us())
    await append_operation(tx, locked, op)
    assert op.refund_id is not None
    await save_note_lines(tx, scope, op.refund_id, lines)
    await record_operations(tx, scope, [op], locked.transaction, locked.invoice)
    return op
