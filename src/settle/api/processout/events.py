"""ProcessOut event endpoints (GET /events, GET /events/{id}) and the dialect's event names.

An event's ``data`` holds the object as it was when the event happened, rendered as this
dialect renders that object now (``{"invoice": {...}}``, ``{"transaction": {...}}`` or
``{"customer": {...}}``). A transaction's snapshot is the transaction alone: its
``operations`` and ``refunds`` are rendered empty (the log is not copied into every event;
GET /transactions/{id} has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import Call
from settle.api.processout import render
from settle.api.processout.base import expands, ok, page_query, start
from settle.clock import rfc3339
from settle.events import service as events
from settle.events.service import Event
from settle.events.types import EventType as E
from settle.invoices.models import Invoice
from settle.payments.models import Transaction
from settle.web.links import checkout_url

# Every event type's name in this dialect, or None where the dialect sends no such event. The
# ProcessOut API tells payments by transaction events; the invoice's own payment states (which
# the Reepay dialect announces as invoice_authorized, invoice_settled ...) would only repeat
# them, and cancelling or reactivating an invoice is not a ProcessOut operation.
NAMES: Final[Mapping[E, str | None]] = {
    E.INVOICE_CREATED: "invoice.created",
    E.INVOICE_CHANGED: "invoice.changed",
    E.INVOICE_DELETED: "invoice.deleted",
    E.INVOICE_AUTHORIZED: None,
    E.INVOICE_SETTLED: None,
    E.INVOICE_FAILED: None,
    E.INVOICE_CANCELLED: None,
    E.INVOICE_REACTIVATED: None,
    E.INVOICE_REFUNDED: None,
    E.TRANSACTION_REQUESTED: "transaction.requested",
    E.TRANSACTION_AUTHORIZED: "transaction.authorized",
    E.TRANSACTION_CAPTURED: "transaction.captured",
    E.TRANSACTION_FAILED: "transaction.failed",
    E.TRANSACTION_VOIDED: "transaction.voided",
    E.TRANSACTION_REFUNDED: "transaction.refunded",
    E.TRANSACTION_DISPUTED: "transaction.disputed",
    E.CUSTOMER_CREATED: "customer.created",
    E.CUSTOMER_CHANGED: "customer.changed",
    E.CUSTOMER_DELETED: "customer.deleted",
}
SENT: Final = frozenset(t for t, name in NAMES.items() if name is not None)


def name_of(event_type: E) -> str:
    name = NAMES[event_type]
    if name is None:
        raise ValueError(f"{event_type} is not an event of the ProcessOut dialect")
    return name


def event(call: Call, ev: Event) -> dict[str, Any]:
    subject = ev.data
    if isinstance(subject, Invoice):
        data = render.invoice(subject, checkout_url(call.runtime.settings, subject))
    elif isinstance(subject, Transaction):
        data = render.transaction(subject)
    else:
        data = render.customer(subject)
    return {
        "id": ev.id,
        "project_id": ev.project_id,
        "name": name_of(ev.type),
        "data": {ev.object_type: data},
        "sandbox": ev.sandbox,
        "fired_at": rfc3339(ev.fired_at),
    }


async def list_events(request: Request) -> Response:
    """GET /events: a feed a client polls with ``order=asc&start_after=<last id>`` without
    ever skipping an event (see ``settle.events.service.list_events``)."""
    call = await start(request)
    query = page_query(request)
    expands(request, ())
    items, has_more = await events.list_events(
        call.runtime.db,
        call.scope,
        query,
        types=SENT,
        settle_wait=call.runtime.settings.events_settle_seconds,
    )
    return ok(events=[event(call, ev) for ev in items], has_more=has_more)


async def find_event(request: Request) -> Response:
    call = await start(request)
    expands(request, ())
    async with call.read(one_statement=True) as tx:
        found = await events.get_event(tx, call.scope, request.path_params["event_id"], types=SENT)
    return ok(event=event(call, found))
