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


class Transaction(msgspec.Struct, kw_only=True):
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

    @property
    def available_amount(self) -> int:
        """What can still be refunded."""
        return self.captured_amount - self.refunded_amount
