"""Reepay invoice operations: settle, manual_settle, cancel, fail, reactivate, settle/cancel.

Each state change is a domain function of ``settle.billing.states`` (the rules and the
lock are there); a card settle goes through ``Call.pay``: its pending operation is committed
first, then the gateway is called, then the outcome is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import under_lock
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import find_invoice, path_ref, start
from settle.api.reepay.invoices import (
    begin_settle,
    invoice_response,
    manual_transfer,
    settle_with,
    settled_answer,
)
from settle.billing import states
from settle.billing.payments import Attempt, Done
from settle.db.database import Tx
from settle.invoices.models import Invoice
from settle.projects.models import Scope

Change = Callable[[Tx, Scope, str], Awaitable[Invoice]]


async def settle_invoice(request: Request) -> Response:
    """POST /v1/invoice/{id}/settle: an authorized invoice's capture, else a sale on the
    payment method given (``ca_`` or ``auto``)."""
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    body = await call.body(wire.Settle)
    settle = settle_with(body, "")

    async def begin(tx: Tx) -> Attempt:
        invoice = await find_invoice(tx, call.scope, ref)
        return await begin_settle(call, tx, invoice.id, settle)

    async def answer(tx: Tx, done: Done) -> Response:
        return await settled_answer(tx, call.scope, done)

    return await call.pay(under_lock(begin), answer)


async def manual_settle(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    transfer = manual_transfer(await call.body(wire.ManualSettleTransfer), "")

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref)
        settled = await states.settle_manually(tx, call.scope, invoice.id, transfer)
        return await invoice_response(tx, call.scope, settled)

    return await call.write(perform)


async def _change(request: Request, change: Change) -> Response:
    call = await start(request)
    ref = path_ref(request, "id", "invoice")

    async def perform(tx: Tx) -> Response:
        invoice = await find_invoice(tx, call.scope, ref)
        return await invoice_response(tx, call.scope, await change(tx, call.scope, invoice.id))

    return await call.write(perform)


async def cancel_invoice(request: Request) -> Response:
    return await _change(request, states.cancel)


async def fail_invoice(request: Request) -> Response:
    return await _change(request, states.fail)


async def reactivate_invoice(request: Request) -> Response:
    return await _change(request, states.reactivate)


async def cancel_settle_later(request: Request) -> Response:
    """POST /v1/invoice/{id}/settle/cancel: cancel a settle scheduled for later. Settle never
    schedules one (``settle`` settles at once; a ``due`` date is refused with code 43), so
    there is nothing to cancel: the answer is the invoice as it is."""
    call = await start(request)
    ref = path_ref(request, "id", "invoice")

    async def perform(tx: Tx) -> Response:
        # Through write(), though it changes nothing: a keyed POST is recorded and replayed
        # as every other one is (the race harness found its copies answered fresh).
        invoice = await find_invoice(tx, call.scope, ref)
        return await invoice_response(
            tx, call.scope, await states.cancel_settle_later(tx, call.scope, invoice.id)
        )

    return await call.write(perform)
