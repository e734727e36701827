"""ProcessOut invoice endpoints: parse the wire, call the invoice services, render the wire."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import Call
from settle.api.processout import convert, render
from settle.api.processout import schemas as wire
from settle.api.processout.base import encode, expands, json_response, ok, page_query, start
from settle.api.processout.cache import RenderCache
from settle.billing import service as billing
from settle.customers import service as customers
from settle.db.database import Lock, Tx
from settle.errors import ErrorCode, ValidationError
from settle.invoices import service as invoices
from settle.invoices.models import Invoice
from settle.payments import service as payments
from settle.projects import service as projects
from settle.web.links import checkout_url

EXPANDS: Final = ("customer", "project", "transaction", "token")
# A list page stops at this many bytes of invoices (at least one), with has_more: invoices may
# be ~1 MB each (metadata at ProcessOut's own bounds), and a page of 100 answered 89 MB.
MAX_PAGE_BYTES: Final = 8 << 20


def bounded_page(parts: list[bytes], has_more: bool, *, forward: bool) -> tuple[list[bytes], bool]:
    """At most MAX_PAGE_BYTES of ``parts`` (in listing order), cut on the side away from the
    cursor, so that the next page (after the last item, or before the first when walking
    back with ``end_before``) continues exactly where this one stopped."""
    total, kept = 0, 0
    for part in parts if forward else reversed(parts):
        total += len(part)
        if kept and total > MAX_PAGE_BYTES:
            break
        kept += 1
    if kept == len(parts):
        return parts, has_more
    return (parts[:kept] if forward else parts[len(parts) - kept :]), True


def render_cache(call: Call) -> RenderCache:
    cache: RenderCache = call.request.app.state.render_cache
    return cache


def invoice_json(call: Call, invoice: Invoice) -> bytes:
    """The invoice's JSON object, rendered once per (id, version) in this worker."""
    cache = render_cache(call)
    key = (invoice.id, invoice.version)
    encoded = cache.get(key)
    if encoded is None:
        rendered = encode(render.invoice(invoice, checkout_url(call.runtime.settings, invoice)))
        call.after_commit(lambda: cache.put(key, rendered))
        return rendered
    return encoded


def _invoice_response(call: Call, invoice: Invoice) -> Response:
    return json_response(b'{"success":true,"invoice":' + invoice_json(call, invoice) + b"}")


async def render_invoices(
    call: Call, tx: Tx, items: list[Invoice], expand: frozenset[str]
) -> list[dict[str, Any]]:
    """Render invoices with their expansions, loading each expanded kind in one query."""
    settings, scope = call.runtime.settings, call.scope
    rendered = [render.invoice(iv, checkout_url(settings, iv)) for iv in items]
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
        logs = await payments.operations_for(tx, trs)
        for iv, out in zip(items, rendered, strict=True):
            tr = trs.get(iv.transaction_id)
            out["transaction"] = render.transaction(tr, logs[tr.id]) if tr else None
    if "project" in expand:
        project = render.project(await projects.get_project(tx, scope.project_id))
        for out in rendered:
            out["project"] = project
    if "token" in expand:
        for out in rendered:
            out["token"] = None
    return rendered


async def create_invoice(request: Request) -> Response:
    call = await start(request)
    data = convert.invoice_input(await call.body(wire.InvoiceCreate))

    async def perform(tx: Tx) -> Response:
        return _invoice_response(call, await billing.create_invoice(tx, call.scope, data))

    return await call.write(perform)


# Invoices loaded per statement while splicing a page: a page stops once it holds
# MAX_PAGE_BYTES, so loading in small groups bounds the work as well as the answer (100
# invoices of ~1 MB loaded and rendered at once grew a worker by ~200 MiB for an 8 MiB page).
_LOAD_GROUP: Final = 10


async def _spliced_page(call: Call, request: Request) -> tuple[list[bytes], bool] | None:
    """A page without expansions, spliced from cached renderings, from one snapshot, and at
    most MAX_PAGE_BYTES (cut as ``bounded_page`` cuts); None if an invoice of the page changed
    between the page's statement and the one loading it."""
    query, cache = page_query(request), render_cache(call)
    async with call.read(one_statement=True) as tx:
        heads, has_more = await invoices.list_invoice_versions(tx, call.scope, query)
    forward = not query.end_before
    order = heads if forward else heads[::-1]  # from the cursor's side
    kept: list[bytes] = []
    total = 0
    at = 0
    while at < len(order) and not (kept and total > MAX_PAGE_BYTES):
        group = order[at : at + _LOAD_GROUP]
        parts = [cache.get(head) for head in group]
        missing = [head for head, part in zip(group, parts, strict=True) if part is None]
        if missing:
            async with call.read(one_statement=True) as tx:
                loaded = await invoices.get_invoices(tx, call.scope, [i for i, _ in missing])
            # (id, version) names one content: the same version read later is the same invoice.
            if any(i not in loaded or loaded[i].version != v for i, v in missing):
                return None
            found = iter(invoice_json(call, loaded[i]) for i, _ in missing)
            parts = [part if part is not None else next(found) for part in parts]
        for part in parts:
            assert part is not None
            if kept and total + len(part) > MAX_PAGE_BYTES:
                at = len(order)  # the page is full: what is left stays for the next page
                break
            kept.append(part)
            total += len(part)
        else:
            at += len(group)
    cut = len(kept) < len(heads)
    return (kept if forward else kept[::-1]), has_more or cut


async def list_invoices(request: Request) -> Response:
    call = await start(request)
    query, expand = page_query(request), expands(request, EXPANDS)
    spliced = None
    if not expand:
        # The page's ids and versions in one statement, and only the invoices this worker has
        # not rendered yet in a second: the common case costs one query and no rendering.
        spliced = await _spliced_page(call, request)
    if spliced is None:
        async with call.read() as tx:
            items, has_more = await invoices.list_invoices(tx, call.scope, query)
            rendered = await render_invoices(call, tx, items, expand)
        spliced = [encode(item) for item in rendered], has_more
    body, has_more = bounded_page(*spliced, forward=not query.end_before)
    return json_response(
        b'{"success":true,"invoices":['
        + b",".join(body)
        + (b'],"has_more":true}' if has_more else b'],"has_more":false}')
    )


async def find_invoice(request: Request) -> Response:
    call = await start(request)
    expand = expands(request, EXPANDS)
    invoice_id = request.path_params["invoice_id"]
    if not expand:
        async with call.read(one_statement=True) as tx:
            invoice = await invoices.get_invoice(tx, call.scope, invoice_id)
        return _invoice_response(call, invoice)
    async with call.read() as tx:
        invoice = await invoices.get_invoice(tx, call.scope, invoice_id)
        (rendered,) = await render_invoices(call, tx, [invoice], expand)
    return ok(invoice=rendered)


async def update_invoice(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.InvoiceUpdate)
    invoice_id = request.path_params["invoice_id"]

    async def perform(tx: Tx) -> Response:
        # Locked before its currency prices the new amounts; the update keeps the lock.
        current = await invoices.get_invoice(tx, call.scope, invoice_id, lock=Lock.UPDATE)
        changes = convert.invoice_changes(body, current.terms.currency)
        invoice = await billing.update_invoice(tx, call.scope, invoice_id, changes)
        return _invoice_response(call, invoice)

    return await call.write(perform)


async def delete_invoice(request: Request) -> Response:
    call = await start(request)

    async def perform(tx: Tx) -> Response:
        await billing.delete_invoice(tx, call.scope, request.path_params["invoice_id"])
        return ok()

    return await call.write(perform)


async def invoice_customer(request: Request) -> Response:
    call = await start(request)
    async with call.read() as tx:
        invoice = await invoices.get_invoice(tx, call.scope, request.path_params["invoice_id"])
        if invoice.terms.customer_id is None:
            raise ValidationError(
                f"The invoice {invoice.id!r} has no customer.",
                code=ErrorCode.INVOICE_NO_CUSTOMER,
            )
        customer = await customers.get_customer(tx, call.scope, invoice.terms.customer_id)
    return ok(customer=render.customer(customer))


async def assign_invoice_customer(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.AssignCustomer)
    if not body.customer_id:
        raise ValidationError(
            "customer_id: is required.", code=ErrorCode.VALIDATION, field="customer_id"
        )
    customer_id = body.customer_id

    async def perform(tx: Tx) -> Response:
        invoice_id = request.path_params["invoice_id"]
        await billing.assign_customer(tx, call.scope, invoice_id, customer_id)
        return ok(
            customer=render.customer(await customers.get_customer(tx, call.scope, customer_id))
        )

    return await call.write(perform)
