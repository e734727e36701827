"""What a ProcessOut-dialect webhook is on the wire: ``POST {"event_id", "event_type"}`` (the
receiver fetches ``GET /events/{id}`` for the rest, as with ProcessOut), signed with Settle's
own ``Settle-Signature`` header (``settle.events.signing``; ProcessOut documents none)."""

from __future__ import annotations

from typing import Final

import msgspec

from settle.api.processout.events import NAMES
from settle.db.database import Row
from settle.events.deliveries import Due
from settle.events.signing import HEADER, settle_signature
from settle.events.types import EventType

_encode: Final = msgspec.json.Encoder().encode


class ProcessOutFace:
    dialect = "processout"

    def event_name(self, type: EventType) -> str | None:
        return NAMES[type]

    def order_key(self, event: Row) -> str:
        key: str = event["order_key"]
        return key

    def request(self, due: Due, now_us: int) -> tuple[bytes, dict[str, str]]:
        name = NAMES[EventType(due.event_type)]
        body = _encode({"event_id": due.event_id, "event_type": name})
        return body, {
            "Content-Type": "application/json",
            HEADER: settle_signature(due.secret, now_us // 1_000_000, body),
            # The same on every attempt of this delivery: a receiver can drop repeats by it.
            "Settle-Webhook-Id": due.id,
        }


PROCESSOUT: Final = ProcessOutFace()
