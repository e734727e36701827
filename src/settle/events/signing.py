"""Webhook signatures.

ProcessOut documents no signature, so Settle signs its ProcessOut-dialect deliveries with a
header of its own design (documented in the README, whose verification snippet the tests run)::

    Settle-Signature: t=1764240000,v1=5257a869e7ec...(64 hex digits)

``v1`` is the lowercase hex HMAC-SHA256, keyed with the endpoint's secret, of the ASCII
timestamp ``t`` (Unix seconds), a ``.``, and the request body exactly as sent. Signing the
timestamp with the body lets a receiver refuse replays: an old request, captured and sent
again, carries an old ``t`` that cannot be changed without breaking the signature (receivers
refuse ``t`` more than 5 minutes from their clock). Each attempt is signed afresh. Several
``v1=`` values may appear while a secret is being rotated; one matching is enough.

Reepay-dialect deliveries carry the vendor's signature in the body:
``hex(HMAC_SHA256(secret, timestamp + id))``, ``timestamp`` being the body's own RFC 3339
string and ``id`` the webhook's id.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

HEADER: Final = "Settle-Signature"
TOLERANCE_SECONDS: Final = 300


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def settle_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Settle-Signature`` header's value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_hmac(secret, str(timestamp).encode() + b'.' + body)}"


def reepay_signature(secret: str, timestamp: str, webhook_id: str) -> str:
    """The Reepay body's ``signature``."""
    return _hmac(secret, (timestamp + webhook_id).encode())
