"""Wire types of the settling operations (payment methods, charges), beside ``schemas``.

Names and shapes are the vendor's where it has them (``CreateCharge``, ``SettleCharge``);
``CreatePaymentMethod`` is Settle's own (sandbox test cards; see ``payment_methods``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from settle.api.reepay.schemas import (
    MAX_ORDER_LINES,
    Base,
    CreateCustomer,
    CreateOrderLine,
    InvoiceBillingAddress,
    InvoiceShippingAddress,
    Key,
    ManualSettleTransfer,
    Metadata,
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
    key: Key | None = None  # the request's idempotency key (see charges)
    # The vendor's, not acted on here: refused when given (UNSUPPORTED).
    recurring: bool | None = None
    parameters: dict[str, Any] | None = None
    use_pm_for_subscription: bool | None = None
    text_on_statement: Str | None = None
    payment_method_reference: Str | None = None
    async_: bool | None = msgspec.field(default=None, name="async")
    acquirer_reference: Str | None = None
    account_funding_information: dict[str, Any] | None = None
    account_funding: bool | None = None


class SettleCharge(Base):
    # At least 1: the vendor's schema allows 0, but settling nothing is no request (leave the
    # amount out to settle all that is authorized).
    amount: Annotated[int, Meta(ge=1, le=MAX_MINOR)] | None = None
    manual_settle: ManualSettleTransfer | None = None
    key: Key | None = None  # the request's idempotency key (see charges)
    # The vendor's, not acted on here: refused when given (UNSUPPORTED).
    ordertext: Str | None = None
    order_lines: list[CreateOrderLine] | None = None
    acquirer_reference: Str | None = None


# Fields of the vendor's requests that this server does not act on: refused (code 43) when
# given (a boolean: when true), never silently ignored.
UNSUPPORTED: Final[dict[type[Base], tuple[str, ...]]] = {
    CreateCharge: (
        "recurring",
        "parameters",
        "use_pm_for_subscription",
        "text_on_statement",
        "payment_method_reference",
        "async_",
        "acquirer_reference",
        "account_funding_information",
        "account_funding",
    ),
    SettleCharge: ("ordertext", "order_lines", "acquirer_reference"),
}
