"""Each dialect's webhook face (body, signature, event names), for the delivery worker."""

from __future__ import annotations

from settle.events.deliveries import Face


def webhook_faces() -> dict[str, Face]:
    from settle.api.processout.webhook_body import PROCESSOUT
    from settle.api.reepay.webhook_body import REEPAY

    return {PROCESSOUT.dialect: PROCESSOUT, REEPAY.dialect: REEPAY}
