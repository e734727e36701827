"""Reepay webhook settings (GET and PUT /v1/account/webhook_settings) and the dialect's event
names: which domain events a Reepay account is told of, and by what name.

Reepay names events per invoice and per customer; a payment is told as the invoice's new
state (``invoice_authorized``, ``invoice_settled`` ...), so the domain's transaction events
have no Reepay name (the invoice event recorded with the same change tells it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle import validation
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import json_response, start
from settle.api.reepay.invoices import not_implemented
from settle.db.database import Tx
from settle.errors import ErrorCode, invalid
from settle.events import service as events
from settle.events.service import EndpointChanges, WebhookEndpoint
from settle.events.types import EventType as E

# Every event type's Reepay name, or None where the Reepay dialect sends no such event.
NAMES: Final[Mapping[E, str | None]] = {
    E.INVOICE_CREATED: "invoice_created",
    E.INVOICE_CHANGED: "invoice_changed",
    # Deleting is a ProcessOut operation on an invoice nobody paid: to a Reepay account the
    # invoice is then gone as if cancelled, but a cancelled invoice can still be read there,
    # and a deleted one cannot; no Reepay event says "gone".
    E.INVOICE_DELETED: None,
    E.INVOICE_AUTHORIZED: "invoice_authorized",
    E.INVOICE_SETTLED: "invoice_settled",
    E.INVOICE_FAILED: "invoice_failed",
    E.INVOICE_CANCELLED: "invoice_cancelled",
    E.INVOICE_REACTIVATED: "invoice_reactivate",
    E.INVOICE_REFUNDED: "invoice_refund",
    E.TRANSACTION_REQUESTED: None,
    E.TRANSACTION_AUTHORIZED: None,
    E.TRANSACTION_CAPTURED: None,
    E.TRANSACTION_FAILED: None,
    E.TRANSACTION_VOIDED: None,
    E.TRANSACTION_REFUNDED: None,
    E.TRANSACTION_DISPUTED: None,
    E.CUSTOMER_CREATED: "customer_created",
    E.CUSTOMER_CHANGED: "customer_changed",
    E.CUSTOMER_DELETED: "customer_deleted",
}
EVENT_TYPES: Final = tuple(sorted(n for n in NAMES.values() if n is not None))
BY_NAME: Final[Mapping[str, E]] = {n: t for t, n in NAMES.items() if n is not None}


def changes_of(body: wire.UpdateWebhookSettings) -> EndpointChanges:
    """Validate everything before anything is written."""
    for name in ("username", "password", "alert_emails", "alert_count"):
        if getattr(body, name) is not None:
            raise not_implemented(name, f"Webhook {name}")
    urls = [validation.url(u, f"urls[{i}]") for i, u in enumerate(body.urls)]
    event_types = None
    if body.event_types is not None:
        for i, name in enumerate(body.event_types):
            if name not in BY_NAME:
                raise invalid(
                    f"event_types[{i}]",
                    f"{name!r} is not an event type; use: {', '.join(EVENT_TYPES)}.",
                    ErrorCode.INVALID_ENUM,
                )
        event_types = list(dict.fromkeys(body.event_types))  # once each, in the order given
    return EndpointChanges(
        urls=list(dict.fromkeys(urls)),
        disabled=body.disabled,
        secret=body.secret,
        event_types=event_types,
    )


def render(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "urls": endpoint.urls,
        "disabled": endpoint.disabled,
        "secret": endpoint.secret,
        "event_types": endpoint.event_types,
    }


async def get_webhook_settings(request: Request) -> Response:
    call = await start(request)
    async with call.read(one_statement=True) as tx:
        found = await events.get_endpoint(tx, call.scope, "reepay")
    return json_response(render(found or events.unset_endpoint(call.scope, "reepay")))


async def update_webhook_settings(request: Request) -> Response:
    call = await start(request)
    changes = changes_of(await call.body(wire.UpdateWebhookSettings))

    async def perform(tx: Tx) -> Response:
        return json_response(render(await events.put_endpoint(tx, call.scope, "reepay", changes)))

    return await call.write(perform)
