"""What Settle asks of a payment gateway, and what it hears back.

A gateway is a network service: a call can hang, fail, or succeed after Settle crashed. So it
is never called inside a database transaction (settle.billing records the operation
``pending`` first, calls, then records the answer), every call carries the operation's own
idempotency key, and ``lookup`` asks what became of a key: the recovery of operations a crash
left pending. A decline is a result, not an exception: only a gateway that cannot answer at
all raises (``GatewayUnavailable``), and the operation then stays pending until it can.

The sandbox gateway (``settle.payments.sandbox``) is the one implementation today; a real
provider's connector implements the same Protocol, and nothing in the domain changes.
"""

from __future__ import annotations

import enum
from typing import Protocol

import msgspec


class OperationType(enum.StrEnum):
    AUTHORIZATION = "authorization"
    INCREMENT = "increment_authorization"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    # The payer must act (3-D Secure): the operation stays pending until they have.
    ACTION_REQUIRED = "action_required"


class CardData(msgspec.Struct, frozen=True, kw_only=True):
    """A card as the payer typed it: given to the gateway's vault, never stored by Settle."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str | None = None
    name: str | None = None


class VaultedCard(msgspec.Struct, frozen=True, kw_only=True):
    reference: str  # the gateway's handle on the card


class CustomerAction(msgspec.Struct, frozen=True, kw_only=True):
    type: str  # "redirect"
    value: str  # where the payer goes


class OperationRequest(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # idempotent: the same key always gets the same answer
    type: OperationType
    amount: int  # minor units of ``currency``
    currency: str
    card_reference: str | None
    # For a capture, void, refund or increment: the authorization's gateway reference.
    parent_reference: str | None = None
    # Where the payer returns after a customer action (3-D Secure).
    return_url: str | None = None


class OperationResult(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cvc_check: str | None = None
    avs_check: str | None = None
    three_d_s_status: str | None = None
    customer_action: CustomerAction | None = None
    # The sandbox's chargeback card: a dispute follows this (successful) capture.
    dispute_follows: bool = False


class GatewayUnavailable(Exception):
    """The gateway did not answer (timeout, connection refused): the outcome is unknown."""


class Gateway(Protocol):
    name: str

    async def vault(self, card: CardData) -> VaultedCard:
        """Keep ``card`` at the gateway; Settle keeps only the reference."""
        ...

    async def execute(self, request: OperationRequest) -> OperationResult:
        """Run the operation, or answer as before if its key was seen."""
        ...

    async def lookup(self, key: str) -> OperationResult | None:
        """The answer recorded for ``key``, or None if the gateway never acted on it."""
        ...

    async def expire(self, request: OperationRequest) -> OperationResult:
        """Give up on ``request``, whose payer was asked to act (3-D Secure) and never did:
        from now on its answer is a decline. If the payer's answer was recorded first, that
        answer stands, and is returned."""
        ...
