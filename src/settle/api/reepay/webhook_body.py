"""What a Reepay-dialect webhook is on the wire, as the vendor documents it: a JSON POST of
``{id, event_id, event_type, timestamp, signature, customer, invoice, transaction}`` with
``signature = hex(HMAC_SHA256(secret, timestamp + id))``. ``id`` is the webhook's (the same on
every attempt), ``customer`` and ``invoice`` are handles (an object made through the other
dialect has none: its id stands in), ``transaction`` an id.

Only the events with a Reepay name are sent (``settle.api.reepay.webhooks.NAMES``);
deliveries are ordered per customer, as the vendor's are (an event with no customer, per its
invoice)."""

from __future__ import annotations

from typing import Final

import msgspec

from settle.api.reepay.webhooks import NAMES
from settle.clock import rfc3339
from settle.db.database import Row
from settle.events.deliveries import Due
from settle.events.signing import reepay_signature
from settle.events.types import EventType

_encode: Final = msgspec.json.Encoder().encode


class ReepayFace:
    dialect = "reepay"

    def event_name(self, type: EventType) -> str | None:
        return NAMES[type]

    def order_key(self, event: Row) -> str:
        key: str = event["customer_id"] or event["order_key"]
        return key

    def request(self, due: Due, now_us: int) -> tuple[bytes, dict[str, str]]:
        timestamp = rfc3339(due.fired_at)
        name = NAMES[EventType(due.event_type)]
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
