"""Reepay refunds: ``POST /v1/refund`` refunds a settled invoice (by id or handle), up to what
was settled and not refunded yet; ``GET /v1/refund/{id}`` reads one back.

A refund is an operation of the invoice's payment (``settle.billing.refunds``): a card refund
goes to the gateway outside any database transaction, through ``Call.pay``, and is the same
refund the ProcessOut face lists. Each refund that succeeded makes one credit note
(``credit_note_id``), shown in the invoice's ``credit_notes`` (``billing.refunds.credit_notes``:
its VAT a share of the invoice's); a refund still processing or failed names none.

The amount refunded is ``amount`` (including VAT; with ``amount_incl_vat: false``, excluding
it, and the VAT at ``vat`` is added, by ``settle.invoices.vat``'s one rounding rule), or the sum
of ``note_lines`` (each ``amount`` per unit times ``quantity``, likewise), or, with neither,
all that is left to refund; not both ``amount`` and ``note_lines``. An ``amount`` with a ``vat``
is kept as one such line (``stated_line``: the note credits the VAT the refund states). The
lines are kept with the refund and shown as its credit note's ``credit_note_lines`` (each
line's figures by the order lines' rule; the note's VAT is then its lines'): ``text`` 1-1024
characters, ``amount`` at
least 1 minor unit per unit, ``quantity`` at least 1, ``vat`` a fraction, ``origin`` one of the
vendor's words (``ondemand`` when absent), ``order_line_id`` an order line of the refunded
invoice (code 1 otherwise), at most 100 lines adding up to at most the refundable amount.
The body's ``key`` replays a refund instead of repeating it: it is the request's idempotency
key (an ``Idempotency-Key`` header, if sent, takes its place), so a retry with the same key
and body gets the first answer, and the same key with another body a 400.

``manual_transfer`` asks for a manual refund, which only a manually settled invoice can have:
money paid back outside the gateway, written at once in one transaction (type ``manual``); an
invoice settled by card answers code 109 (refund it through its gateway, without
``manual_transfer``), and a manually settled one refunded without it answers 109 too. An
``acquirer_reference`` is kept as the refund's information (the ProcessOut face shows it).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import under_lock
from settle.api.reepay import convert
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import find_invoice, json_response, path_ref, start
from settle.api.reepay.convert import lookup_handle
from settle.api.reepay.invoices import manual_transfer
from settle.api.reepay.render import CREDIT_NOTE_TEXT
from settle.api.reepay.schemas import Base, Key, MinorUnits, Quantity, Rate, Str, Text
from settle.billing import payments
from settle.billing import refunds as billing
from settle.billing.states import ManualTransfer
from settle.clock import rfc3339
from settle.db.database import Tx
from settle.errors import ErrorCode, invalid
from settle.invoices import vat
from settle.invoices.models import Invoice
from settle.money import MAX_MINOR
from settle.payments import service as transactions
from settle.payments.ledger import MANUAL
from settle.payments.models import Operation


class CreateCreditNoteLine(Base):
    amount: MinorUnits
    text: Annotated[str, Meta(min_length=1, max_length=1024)]
    quantity: Quantity
    vat: Rate = msgspec.field(default_factory=msgspec.Raw)
    amount_incl_vat: bool | None = None
    origin: Str | None = None
    order_line_id: Str | None = None


class CreateRefund(Base):
    invoice: Annotated[str, Meta(min_length=1, max_length=255)]
    key: Key | None = None
    amount: Annotated[int, Meta(ge=1, le=MAX_MINOR)] | None = None
    vat: Rate = msgspec.field(default_factory=msgspec.Raw)
    amount_incl_vat: bool | None = None
    text: Text | None = None
    note_lines: Annotated[list[CreateCreditNoteLine], Meta(min_length=1, max_length=100)] | None = (
        None
    )
    manual_transfer: dict[str, Any] | None = None  # see the docstring
    acquirer_reference: Str | None = None


# The vendor's CreditNoteLine origins (openapi.derived.json).
NOTE_LINE_ORIGINS: Final = (
    "plan",
    "add_on",
    "ondemand",
    "additional_cost",
    "credit",
    "discount",
    "setup_fee",
    "surcharge_fee",
    "metered_billing_product",
)


def note_lines(body: CreateRefund) -> list[billing.NoteLine]:
    """The credit note's lines the body asks for, checked as order lines are (none without
    ``note_lines``)."""
    out = []
    for i, line in enumerate(body.note_lines or ()):
        field = f"note_lines[{i}]"
        if not line.text.strip():
            raise invalid(f"{field}.text", "must not be blank.")
        if line.amount < 1:
            raise invalid(
                f"{field}.amount", "must be at least 1 (minor units).", ErrorCode.INVALID_AMOUNT
            )
        if line.origin is not None and line.origin not in NOTE_LINE_ORIGINS:
            raise invalid(
                f"{field}.origin",
                f"must be one of {', '.join(NOTE_LINE_ORIGINS)}.",
                ErrorCode.INVALID_ENUM,
            )
        out.append(
            billing.NoteLine(
                text=line.text,
                amount=line.amount,
                quantity=line.quantity,
                vat_rate=convert.rate(line.vat, f"{field}.vat"),
                amount_incl_vat=line.amount_incl_vat is not False,
                origin=line.origin,
                order_line_id=line.order_line_id,
            )
        )
    return out


def stated_line(body: CreateRefund) -> list[billing.NoteLine]:
    """A refund of ``amount`` at a ``vat`` it states: its credit note's one line, so that the
    note credits that VAT (a note without lines takes a share of the invoice's VAT instead,
    which dropped the rate the refund was computed with). No line without a rate."""
    if body.note_lines is not None or body.amount is None:
        return []
    rate = convert.rate(body.vat, "vat")
    if rate is None:
        return []
    text = body.text if body.text and body.text.strip() else CREDIT_NOTE_TEXT
    return [
        billing.NoteLine(
            text=text,
            amount=body.amount,
            quantity=1,
            vat_rate=rate,
            amount_incl_vat=body.amount_incl_vat is not False,
        )
    ]


def check_order_lines(lines: list[billing.NoteLine], invoice: Invoice) -> None:
    """A line's ``order_line_id`` names an order line of the refunded invoice."""
    known = {line.id for line in invoice.lines}
    for i, line in enumerate(lines):
        if line.order_line_id is not None and line.order_line_id not in known:
            raise invalid(
                f"note_lines[{i}].order_line_id",
                f"is not an order line of the invoice {invoice.terms.handle or invoice.id!r}.",
            )


def _refund_amount(body: CreateRefund, lines: list[billing.NoteLine]) -> int | None:
    """What the body asks to refund, in minor units including VAT (None: all that is left)."""
    if body.note_lines is None:
        if body.amount is None:
            return None
        rate = convert.rate(body.vat, "vat")
        return vat.line_amounts(
            body.amount, 1, rate, incl_vat=body.amount_incl_vat is not False
        ).amount
    if body.amount is not None:
        raise invalid("amount", "give either amount or note_lines, not both.")
    total = billing.lines_total(lines)
    if not 0 < total <= MAX_MINOR:
        raise invalid(
            "note_lines",
            f"must add up to more than 0, at most {MAX_MINOR}.",
            ErrorCode.INVALID_AMOUNT,
        )
    return total


# Operation status -> Reepay's refund state.
_STATES: Final = {"succeeded": "refunded", "failed": "failed", "pending": "processing"}
REFUND_TYPES: Final = ("card", "manual")  # through the card's gateway, or paid back by hand


def refund(op: Operation, invoice_id: str) -> dict[str, Any]:
    """A refund operation as Reepay's Refund."""
    assert op.refund_id is not None
    out: dict[str, Any] = {
        "id": op.refund_id,
        "state": _STATES[op.status],
        "invoice": invoice_id,
        "amount": op.amount,
        "currency": op.currency,
        "transaction": op.id,
        "type": "manual" if op.gateway_name == MANUAL else "card",
        "created": rfc3339(op.created_at),
    }
    if op.status == "succeeded":  # as billing.refunds.credit_notes: nothing given back yet
        out["credit_note_id"] = billing.credit_note_id(op.refund_id)
    if op.status == "failed":
        out["error"] = op.error_code or "refund_failed"
        out["error_state"] = "processing_error"
        if op.error_message:
            out["acquirer_message"] = op.error_message
    return out


# The Refund schema of the document: the vendor's, narrowed to what ``refund`` writes.
REFUND_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": sorted(set(_STATES.values()))},
        "invoice": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string"},
        "transaction": {"type": "string"},
        "type": {"type": "string", "enum": list(REFUND_TYPES)},
        "created": {"type": "string", "format": "date-time"},
        "credit_note_id": {"type": "string"},
        "error": {"type": "string"},
        "error_state": {"type": "string", "enum": ["processing_error"]},
        "acquirer_message": {"type": "string"},
    },
    "required": [
        "id",
        "state",
        "invoice",
        "amount",
        "currency",
        "transaction",
        "type",
        "created",
    ],
    "additionalProperties": False,
}


def _manual_transfer(raw: dict[str, Any]) -> ManualTransfer:
    """The vendor's ManualRefundTransfer: the manual settle's fields and rules."""
    try:
        body = msgspec.convert(raw, wire.ManualSettleTransfer)
    except msgspec.ValidationError as exc:
        raise invalid("manual_transfer", str(exc)) from None
    return manual_transfer(body, "manual_transfer.")


async def create_refund(request: Request) -> Response:
    call = await start(request)
    body = await call.body(CreateRefund, required=True)
    lines = note_lines(body)
    amount = _refund_amount(body, lines)
    lines = lines or stated_line(body)
    ref = lookup_handle(body.invoice, "invoice")
    if body.key is not None:
        call.keyed_by(body.key)

    if body.manual_transfer is not None:
        transfer = _manual_transfer(body.manual_transfer)

        async def perform(tx: Tx) -> Response:
            invoice = await find_invoice(tx, call.scope, ref)
            check_order_lines(lines, invoice)
            op = await billing.refund_manually(
                tx, call.scope, invoice.id, amount, transfer, text=body.text, lines=lines
            )
            return json_response(refund(op, invoice.id))

        return await call.write(perform)

    async def begin(tx: Tx) -> payments.Attempt:
        invoice = await find_invoice(tx, call.scope, ref)
        check_order_lines(lines, invoice)
        return await billing.begin_invoice_refund(
            tx,
            call.scope,
            invoice.id,
            amount,
            text=body.text,
            information=body.acquirer_reference,
            lines=lines,
        )

    async def answer(tx: Tx, done: payments.Done) -> Response:
        return json_response(refund(done.operation, done.invoice.id))

    return await call.pay(under_lock(begin), answer)


async def get_refund(request: Request) -> Response:
    call = await start(request)
    refund_id = path_ref(request, "id", "refund")
    async with call.read() as tx:
        op = await transactions.get_refund(tx, call.scope, refund_id)
        transaction = await transactions.get_transaction(tx, call.scope, op.transaction_id)
    return json_response(refund(op, transaction.invoice_id))
