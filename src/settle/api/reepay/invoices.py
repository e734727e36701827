"""Reepay invoice endpoints: a customer's one-time invoice with order lines, read by id or
handle, its metadata and addresses. The invoice is the domain's one invoice row: one made
here is seen by ProcessOut clients too, and the other way round.

An invoice created with ``settle`` (a ``ca_`` payment method, or ``auto``: the customer's
newest active one) or ``manual_transfer`` is settled at once: the answer is the invoice
``settled``, or ``failed`` when the card was declined (HTTP 200 either way). The operations
on an existing invoice (settle, cancel, ...) are in ``settling``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from settle import grammar
from settle.api.lifecycle import Call, under_lock
from settle.api.reepay import convert, payment_methods, render, transactions
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import (
    customer_deleted,
    find_customer,
    find_invoice,
    json_response,
    path_ref,
    start,
)
from settle.billing import refunds, states
from settle.billing import service as billing
from settle.billing.payments import Attempt, Done
from settle.customers import service as customers
from settle.db.database import Lock, Tx
from settle.errors import ErrorCode, ValidationError, invalid
from settle.invoices.models import Invoice, InvoiceInput
from settle.projects import service as projects
from settle.projects.models import Scope

AUTO_PAYMENT_METHOD = "auto"  # the customer's newest active payment method


def not_implemented(field: str, what: str) -> ValidationError:
    return invalid(field, f"{what} is not supported yet.", ErrorCode.NOT_IMPLEMENTED)


async def rendered_invoices(tx: Tx, scope: Scope, items: list[Invoice]) -> list[dict[str, Any]]:
    """Invoices as Reepay shows them, with their payments' amounts and their customers'
    handles, each kind loaded in one statement."""
    found = await transactions.payments_of(tx, scope, (iv.transaction_id for iv in items))
    wanted = {iv.terms.customer_id for iv in items if iv.terms.customer_id}
    handles = await customers.customer_handles(tx, scope, wanted) if wanted else {}
    # The credit notes' lines, for the refunds that have notes (none refunded: no statement).
    refunded = [rid for p in found.values() for rid in refunds.refund_ids(p.log)]
    note_lines = await refunds.note_lines_of(tx, scope, refunded)
    out = []
    for iv in items:
        cid = iv.terms.customer_id
        payment = found.get(iv.transaction_id)
        out.append(
            render.invoice(
                iv,
                customer_handle=None if cid is None else (handles.get(cid) or cid),
                transaction=payment.transaction if payment else None,
                transactions=transactions.render_all(payment, iv.id),
                credit_notes=refunds.credit_notes(iv, payment.log, note_lines) if payment else (),
            )
        )
    return out


async def invoice_response(tx: Tx, scope: Scope, invoice: Invoice) -> Response:
    (rendered,) = await rendered_invoices(tx, scope, [invoice])
    return json_response(rendered)


def manual_transfer(body: wire.ManualSettleTransfer, prefix: str) -> states.ManualTransfer:
    """The vendor's manual transfer: ``method`` one of cash, bank_transfer, check, other and
    ``payment_date`` a YYYY-MM-DD date, both required. ``prefix``: where the transfer is in
    the body ("manual_transfer." or "")."""
    if body.method is None:
        raise invalid(f"{prefix}method", "is required.")
    if body.method not in states.MANUAL_METHODS:
        raise invalid(
            f"{prefix}method",
            f"must be one of {', '.join(states.MANUAL_METHODS)}.",
            ErrorCode.INVALID_ENUM,
        )
    if body.payment_date is None:
        raise invalid(f"{prefix}payment_date", "is required (YYYY-MM-DD).")
    day = grammar.parse_date(body.payment_date, field=f"{prefix}payment_date")
    return states.ManualTransfer(
        method=body.method,
        payment_date=day.isoformat(),
        reference=body.reference,
        comment=body.comment,
    )


class SettleWith(msgspec.Struct, frozen=True, kw_only=True):
    """What a settle request names: a payment method (``ca_``), ``auto``, or neither; and
    the request's name for it."""

    method: str | None
    field: str

    @property
    def auto(self) -> bool:
        return self.method == AUTO_PAYMENT_METHOD

    def token_id(self) -> str | None:
        """The token named (None for auto or none); a reference that can name no payment
        method of ours is code 40 at once."""
        if self.method is None or self.auto:
            return None
        return payment_methods.token_id(self.method)


def settle_with(body: wire.Settle, prefix: str) -> SettleWith:
    """``prefix``: where the Settle object is in the body ("settle." or "")."""
    if body.due is not None:
        # A settle scheduled for later: Settle settles at once or not at all.
        raise not_implemented(f"{prefix}due", "Settling later (due)")
    return SettleWith(method=body.payment_method or None, field=f"{prefix}payment_method")


async def begin_settle(call: Call, tx: Tx, invoice_id: str, settle: SettleWith) -> Attempt:
    with payment_methods.named(settle.method):
        return await states.begin_settle(
            tx,
            call.scope,
            invoice_id,
            token_id=settle.token_id(),
            auto=settle.auto,
            gateway_name=call.runtime.gateway.name,
            field=settle.field,
        )


async def settled_answer(tx: Tx, scope: Scope, done: Done) -> Response:
    """The invoice after a settle's last step: settled, or failed if its card was declined
    (HTTP 200 either way; the transaction says why)."""
    invoice = await states.settle_finished(tx, done)
    return await invoice_response(tx, scope, invoice)


class _StaleHint(Exception):
    """The customer a handle hint named is gone (``customers.HandleHints``): look it up."""


async def create_invoice(request: Request) -> Response:
    """With ``settle``: the invoice and its pending sale are committed first, then the gateway
    is called, then the outcome written (``Call.pay``). With ``manual_transfer``: created and
    settled in one transaction.

    The customer: the live one its handle named when last looked up in this process
    (``Runtime.customer_handles``), held with the writes, which fail if it is gone: the
    request then runs again with a lookup (which answers 71 for a deleted customer, as
    without the hint). On PostgreSQL an invoice for a customer is so one round trip, as an
    invoice without one, instead of two (the lookup, then the writes with the hold)."""
    call = await start(request)
    customer_ref = path_ref(request, "handle", "customer")
    body = await call.body(wire.CreateCustomerInvoice, required=True)
    parts = convert.invoice_parts(body)
    transfer = (
        None
        if body.manual_transfer is None
        else manual_transfer(body.manual_transfer, "manual_transfer.")
    )
    if transfer is not None and body.settle is not None:
        raise invalid("settle", "give either settle or manual_transfer, not both.")
    scope, hints = call.scope, call.runtime.customer_handles
    hinted = hints.get(scope, customer_ref)

    async def customer_of(tx: Tx) -> tuple[str, str]:
        """The customer's id and the handle its invoice shows, held till the transaction
        ends: a concurrent delete of the customer waits for this invoice (or this create
        sees code 71, as it would after the delete)."""
        if hinted is not None:
            await customers.hold_customer(
                tx, scope, hinted, missing=_StaleHint(), handle=customer_ref
            )
            return hinted, customer_ref
        customer = await find_customer(tx, scope, customer_ref)
        await customers.hold_customer(
            tx, scope, customer.id, missing=customer_deleted(customer_ref)
        )
        if customer.handle == customer_ref:
            hints.put(scope, customer_ref, customer.id)  # it was live: a hint is no promise
        return customer.id, render.handle_of_customer(customer)

    async def create(tx: Tx) -> tuple[Invoice, str]:
        customer_id, shown = await customer_of(tx)
        currency = parts.currency
        if currency is None:
            project = await projects.get_project(tx, scope.project_id)
            currency = project.default_currency or convert.FALLBACK_CURRENCY
        data = InvoiceInput(
            amount=parts.amount,
            currency=currency,
            handle=parts.handle,
            customer_id=customer_id,
            metadata=parts.metadata,
            attributes=parts.attributes,
            lines=parts.lines,
        )
        # The customer is held: not looked up a second time.
        invoice = await billing.create_invoice(tx, scope, data, customer_held=True)
        return invoice, shown

    async def attempt() -> Response:
        if body.settle is not None:
            settle = settle_with(body.settle, "settle.")

            async def begin(tx: Tx) -> Attempt:
                invoice, _ = await create(tx)
                return await begin_settle(call, tx, invoice.id, settle)

            async def answer(tx: Tx, done: Done) -> Response:
                return await settled_answer(tx, scope, done)

            return await call.pay(under_lock(begin), answer)

        async def perform(tx: Tx) -> Response:
            invoice, shown = await create(tx)
            if transfer is not None:
                invoice = await states.settle_manually(tx, scope, invoice.id, transfer)
                return await invoice_response(tx, scope, invoice)
            # A new invoice's payment is waiting: nothing authorized, settled or refunded yet
            # (rendered without reading it back).
            return json_response(
                render.invoice(invoice, customer_handle=shown, transaction=None, transactions=[])
            )

        return await call.write(perform)

    try:
        return await attempt()
    except _StaleHint:  # rolled back, nothing written: again, looked up this time
        hints.drop(scope, customer_ref)
        hinted = None
        return await attempt()


async def get_invoice(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
        return await invoice_response(tx, call.scope, invoice)


async def get_metadata(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
    return json_response(invoice.terms.metadata)


async def update_metadata(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")
    metadata: dict[str, str] = await call.body(wire.MetadataIn, required=True)

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref, lock=Lock.UPDATE)
        updated = await billing.set_metadata(tx, call.scope, invoice, metadata)
        return json_response(updated.terms.metadata)

    return await call.write(perform)


async def delete_metadata(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref, lock=Lock.UPDATE)
        await billing.set_metadata(tx, call.scope, invoice, {})
        return Response(b"", status_code=200)

    return await call.write(perform)


async def _set_address(request: Request, name: str) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    body = await call.body(wire.InvoiceBillingAddress, required=True)
    address = convert.address(body, name) or {}

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref, lock=Lock.UPDATE)
        updated = await billing.set_attribute(tx, call.scope, invoice, name, address)
        return await invoice_response(tx, call.scope, updated)

    return await call.write(perform)


async def set_billing_address(request: Request) -> Response:
    return await _set_address(request, "billing_address")


async def set_shipping_address(request: Request) -> Response:
    return await _set_address(request, "shipping_address")
