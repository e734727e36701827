"""Reepay wire types: what clients send, decoded and shape-checked in one pass by msgspec.

Names and shapes are the vendor's (``openapi.derived.json``: CreateCustomer, UpdateCustomer,
CreateCustomerInvoice, CreateOrderLine, InvoiceBillingAddress, Settle, ManualSettleTransfer).
Unknown fields are ignored, as the vendor's newer fields may be sent by its clients; ``null``
means "not given". Handles, currencies, countries, e-mail addresses and VAT rates are checked
in ``convert``, where the error can say what is allowed.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

from settle.money import MAX_MINOR

MAX_ORDER_LINES: Final = 100  # the vendor's text (its schema's maxItems says 1000)
MAX_QUANTITY: Final = 1_000_000

Str = Annotated[str, Meta(max_length=255)]
Text = Annotated[str, Meta(max_length=1024)]
# Metadata values are strings here: the domain keeps one metadata map per object, shared by
# every dialect (ProcessOut's are strings). The vendor allows any JSON value.
Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=255)], Annotated[str, Meta(max_length=4096)]],
    Meta(max_length=100),
]
# Minor units per unit. Negative lines (discounts) are not accepted: an invoice's amount is
# what its payment asks for, and every amount in the domain is non-negative.
MinorUnits = Annotated[int, Meta(ge=0, le=MAX_MINOR)]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
# A fraction (0.25 is 25 %), as a JSON number or a decimal string, kept as its raw JSON and
# read by ``convert.rate``: a number exactly, never through a float; a string by the wire
# grammar. (msgspec's Decimal reads a string with Python's Decimal(), which takes " 0.25",
# "0.2_5", ".25" and full-width digits.) Absent: an empty Raw (the default); null: b"null".
Rate = msgspec.Raw


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


# A request's idempotency key given in its body (Reepay's ``key``), by the rule of the
# Idempotency-Key header (settle.api.idempotency): visible ASCII, no spaces.
Key = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[!-~]+$")]


class CustomerFieldsIn(Base):
    email: Str | None = None
    address: Str | None = None
    address2: Str | None = None
    city: Str | None = None
    country: Str | None = None
    phone: Str | None = None
    company: Str | None = None
    vat: Str | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    postal_code: Str | None = None


class CreateCustomer(CustomerFieldsIn):
    handle: Str | None = None
    generate_handle: bool | None = None
    metadata: Metadata | None = None


class UpdateCustomer(CustomerFieldsIn):
    pass


class CreateOrderLine(Base):
    ordertext: Annotated[str, Meta(min_length=1, max_length=1024)]
    amount: MinorUnits
    vat: Rate = msgspec.field(default_factory=msgspec.Raw)
    quantity: Quantity | None = None
    amount_incl_vat: bool | None = None


class InvoiceBillingAddress(Base):
    company: Str | None = None
    vat: Str | None = None
    attention: Str | None = None
    address: Str | None = None
    address2: Str | None = None
    city: Str | None = None
    country: Str | None = None
    email: Str | None = None
    phone: Str | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    postal_code: Str | None = None
    state_or_province: Str | None = None


class InvoiceShippingAddress(InvoiceBillingAddress):
    pass


class Settle(Base):
    payment_method: Str | None = None
    due: Str | None = None


class ManualSettleTransfer(Base):
    method: Str | None = None
    payment_date: Str | None = None
    comment: Text | None = None
    reference: Str | None = None


class CreateCustomerInvoice(Base):
    handle: Annotated[str, Meta(min_length=1, max_length=255)]
    order_lines: Annotated[list[CreateOrderLine], Meta(min_length=1, max_length=MAX_ORDER_LINES)]
    currency: Str | None = None
    metadata: Metadata | None = None
    settle: Settle | None = None
    manual_transfer: ManualSettleTransfer | None = None
    billing_address: InvoiceBillingAddress | None = None
    shipping_address: InvoiceShippingAddress | None = None
    cost_center: Str | None = None
    purchase_order_number: Str | None = None


# PUT /v1/invoice/{handle}/metadata: the whole new metadata.
MetadataIn = Metadata


# A bound on what one request may ask the delivery worker to do per event (the vendor states
# none).
MAX_URLS: Final = 10
Secret = Annotated[str, Meta(min_length=8, max_length=255)]


class UpdateWebhookSettings(Base):
    """PUT /v1/account/webhook_settings. ``urls`` replaces the list; the other fields, when
    absent or null, stay as they are."""

    urls: Annotated[list[Annotated[str, Meta(max_length=2048)]], Meta(max_length=MAX_URLS)]
    disabled: bool | None = None
    secret: Secret | None = None
    event_types: (
        Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=64)] | None
    ) = None
    # The vendor's too, not acted on yet: refused (code 43) rather than silently ignored.
    username: str | None = None
    password: str | None = None
    alert_emails: list[str] | None = None
    alert_count: int | None = None
