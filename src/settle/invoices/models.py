"""The invoice and its lines: one row whichever API created it.

Money is integer minor units of ``currency``. ``attributes`` holds the descriptive nested
objects a dialect accepted (risk, device, shipping without its amount, ...), already validated
and normalised; the domain stores and returns them but computes nothing from them.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class InvoiceState(enum.StrEnum):
    """Where an invoice stands, whichever API looks at it (each dialect names the states its
    own way). Only ``pending`` (and ``created``, a draft) may still change."""

    CREATED = "created"
    PENDING = "pending"
    AUTHORIZED = "authorized"
    SETTLED = "settled"
    CANCELLED = "cancelled"
    FAILED = "failed"


OPEN_STATES = frozenset({InvoiceState.CREATED, InvoiceState.PENDING})


# ``omit_defaults`` (here, on Tax, InvoiceTerms, Transaction and CustomerFields): the domain's
# structs are encoded only as an event's snapshot (settle.events.outbox.encode), which then
# leaves out the fields at their defaults (None, 0, empty) and decodes back to the same object.
# The bench invoice's snapshot: 2,087 -> 1,463 bytes, below PostgreSQL's 2 KB threshold for
# compressing a row (pglz, which cost ~14 us of PostgreSQL CPU per event).
class LineInput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of an invoice: a ProcessOut invoice detail and a Reepay order line alike.

    ``amount`` is per unit, in minor units, including VAT when ``amount_incl_vat`` (Reepay's
    default, and what ProcessOut amounts are) or excluding it otherwise. ``vat_rate`` is the
    VAT as an exact fraction in a decimal string ("0.25" is 25 %), None where none was given.
    """

    name: str | None = None
    amount: int = 0
    quantity: int = 1
    vat_rate: str | None = None
    amount_incl_vat: bool = True
    discount_amount: int | None = None
    type: str | None = None
    reference: str | None = None
    description: str | None = None
    brand: str | None = None
    model: str | None = None
    condition: str | None = None
    category: str | None = None
    marketplace_merchant: str | None = None
    marketplace_merchant_is_business: bool | None = None
    marketplace_merchant_created_at: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class InvoiceLine(LineInput, kw_only=True):
    id: str


class Tax(msgspec.Struct, kw_only=True, omit_defaults=True):
    amount: int | None = None
    rate: str | None = None  # a percentage as an exact decimal string, "0" to "100"


class InvoiceTerms(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything an invoice says except its lines."""

    amount: int
    currency: str
    handle: str | None = None
    customer_id: str | None = None
    token_id: str | None = None
    name: str | None = None
    order_id: str | None = None
    reference_id: str | None = None
    statement_descriptor: str | None = None
    statement_descriptor_phone: str | None = None
    statement_descriptor_city: str | None = None
    statement_descriptor_company: str | None = None
    statement_descriptor_url: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    webhook_url: str | None = None
    initiation_type: str | None = None
    payment_intent: str | None = None
    payment_type: str | None = None
    sca_exemption_reason: str | None = None
    exemption_reason_3ds2: str | None = None
    challenge_indicator: str | None = None
    merchant_initiator_type: str | None = None
    require_backend_capture: bool | None = None
    submerchant_id: str | None = None
    shipping_amount: int | None = None
    tax: Tax | None = None
    auto_capture_at: int | None = None
    expires_at: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class InvoiceInput(InvoiceTerms, kw_only=True):
    lines: list[LineInput] = msgspec.field(default_factory=list)


# Scalar columns of ``invoices`` that map one to one onto InvoiceTerms fields.
SCALAR_FIELDS: tuple[str, ...] = tuple(
    f for f in InvoiceTerms.__struct_fields__ if f not in ("tax", "metadata", "attributes")
)


class Invoice(msgspec.Struct, kw_only=True):
    id: str
    project_id: str
    sandbox: bool
    transaction_id: str
    state: InvoiceState
    created_at: int
    updated_at: int
    # Bumped by every change to the invoice or its lines, under a row lock: (id, version)
    # names one exact content, which lets readers cache what they render from it.
    version: int
    terms: InvoiceTerms
    lines: list[InvoiceLine]

    @property
    def is_open(self) -> bool:
        """Nobody paid, authorized, cancelled or failed it: it may still change."""
        return self.state in OPEN_STATES

    @property
    def is_paid(self) -> bool:
        return self.state is InvoiceState.SETTLED

    @property
    def is_authorized(self) -> bool:
        return self.state is InvoiceState.AUTHORIZED

    @property
    def is_cancelled(self) -> bool:
        return self.state is InvoiceState.CANCELLED

    @property
    def is_failed(self) -> bool:
        return self.state is InvoiceState.FAILED

    def expired(self, now_us: int) -> bool:
        """Past its ``expires_at``: no payment of it may start any more."""
        expires_at = self.terms.expires_at
        return expires_at is not None and now_us >= expires_at


class InvoiceChanges(msgspec.Struct, kw_only=True):
    """What PUT may change. ``None`` leaves a part as it is; a given part replaces it whole."""

    amount: int | None = None
    tax: Tax | None = None
    lines: list[LineInput] | None = None
    shipping: dict[str, Any] | None = None
    shipping_amount: int | None = None
