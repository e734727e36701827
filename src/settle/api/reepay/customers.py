"""Reepay customer endpoints: customers by handle, on the one customer table."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from settle.api.reepay import convert, render
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import find_customer, json_response, path_ref, start
from settle.customers import service as customers
from settle.customers.models import Customer
from settle.db.database import Lock, Tx
from settle.invoices import totals as invoice_totals
from settle.projects.models import Scope


async def _rendered(
    tx: Tx, scope: Scope, customer: Customer, *, deleted: int | None = None
) -> Response:
    totals = await invoice_totals.customer_invoice_totals(tx, scope, [customer.id])
    return json_response(render.customer(customer, totals[customer.id], deleted=deleted))


async def create_customer(request: Request) -> Response:
    call = await start(request)
    fields = convert.new_customer_fields(await call.body(wire.CreateCustomer, required=True))

    async def perform(tx: Tx) -> Response:
        customer = await customers.create_customer(tx, call.scope, fields)
        return json_response(render.customer(customer, invoice_totals.CustomerTotals()))

    return await call.write(perform)


async def get_customer(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "customer")
    async with call.read() as tx:
        customer = await find_customer(tx, call.scope, ref)
        return await _rendered(tx, call.scope, customer)


async def update_customer(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "customer")
    fields = convert.customer_fields(await call.body(wire.UpdateCustomer, required=True))

    async def perform(tx: Tx) -> Response:
        found = await find_customer(tx, call.scope, ref, lock=Lock.UPDATE)
        customer = await customers.update_customer(tx, call.scope, found.id, fields)
        return await _rendered(tx, call.scope, customer)

    return await call.write(perform)


async def delete_customer(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "customer")

    async def perform(tx: Tx) -> Response:
        found = await find_customer(tx, call.scope, ref, lock=Lock.UPDATE)
        await customers.delete_customer(tx, call.scope, found.id)
        # This process's invoices need not find the hint stale (other workers' do, and look
        # the handle up again: customers.HandleHints).
        call.after_commit(lambda: call.runtime.customer_handles.drop(call.scope, ref))
        deleted = await customers.customer_gone(tx, call.scope, found.id, by="id")
        return await _rendered(tx, call.scope, found, deleted=deleted)

    return await call.write(perform)
