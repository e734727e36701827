"""Wire types of the settling operations (payment methods, charges), beside ``schemas``.

Names and shapes are the vendor's where it has them (``CreateCharge``, ``SettleCharge``);
``CreatePaymentMethod`` is Settle's own (sandbox test cards; see ``payment_methods``).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from settle.api.reepay.schemas import (
    MAX_ORDER_LINES,
    Base,
    CreateCustomer,
    CreateOrderLine,
    InvoiceBillingAddress,
    InvoiceShippingAddress,
    ManualSettleTransfer,
    Metadata,
    MinorUnits,
    Str,
)
from settle.money import MAX_MINOR

Month = Annotated[int, Meta(ge=1, le=12)]
Year = Annotated[int, Meta(ge=0, le=9999)]


class CreatePaymentMethod(Base):
    """A test card of the sandbox gateway, saved for the customer."""

    number: Annotated[str, Meta(min_length=1, max_length=32)]
    exp_month: Month
    exp_year: Year
    cvc: Annotated[str, Meta(max_length=4)] | None = None
    name: Str | None = None


class CreateCharge(Base):
    handle: Annotated[str, Meta(min_length=1, max_length=255)]
    source: Annotated[str, Meta(min_length=1, max_length=255)]
    amount: Annotated[int, Meta(ge=1, le=MAX_MINOR)] | None = None
    currency: Str | None = None
    customer: CreateCustomer | None = None
    customer_handle: Str | None = None
    metadata: Metadata | None = None
    settle: bool | None = None
    ordertext: Annotated[str, Meta(max_length=1024)] | None = None
    order_lines: (
        Annotated[list[CreateOrderLine], Meta(min_length=0, max_length=MAX_ORDER_LINES)] | None
    ) = None
    billing_address: InvoiceBillingAddress | None = None
    shipping_address: InvoiceShippingAddress | None = None


class SettleCharge(Base):
    amount: MinorUnits | None = None
    manual_settle: ManualSettleTransfer | None = None
