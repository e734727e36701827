"""ProcessOut customer endpoints: parse the wire, call the customer services, render the wire."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from settle.api.processout import convert, render
from settle.api.processout import schemas as wire
from settle.api.processout.base import expands, ok, page_query, start
from settle.customers import service as customers
from settle.db.database import Lock, Tx


async def create_customer(request: Request) -> Response:
    call = await start(request)
    fields = convert.customer_fields(await call.body(wire.CustomerIn))

    async def perform(tx: Tx) -> Response:
        return ok(customer=render.customer(await customers.create_customer(tx, call.scope, fields)))

    return await call.write(perform)


async def list_customers(request: Request) -> Response:
    call = await start(request)
    query = page_query(request)
    expands(request, ())
    async with call.read() as tx:
        items, has_more = await customers.list_customers(tx, call.scope, query)
    return ok(customers=[render.customer(c) for c in items], has_more=has_more)


async def find_customer(request: Request) -> Response:
    call = await start(request)
    expands(request, ())
    async with call.read(one_statement=True) as tx:
        customer = await customers.get_customer(tx, call.scope, request.path_params["customer_id"])
    return ok(customer=render.customer(customer))


async def update_customer(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.CustomerIn)
    customer_id = request.path_params["customer_id"]

    async def perform(tx: Tx) -> Response:
        # The stored currency prices a balance sent without one (the official client's
        # Customer.save() does that): it is read under the row lock, so a concurrent change
        # of currency waits, instead of 7.50 EUR being stored as 750 and read back as yen.
        current = await customers.get_customer(tx, call.scope, customer_id, lock=Lock.UPDATE)
        fields = convert.customer_fields(body, current.currency)
        customer = await customers.update_customer(tx, call.scope, customer_id, fields)
        return ok(customer=render.customer(customer))

    return await call.write(perform)


async def delete_customer(request: Request) -> Response:
    call = await start(request)

    async def perform(tx: Tx) -> Response:
        await customers.delete_customer(tx, call.scope, request.path_params["customer_id"])
        return ok()

    return await call.write(perform)
