"""ProcessOut payment endpoints: authorize, capture, void, increment, refunds, transactions.

Each operation goes through ``Call.pay``: written pending, the gateway called outside any
database transaction, the outcome written (settle.billing.payments). Amounts are decimal
strings in the invoice's currency, parsed inside the first step, where the invoice is locked.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from settle.api.processout import render
from settle.api.processout import schemas as wire
from settle.api.processout.base import ok, page_query, start
from settle.billing import payments as billing
from settle.customers import service as customers
from settle.db.database import Tx
from settle.errors import ErrorCode, NotFoundError, invalid
from settle.invoices import service as invoices
from settle.money import parse_amount
from settle.payments import service as transactions


def _answer(done: billing.Done, **more: Any) -> Response:
    return ok(transaction=render.transaction(done.transaction, done.log), **more)


async def _transaction_answer(tx: Tx, done: billing.Done) -> Response:
    action = done.customer_action
    return _answer(
        done,
        customer_action=None if action is None else {"type": action.type, "value": action.value},
    )


async def authorize(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.PaymentIn)
    invoice_id = request.path_params["invoice_id"]
    if not body.source:
        raise invalid("source", "is required: a card id, or a token of the invoice's customer.")
    source = body.source

    async def begin(tx: Tx, optimistic: bool) -> billing.Attempt:
        return await billing.begin_authorize(
            tx,
            call.scope,
            invoice_id,
            source,
            gateway_name=call.runtime.gateway.name,
            metadata=body.metadata,
            optimistic=optimistic,
        )

    return await call.pay(begin, _transaction_answer)


async def capture(request: Request) -> Response:
    """With a ``source`` on an invoice not authorized yet: a sale (authorize, then capture;
    only authorize with ``authorize_only``). Without one: capture the authorization,
    ``capture_amount`` of it (all of the rest by default)."""
    call = await start(request)
    body = await call.body(wire.PaymentIn)
    invoice_id = request.path_params["invoice_id"]

    async def begin(tx: Tx, optimistic: bool) -> billing.Attempt:
        amount = None
        if body.capture_amount is not None:  # its currency's exponent: a read only then
            invoice = await invoices.get_invoice(tx, call.scope, invoice_id)
            amount = parse_amount(
                body.capture_amount, invoice.terms.currency, field="capture_amount"
            )
        return await billing.begin_capture(
            tx,
            call.scope,
            invoice_id,
            amount,
            source=body.source or None,
            authorize_only=bool(body.authorize_only),
            gateway_name=call.runtime.gateway.name,
            metadata=body.metadata,
            optimistic=optimistic,
        )

    return await call.pay(begin, _transaction_answer)


async def void(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.AmountIn)
    invoice_id = request.path_params["invoice_id"]

    async def begin(tx: Tx, optimistic: bool) -> billing.Attempt:
        return await billing.begin_void(
            tx, call.scope, invoice_id, metadata=body.metadata, optimistic=optimistic
        )

    return await call.pay(begin, _transaction_answer)


async def increment_authorization(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.AmountIn)
    invoice_id = request.path_params["invoice_id"]
    if body.amount is None:
        raise invalid("amount", "is required.", ErrorCode.MISSING_AMOUNT)
    text = body.amount

    async def begin(tx: Tx, optimistic: bool) -> billing.Attempt:
        invoice = await invoices.get_invoice(tx, call.scope, invoice_id)
        amount = parse_amount(text, invoice.terms.currency)
        return await billing.begin_increment(
            tx, call.scope, invoice_id, amount, metadata=body.metadata, optimistic=optimistic
        )

    return await call.pay(begin, _transaction_answer)


async def _refund(
    call_request: Request, transaction_of: str | None, invoice_of: str | None
) -> Response:
    call = await start(call_request)
    body = await call.body(wire.RefundIn)
    if body.invoice_detail_ids:
        # A refund of given invoice lines is not made yet: refused, not taken as a refund of
        # ``amount`` alone (which it was, silently). Null and [] ask for none: the official
        # client sends null.
        raise invalid(
            "invoice_detail_ids",
            "refunding given invoice details is not supported yet; refund an amount, with "
            "invoice_detail_ids null or empty.",
            ErrorCode.NOT_IMPLEMENTED,
        )
    if body.amount is None:
        raise invalid("amount", "is required.", ErrorCode.MISSING_AMOUNT)
    text = body.amount

    async def begin(tx: Tx, optimistic: bool) -> billing.Attempt:
        if invoice_of is not None:
            invoice = await invoices.get_invoice(tx, call.scope, invoice_of)
            transaction_id = invoice.transaction_id
        else:
            assert transaction_of is not None
            transaction_id = transaction_of
        transaction = await transactions.get_transaction(tx, call.scope, transaction_id)
        amount = parse_amount(text, transaction.currency)
        return await billing.begin_refund(
            tx,
            call.scope,
            transaction_id,
            amount,
            reason=body.reason,
            information=body.information,
            metadata=body.metadata,
            optimistic=optimistic,
        )

    async def answer(tx: Tx, done: billing.Done) -> Response:
        return ok(refund=render.refund(done.operation, done.transaction.sandbox))

    return await call.pay(begin, answer)


async def refund_invoice(request: Request) -> Response:
    return await _refund(request, None, request.path_params["invoice_id"])


async def refund_transaction(request: Request) -> Response:
    return await _refund(request, request.path_params["transaction_id"], None)


# --- reads ----------------------------------------------------------------------------------


async def invoice_transaction(request: Request) -> Response:
    call = await start(request)
    async with call.read() as tx:
        invoice = await invoices.get_invoice(tx, call.scope, request.path_params["invoice_id"])
        tr = await transactions.get_transaction(tx, call.scope, invoice.transaction_id)
        log = await transactions.operations_of(tx, tr.id)
    return ok(transaction=render.transaction(tr, log))


async def find_transaction(request: Request) -> Response:
    call = await start(request)
    async with call.read() as tx:
        tr = await transactions.get_transaction(
            tx, call.scope, request.path_params["transaction_id"]
        )
        log = await transactions.operations_of(tx, tr.id)
    return ok(transaction=render.transaction(tr, log))


async def _list(request: Request, customer_id: str | None) -> Response:
    call = await start(request)
    query = page_query(request)
    async with call.read() as tx:
        if customer_id is not None:
            await customers.get_customer(tx, call.scope, customer_id)
        items, has_more = await transactions.list_transactions(
            tx, call.scope, query, customer_id=customer_id
        )
        logs = await transactions.operations_for(tx, (t.id for t in items))
    return ok(transactions=[render.transaction(t, logs[t.id]) for t in items], has_more=has_more)


async def list_transactions(request: Request) -> Response:
    return await _list(request, None)


async def customer_transactions(request: Request) -> Response:
    return await _list(request, request.path_params["customer_id"])


async def list_refunds(request: Request) -> Response:
    call = await start(request)
    async with call.read() as tx:
        refunds = await transactions.refunds_of(
            tx, call.scope, request.path_params["transaction_id"]
        )
    return ok(refunds=[render.refund(op, call.scope.sandbox) for op in refunds])


async def find_refund(request: Request) -> Response:
    call = await start(request)
    params = request.path_params
    async with call.read() as tx:
        refunds = await transactions.refunds_of(tx, call.scope, params["transaction_id"])
    for op in refunds:
        if op.refund_id == params["refund_id"]:
            return ok(refund=render.refund(op, call.scope.sandbox))
    raise NotFoundError("refund", params["refund_id"])
