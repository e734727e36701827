"""ProcessOut endpoints: parse the wire, call a domain service, render the wire.

Each handler owns one database transaction (``write``, which also honours Idempotency-Key) or
one read (``db.read()``); the services inside never commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle import validation
from settle.api import idempotency
from settle.api.http import basic_auth, decode_body, read_body
from settle.api.processout import convert, render
from settle.api.processout import schemas as w
from settle.api.processout.cache import RenderCache
from settle.customers import service as customers
from settle.db.database import Tx
from settle.errors import AuthenticationError, ValidationError
from settle.invoices import service as invoices
from settle.invoices.models import Invoice
from settle.listing import DEFAULT_LIMIT, MAX_LIMIT, PageQuery
from settle.payments import service as payments
from settle.projects import service as projects
from settle.projects.keys import processout_username
from settle.projects.models import Scope
from settle.runtime import Runtime

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]

INVOICE_EXPANDS: Final = ("customer", "project", "transaction", "token")
_encode = msgspec.json.Encoder().encode


def ok(**payload: Any) -> Response:
    return Response(_encode({"success": True, **payload}), media_type="application/json")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def authenticate(request: Request) -> Scope:
    creds = basic_auth(request)
    if creds is None:
        raise AuthenticationError(
            "Authenticate with HTTP Basic: your project id as the user name and your secret "
            "key as the password.",
            code="request.authentication.missing",
        )
    return await runtime(request).keys.processout(*creds)


async def body_of(request: Request, wire_type: type[T]) -> T:
    rt = runtime(request)
    raw = await read_body(request, rt.settings.max_body_bytes)
    request.state.raw_body = raw  # what an Idempotency-Key's fingerprint covers
    return decode_body(raw, request.headers.get("content-type", ""), wire_type)


async def write(
    request: Request, scope: Scope, perform: Callable[[Tx], Awaitable[Response]]
) -> Response:
    """Run ``perform`` in one write transaction; its response is built inside it.

    With an Idempotency-Key header the response is recorded in that transaction, and a retry
    gets the recorded one (marked ``Idempotent-Replayed: true``). Invoice renderings made
    inside reach the render cache only once the transaction has committed: an entry for a
    version that was rolled back would later be served for a different content.
    """
    db = runtime(request).db
    header = request.headers.get(idempotency.HEADER)
    renders: list[tuple[tuple[str, int], bytes]] = []
    request.state.pending_renders = renders
    try:
        if header is None:
            async with db.transaction() as tx:
                response = await perform(tx)
            committed = True
        else:
            key = idempotency.check_key(header)
            print_ = idempotency.fingerprint(
                request.method,
                request.url.path,
                request.url.query,
                getattr(request.state, "raw_body", b""),
            )

            async def answer(tx: Tx) -> idempotency.Answer:
                done = await perform(tx)
                return idempotency.Answer(status=done.status_code, body=bytes(done.body))

            recorded, committed = await idempotency.once(db, scope, key, print_, answer)
            response = Response(
                recorded.body,
                status_code=recorded.status,
                media_type="application/json",
                headers=None if committed else {"Idempotent-Replayed": "true"},
            )
    finally:
        request.state.pending_renders = None
    if committed:
        cache: RenderCache = request.app.state.processout_render_cache
        for key_, encoded in renders:
            cache.put(key_, encoded)
    return response


def _query_values(request: Request, name: str) -> list[str]:
    params = request.query_params
    return [*params.getlist(name), *params.getlist(f"{name}[]")]


def expands(request: Request, allowed: Iterable[str]) -> frozenset[str]:
    """``expand=a&expand=b``, ``expand[]=a`` and ``expand=a,b`` all mean {a, b}."""
    allowed = tuple(allowed)
    wanted = {
        part.strip()
        for value in _query_values(request, "expand")
        for part in value.split(",")
        if part.strip()
    }
    for name in wanted:
        if name not in allowed:
            raise validation.invalid(
                "expand", f"{name!r} cannot be expanded here; use: {', '.join(allowed)}."
            )
    return frozenset(wanted)


def page_query(request: Request) -> PageQuery:
    params = request.query_params
    raw_limit = params.get("limit", "")
    limit = DEFAULT_LIMIT
    if raw_limit not in ("", "0"):
        # isascii: str.isdigit() also accepts "²" and other digits int() refuses.
        if not (raw_limit.isascii() and raw_limit.isdigit()):
            raise validation.invalid("limit", f"{raw_limit[:20]!r} is not a whole number.")
        # More than 6 digits is out of range anyway: PageQuery says so.
        limit = int(raw_limit) if len(raw_limit) <= 6 else MAX_LIMIT + 1
    order = params.get("order", "desc") or "desc"
    if order not in ("asc", "desc"):
        raise validation.invalid("order", f"{order[:20]!r} is not allowed; use asc or desc.")
    return PageQuery(
        limit=limit,
        start_after=params.get("start_after") or None,
        end_before=params.get("end_before") or None,
        order="asc" if order == "asc" else "desc",
    )


def checkout_url(request: Request, invoice: Invoice) -> str:
    base = runtime(request).settings.base_url
    return (
        f"{base}/checkout/{processout_username(invoice.project_id, invoice.sandbox)}/{invoice.id}"
    )


async def render_invoices(
    request: Request, tx: Tx, scope: Scope, items: list[Invoice], expand: frozenset[str]
) -> list[dict[str, Any]]:
    """Render invoices with their expansions, loading each expanded kind in one query."""
    rendered = [render.invoice(iv, checkout_url(request, iv)) for iv in items]
    if not expand or not items:
        return rendered
    if "customer" in expand:
        found = await customers.get_customers(
            tx, scope, (iv.terms.customer_id for iv in items if iv.terms.customer_id)
        )
        for iv, out in zip(items, rendered, strict=True):
            cu = found.get(iv.terms.customer_id or "")
            out["customer"] = render.customer(cu) if cu else None
    if "transaction" in expand:
        trs = await payments.get_transactions(tx, scope, (iv.transaction_id for iv in items))
        for iv, out in zip(items, rendered, strict=True):
            tr = trs.get(iv.transaction_id)
            out["transaction"] = render.transaction(tr) if tr else None
    if "project" in expand:
        project = render.project(await projects.get_project(tx, scope.project_id))
        for out in rendered:
            out["project"] = project
    if "token" in expand:
        for out in rendered:
            out["token"] = None
    return rendered


# --- invoices --------------------------------------------------------------------------


def invoice_json(request: Request, invoice: Invoice) -> bytes:
    """The invoice's JSON object, rendered once per (id, version) in this worker."""
    cache: RenderCache = request.app.state.processout_render_cache
    key = (invoice.id, invoice.version)
    encoded = cache.get(key)
    if encoded is None:
        encoded = _encode(render.invoice(invoice, checkout_url(request, invoice)))
        pending = getattr(request.state, "pending_renders", None)
        if pending is None:
            cache.put(key, encoded)
        else:  # inside a write: cached once it commits (see ``write``)
            pending.append((key, encoded))
    return encoded


def _json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def create_invoice(request: Request) -> Response:
    scope = await authenticate(request)
    data = convert.invoice_input(await body_of(request, w.InvoiceCreate))

    async def perform(tx: Tx) -> Response:
        invoice = await invoices.create_invoice(tx, scope, data)
        return _invoice_response(request, invoice)

    return await write(request, scope, perform)


def _invoice_response(request: Request, invoice: Invoice) -> Response:
    return _json_response(b'{"success":true,"invoice":' + invoice_json(request, invoice) + b"}")


async def list_invoices(request: Request) -> Response:
    scope = await authenticate(request)
    query, expand = page_query(request), expands(request, INVOICE_EXPANDS)
    if expand:
        async with runtime(request).db.read() as tx:
            items, has_more = await invoices.list_invoices(tx, scope, query)
            rendered = await render_invoices(request, tx, scope, items, expand)
        return ok(invoices=rendered, has_more=has_more)
    # Without expansions the page is spliced from cached renderings: one query for the ids
    # and versions, and a second only for invoices this worker has not rendered yet.
    cache: RenderCache = request.app.state.processout_render_cache
    async with runtime(request).db.read() as tx:
        heads, has_more = await invoices.list_invoice_versions(tx, scope, query)
        parts = [cache.get(head) for head in heads]
        missing = [head[0] for head, part in zip(heads, parts, strict=True) if part is None]
        loaded = await invoices.get_invoices(tx, scope, missing) if missing else {}
    body = [
        part if part is not None else invoice_json(request, loaded[head[0]])
        for head, part in zip(heads, parts, strict=True)
        # An invoice deleted between the two queries is left out of the page.
        if part is not None or head[0] in loaded
    ]
    return _json_response(
        b'{"success":true,"invoices":['
        + b",".join(body)
        + (b'],"has_more":true}' if has_more else b'],"has_more":false}')
    )


async def find_invoice(request: Request) -> Response:
    scope = await authenticate(request)
    expand = expands(request, INVOICE_EXPANDS)
    async with runtime(request).db.read() as tx:
        invoice = await invoices.get_invoice(tx, scope, request.path_params["invoice_id"])
        if not expand:
            return _json_response(
                b'{"success":true,"invoice":' + invoice_json(request, invoice) + b"}"
            )
        (rendered,) = await render_invoices(request, tx, scope, [invoice], expand)
    return ok(invoice=rendered)


async def update_invoice(request: Request) -> Response:
    scope = await authenticate(request)
    body = await body_of(request, w.InvoiceUpdate)
    invoice_id = request.path_params["invoice_id"]

    async def perform(tx: Tx) -> Response:
        current = await invoices.get_invoice(tx, scope, invoice_id)
        changes = convert.invoice_changes(body, current.terms.currency)
        invoice = await invoices.update_invoice(tx, scope, invoice_id, changes)
        return _invoice_response(request, invoice)

    return await write(request, scope, perform)


async def delete_invoice(request: Request) -> Response:
    scope = await authenticate(request)

    async def perform(tx: Tx) -> Response:
        await invoices.delete_invoice(tx, scope, request.path_params["invoice_id"])
        return ok()

    return await write(request, scope, perform)


async def invoice_customer(request: Request) -> Response:
    scope = await authenticate(request)
    async with runtime(request).db.read() as tx:
        invoice = await invoices.get_invoice(tx, scope, request.path_params["invoice_id"])
        if invoice.terms.customer_id is None:
            raise ValidationError(
                f"The invoice {invoice.id!r} has no customer.",
                code="invoice.no-customer",
            )
        customer = await customers.get_customer(tx, scope, invoice.terms.customer_id)
    return ok(customer=render.customer(customer))


async def assign_invoice_customer(request: Request) -> Response:
    scope = await authenticate(request)
    body = await body_of(request, w.AssignCustomer)
    if not body.customer_id:
        raise validation.invalid("customer_id", "is required.")
    customer_id = body.customer_id

    async def perform(tx: Tx) -> Response:
        await invoices.assign_customer(tx, scope, request.path_params["invoice_id"], customer_id)
        return ok(customer=render.customer(await customers.get_customer(tx, scope, customer_id)))

    return await write(request, scope, perform)


# --- customers -------------------------------------------------------------------------


async def create_customer(request: Request) -> Response:
    scope = await authenticate(request)
    fields = convert.customer_fields(await body_of(request, w.CustomerIn))

    async def perform(tx: Tx) -> Response:
        return ok(customer=render.customer(await customers.create_customer(tx, scope, fields)))

    return await write(request, scope, perform)


async def list_customers(request: Request) -> Response:
    scope = await authenticate(request)
    query = page_query(request)
    expands(request, ())
    async with runtime(request).db.read() as tx:
        items, has_more = await customers.list_customers(tx, scope, query)
    return ok(customers=[render.customer(c) for c in items], has_more=has_more)


async def find_customer(request: Request) -> Response:
    scope = await authenticate(request)
    expands(request, ())
    async with runtime(request).db.read() as tx:
        customer = await customers.get_customer(tx, scope, request.path_params["customer_id"])
    return ok(customer=render.customer(customer))


async def update_customer(request: Request) -> Response:
    scope = await authenticate(request)
    body = await body_of(request, w.CustomerIn)
    customer_id = request.path_params["customer_id"]

    async def perform(tx: Tx) -> Response:
        current = await customers.get_customer(tx, scope, customer_id)
        fields = convert.customer_fields(body, current.currency)
        customer = await customers.update_customer(tx, scope, customer_id, fields)
        return ok(customer=render.customer(customer))

    return await write(request, scope, perform)


async def delete_customer(request: Request) -> Response:
    scope = await authenticate(request)

    async def perform(tx: Tx) -> Response:
        await customers.delete_customer(tx, scope, request.path_params["customer_id"])
        return ok()

    return await write(request, scope, perform)


async def ping(request: Request) -> Response:
    """Authenticated no-op: the no-database ceiling of the stack (bench/)."""
    await authenticate(request)
    return ok()


ROUTES: Final = [
    Route("/invoices", create_invoice, methods=["POST"]),
    Route("/invoices", list_invoices, methods=["GET"]),
    Route("/invoices/{invoice_id}", find_invoice, methods=["GET"]),
    Route("/invoices/{invoice_id}", update_invoice, methods=["PUT"]),
    Route("/invoices/{invoice_id}", delete_invoice, methods=["DELETE"]),
    Route("/invoices/{invoice_id}/customers", invoice_customer, methods=["GET"]),
    Route("/invoices/{invoice_id}/customers", assign_invoice_customer, methods=["POST"]),
    Route("/customers", create_customer, methods=["POST"]),
    Route("/customers", list_customers, methods=["GET"]),
    Route("/customers/{customer_id}", find_customer, methods=["GET"]),
    Route("/customers/{customer_id}", update_customer, methods=["PUT"]),
    Route("/customers/{customer_id}", delete_customer, methods=["DELETE"]),
    Route("/ping", ping, methods=["GET"]),
]
