"""Reepay invoice endpoints: a customer's one-time invoice with order lines, read by id or
handle, its metadata and addresses. The invoice is the domain's one invoice row: one made
here is seen by ProcessOut clients too, and the other way round.

Settling (``settle``, ``manual_transfer`` at creation, and the invoice operations around it)
is the next part of this dialect: until then a request asking for it is refused with code 43
(not implemented), after the checks that do not depend on it (codes 9, 71, 76, 40), and
before anything is written.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from settle.api.reepay import convert, records, render
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import find_customer, find_invoice, json_response, path_ref, start
from settle.billing import service as billing
from settle.customers.models import Customer
from settle.db.database import Lock, Tx
from settle.db.queries import token_of_customer
from settle.errors import ErrorCode, NotFoundError, ValidationError, invalid
from settle.invoices.models import Invoice, InvoiceInput
from settle.listing import PageQuery
from settle.payments import service as payments
from settle.payments import tokens
from settle.projects import service as projects
from settle.projects.models import Scope

AUTO_PAYMENT_METHOD = "auto"  # the customer's newest active payment method


def not_implemented(field: str, what: str) -> ValidationError:
    return invalid(field, f"{what} is not supported yet.", ErrorCode.NOT_IMPLEMENTED)


async def rendered_invoices(tx: Tx, scope: Scope, items: list[Invoice]) -> list[dict[str, Any]]:
    """Invoices as Reepay shows them, with their payments' amounts and their customers'
    handles, each kind loaded in one statement."""
    trs = await payments.get_transactions(tx, scope, (iv.transaction_id for iv in items))
    wanted = {iv.terms.customer_id for iv in items if iv.terms.customer_id}
    handles = await records.customer_handles(tx, scope, wanted) if wanted else {}
    out = []
    for iv in items:
        cid = iv.terms.customer_id
        out.append(
            render.invoice(
                iv,
                customer_handle=None if cid is None else (handles.get(cid) or cid),
                transaction=trs.get(iv.transaction_id),
            )
        )
    return out


async def _invoice_response(tx: Tx, scope: Scope, invoice: Invoice) -> Response:
    (rendered,) = await rendered_invoices(tx, scope, [invoice])
    return json_response(rendered)


async def _refuse_settle(tx: Tx, scope: Scope, customer: Customer, settle: wire.Settle) -> None:
    """Codes 76 and 40 where they apply, else 43: settling comes with the next part."""
    method = settle.payment_method
    if not method:
        raise ValidationError(
            "settle.payment_method: is required to settle the invoice.",
            code=ErrorCode.PAYMENT_METHOD_MISSING,
            field="settle.payment_method",
        )
    if method == AUTO_PAYMENT_METHOD:
        found, _ = await tokens.list_tokens(tx, scope, customer.id, PageQuery(limit=1))
        if not found:
            raise ValidationError(
                "settle.payment_method: the customer has no active payment method.",
                code=ErrorCode.PAYMENT_METHOD_MISSING,
                field="settle.payment_method",
            )
    elif not await token_of_customer(tx, scope, method, customer.id):
        raise NotFoundError("token", method)
    raise not_implemented("settle", "Settling an invoice as it is created")


async def create_invoice(request: Request) -> Response:
    call = await start(request)
    customer_ref = path_ref(request, "handle", "customer")
    body = await call.body(wire.CreateCustomerInvoice, required=True)
    parts = convert.invoice_parts(body)
    if body.manual_transfer is not None:
        raise not_implemented("manual_transfer", "Settling an invoice by a manual transfer")

    async def perform(tx: Tx) -> Response:
        customer = await find_customer(tx, call.scope, customer_ref, lock=Lock.SHARE)
        if body.settle is not None:
            await _refuse_settle(tx, call.scope, customer, body.settle)
        currency = parts.currency
        if currency is None:
            project = await projects.get_project(tx, call.scope.project_id)
            currency = project.default_currency or convert.FALLBACK_CURRENCY
        data = InvoiceInput(
            amount=parts.amount,
            currency=currency,
            handle=parts.handle,
            customer_id=customer.id,
            metadata=parts.metadata,
            attributes=parts.attributes,
            lines=parts.lines,
        )
        # The customer was read live under a share lock: not looked up a second time.
        invoice = await billing.create_invoice(tx, call.scope, data, customer_held=True)
        # A new invoice's payment is waiting: nothing authorized, settled or refunded yet.
        return json_response(
            render.invoice(
                invoice, customer_handle=render.handle_of_customer(customer), transaction=None
            )
        )

    return await call.write(perform)


async def get_invoice(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
        return await _invoice_response(tx, call.scope, invoice)


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
        updated = await records.set_invoice_metadata(tx, invoice, metadata)
        return json_response(updated.terms.metadata)

    return await call.write(perform)


async def delete_metadata(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref, lock=Lock.UPDATE)
        await records.set_invoice_metadata(tx, invoice, {})
        return Response(b"", status_code=200)

    return await call.write(perform)


async def _set_address(request: Request, name: str) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    body = await call.body(wire.InvoiceBillingAddress, required=True)
    address = convert.address(body, name) or {}

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref, lock=Lock.UPDATE)
        updated = await records.set_invoice_attribute(tx, invoice, name, address)
        return await _invoice_response(tx, call.scope, updated)

    return await call.write(perform)


async def set_billing_address(request: Request) -> Response:
    return await _set_address(request, "billing_address")


async def set_shipping_address(request: Request) -> Response:
    return await _set_address(request, "shipping_address")
