"""Transactions: the payment side of an invoice. One is created, ``waiting``, with each invoice."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

TransactionStatus = Literal[
    "waiting",
    "pending",
    "authorized",
    "completed",
    "failed",
    "voided",
    "refunded",
    "partially-refunded",
    "disputed",
    "solved",
    "reversed",
]

WAITING: Final = "waiting"


# omit_defaults: a smaller event snapshot (see settle.invoices.models LineInput).
class Transaction(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    project_id: str
    sandbox: bool
    invoice_id: str
    customer_id: str | None
    name: str | None
    amount: int
    currency: str
    status: TransactionStatus
    authorized_amount: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    voided_amount: int = 0
    error_code: str | None = None
    error_message: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    created_at: int
    updated_at: int
    card_id: str | None = None
    token_id: str | None = None
    gateway_name: str | None = None
    card_reference: str | None = None
    cvc_check: str | None = None
    avs_check: str | None = None
    three_d_s_status: str | None = None
    authorized_at: int | None = None
    captured_at: int | None = None
    voided_at: int | None = None
    refunded_at: int | None = None
    chargedback_at: int | None = None

    @property
    def available_amount(self) -> int:
        """What can still be refunded."""
        return self.captured_amount - self.refunded_amount


OperationStatus = Literal["pending", "succeeded", "failed"]


class Operation(msgspec.Struct, kw_only=True):
    """One gateway operation on a transaction: a row of the append-only log."""

    id: str
    project_id: str
    sandbox: bool
    transaction_id: str
    type: str  # settle.payments.gateway.OperationType
    status: OperationStatus
    amount: int
    currency: str
    gateway_name: str
    operation_key: str
    created_at: int
    card_id: str | None = None
    token_id: str | None = None
    gateway_reference: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    refund_id: str | None = None
    reason: str | None = None
    information: str | None = None
    customer_action: dict[str, str] | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    completed_at: int | None = None
    # An authorization of a sale: capture this much once it succeeds.
    capture_after: int | None = None
    # What a decline of this authorization does beyond failing it: "fail_invoice" (a Reepay
    # settle's: the invoice moves to failed). Kept on the row so that recovery after a crash
    # and the payer's 3-D Secure answer apply it as the request would have.
    on_decline: str | None = None


class Card(msgspec.Struct, kw_only=True):
    """A card as Settle keeps it: never its number or CVC (the gateway's vault has those)."""

    id: str
    project_id: str
    sandbox: bool
    scheme: str
    type: str | None
    iin: str
    last_4_digits: str
    exp_month: int
    exp_year: int
    name: str | None
    fingerprint: str
    cvc_check: str
    avs_check: str
    gateway_name: str
    gateway_reference: str | None
    metadata: dict[str, str]
    created_at: int
    anonymized_at: int | None = None


class Token(msgspec.Struct, kw_only=True):
    """A customer's saved card: chargeable again by its customer, in its project, only."""

    id: str
    project_id: str
    sandbox: bool
    customer_id: str
    card_id: str
    description: str | None
    metadata: dict[str, str]
    created_at: int
    is_default: bool = False
    deleted_at: int | None = None
