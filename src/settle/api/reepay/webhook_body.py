"""What a Reepay-dialect webhook is on the wire, as the vendor documents it: a JSON POST of
``{id, event_id, event_type, timestamp, signature, customer, invoice, transaction}`` with
``signature = hex(HMAC_SHA256(secret, timestamp + id))``. ``id`` is the webhook's (the same on
every attempt), ``customer`` and ``invoice`` are handles (an object made through the other
dialect has none: its id stands in), ``transaction`` an id.

Only the vendor's event types are sent (``invoice_settled``...); deliveries are ordered per
customer, as the vendor's are (an event with no customer, per its invoice)."""

from __future__ import annotations

from typing import Final

import msgspec

from settle.clock import rfc3339
from settle.db.database import Row
from settle.events.deliveries import Due
from settle.events.signing import reepay_signature
from settle.events.types import EventType

E = EventType
EVENT_NAMES: Final[dict[EventType, str]] = {
    E.INVOICE_CREATED: "invoice_created",
    E.INVOICE_SETTLED: "invoice_settled",
    E.INVOICE_AUTHORIZED: "invoice_authorized",
    E.INVOICE_FAILED: "invoice_failed",
    E.INVOICE_CANCELLED: "invoice_cancelled",
    E.INVOICE_CHANGED: "invoice_changed",
    E.INVOICE_REFUNDED: "invoice_refund",
    E.INVOICE_REACTIVATED: "invoice_reactivate",
    E.CUSTOMER_CREATED: "customer_created",
    E.CUSTOMER_CHANGED: "customer_changed",
    E.CUSTOMER_DELETED: "customer_deleted",
}

_encode: Final = msgspec.json.Encoder().encode


class ReepayFace:
    dialect = "reepay"

    def event_name(self, type: EventType) -> str | None:
        return EVENT_NAMES.get(type)

    def order_key(self, event: Row) -> str:
        key: str = event["customer_id"] or event["order_key"]
        return key

    def request(self, due: Due, now_us: int) -> tuple[bytes, dict[str, str]]:
        timestamp = rfc3339(due.fired_at)
        name = EVENT_NAMES[EventType(due.event_type)]
        body: dict[str, object] = {
            "id": due.id,
            "event_id": due.event_id,
            "event_type": name,
            "timestamp": timestamp,
            "signature": reepay_signature(due.secret, timestamp, due.id),
        }
        if due.customer_id:
            body["customer"] = due.customer_handle or due.customer_id
        if due.invoice_id:
            body["invoice"] = due.invoice_handle or due.invoice_id
        if due.transaction_id:
            body["transaction"] = due.transaction_id
        return _encode(body), {"Content-Type": "application/json"}


REEPAY: Final = ReepayFace()
