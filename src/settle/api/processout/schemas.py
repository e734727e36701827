"""ProcessOut wire types: what clients send, decoded and shape-checked in one pass by msgspec.

Every field may be ``null`` (the official client sends every known field, unset ones as null):
null means "not given". Unknown fields are ignored, as the official clients send fields of
newer API versions. Lengths come from the ProcessOut reference; enums, currencies, amounts,
URLs, addresses, times and the bounds of free-form JSON are checked in ``convert`` where the
error can say what is allowed.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

Str = Annotated[str, Meta(max_length=255)]
Str12 = Annotated[str, Meta(max_length=12)]
Str14 = Annotated[str, Meta(max_length=14)]
Str16 = Annotated[str, Meta(max_length=16)]
Str22 = Annotated[str, Meta(max_length=22)]
Str30 = Annotated[str, Meta(max_length=30)]
Str32 = Annotated[str, Meta(max_length=32)]
Str80 = Annotated[str, Meta(max_length=80)]
Str100 = Annotated[str, Meta(max_length=100)]
Url = Annotated[str, Meta(max_length=2048)]
Text = Annotated[str, Meta(max_length=4096)]
# An RFC 3339 date-time, kept as its text here and parsed in ``convert`` by the wire grammar
# (``settle.grammar``): msgspec's own datetime decoding *rounds* fractional seconds beyond
# microseconds ("...:00.9999999Z" became the next second); ours truncates.
Timestamp = Annotated[str, Meta(max_length=64, extra_json_schema={"format": "date-time"})]
Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=255)], Annotated[str, Meta(max_length=4096)]],
    Meta(max_length=100),
]
Quantity = Annotated[int, Meta(ge=1, le=1_000_000)]
RawJson = Any  # forwarded to fraud tools as given; depth and size bounded in convert


class Base(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class PhoneIn(Base):
    number: Str14 | None = None
    dialing_code: Annotated[str, Meta(max_length=8)] | None = None


class DetailIn(Base):
    name: Str80 | None = None
    type: Str30 | None = None
    amount: Str | None = None
    quantity: Quantity | None = None
    metadata: Metadata | None = None
    reference: Str | None = None
    description: Str | None = None
    brand: Str80 | None = None
    model: Str80 | None = None
    discount_amount: Str | None = None
    condition: Str | None = None
    marketplace_merchant: Str | None = None
    marketplace_merchant_is_business: bool | None = None
    marketplace_merchant_created_at: Timestamp | None = None
    category: Str | None = None


class RiskIn(Base):
    score: Str12 | None = None
    is_legit: bool | None = None
    skip_gateway_rules: bool | None = None


class DeviceIn(Base):
    id: Str | None = None
    channel: Str | None = None
    ip_address: Str | None = None
    platform: Str | None = None
    threeds_sdk: RawJson = None


class ShippingIn(Base):
    amount: Str | None = None
    method: Str | None = None
    provider: Str32 | None = None
    delay: Str | None = None
    address1: Str | None = None
    address2: Str | None = None
    city: Str80 | None = None
    state: Str80 | None = None
    country_code: Str | None = None
    zip: Str16 | None = None
    phone: PhoneIn | None = None
    phone_number: Str | None = None
    expects_shipping_at: Timestamp | None = None
    relay_store_name: Str100 | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    email: Str | None = None


class BillingIn(Base):
    address1: Str | None = None
    address2: Str | None = None
    city: Str80 | None = None
    state: Str80 | None = None
    country_code: Str | None = None
    zip: Str16 | None = None


class TaxIn(Base):
    amount: Str | None = None
    rate: Str | None = None


class UnsupportedFeatureBypassIn(Base):
    incremental_authorization: bool | None = None
    split_payments: bool | None = None


class InvoiceCreate(Base):
    amount: Str | None = None
    currency: Str | None = None
    name: Str80 | None = None
    order_id: Str | None = None
    reference_id: Str | None = None
    customer_id: Str | None = None
    token_id: Str | None = None
    metadata: Metadata | None = None
    details: Annotated[list[DetailIn], Meta(max_length=1000)] | None = None
    submerchant: dict[str, RawJson] | None = None
    submerchant_id: Str | None = None
    exemption_reason_3ds2: Str | None = None
    sca_exemption_reason: Str | None = None
    challenge_indicator: Str | None = None
    gateway_data: Metadata | None = None
    merchant_initiator_type: Str | None = None
    initiation_type: Str | None = None
    payment_intent: Str | None = None
    statement_descriptor: Str22 | None = None
    statement_descriptor_phone: Str | None = None
    statement_descriptor_city: Str | None = None
    statement_descriptor_company: Str | None = None
    statement_descriptor_url: Url | None = None
    return_url: Url | None = None
    cancel_url: Url | None = None
    webhook_url: Url | None = None
    risk: RiskIn | None = None
    shipping: ShippingIn | None = None
    device: DeviceIn | None = None
    require_backend_capture: bool | None = None
    external_fraud_tools: dict[str, RawJson] | None = None
    tax: TaxIn | None = None
    payment_type: Str | None = None
    billing: BillingIn | None = None
    unsupported_feature_bypass: UnsupportedFeatureBypassIn | None = None
    verification: RawJson = None
    auto_capture_at: Timestamp | None = None
    expires_at: Timestamp | None = None


# A field of an invoice that PUT /invoices/{id} cannot change. It is decoded as any JSON value
# only so that its presence is seen: ``convert.invoice_changes`` refuses it with a 400 (code
# request.validation.immutable-field) unless it is null, which means "not given" (the official
# client sends every known field, unset ones as null). Fields no invoice has at all are ignored
# as everywhere. The schema says what is accepted: null only.
Immutable = Annotated[
    Any,
    Meta(
        extra_json_schema={
            "type": "null",
            "description": "Cannot be changed after the invoice is created.",
        }
    ),
]


class InvoiceUpdate(Base):
    """PUT /invoices/{id} changes amount, tax, details and shipping; every other field of
    ``InvoiceCreate`` is listed as ``Immutable`` (tests check the two lists stay in step)."""

    amount: Str | None = None
    tax: TaxIn | None = None
    details: Annotated[list[DetailIn], Meta(max_length=1000)] | None = None
    shipping: ShippingIn | None = None
    currency: Immutable = None
    name: Immutable = None
    order_id: Immutable = None
    reference_id: Immutable = None
    customer_id: Immutable = None
    token_id: Immutable = None
    metadata: Immutable = None
    submerchant: Immutable = None
    submerchant_id: Immutable = None
    exemption_reason_3ds2: Immutable = None
    sca_exemption_reason: Immutable = None
    challenge_indicator: Immutable = None
    gateway_data: Immutable = None
    merchant_initiator_type: Immutable = None
    initiation_type: Immutable = None
    payment_intent: Immutable = None
    statement_descriptor: Immutable = None
    statement_descriptor_phone: Immutable = None
    statement_descriptor_city: Immutable = None
    statement_descriptor_company: Immutable = None
    statement_descriptor_url: Immutable = None
    return_url: Immutable = None
    cancel_url: Immutable = None
    webhook_url: Immutable = None
    risk: Immutable = None
    device: Immutable = None
    require_backend_capture: Immutable = None
    external_fraud_tools: Immutable = None
    payment_type: Immutable = None
    billing: Immutable = None
    unsupported_feature_bypass: Immutable = None
    verification: Immutable = None
    auto_capture_at: Immutable = None
    expires_at: Immutable = None


UPDATABLE: Final = ("amount", "tax", "details", "shipping")
IMMUTABLE: Final = tuple(f for f in InvoiceUpdate.__struct_fields__ if f not in UPDATABLE)


class AssignCustomer(Base):
    customer_id: Str | None = None


class CustomerIn(Base):
    email: Str | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    company_name: Str | None = None
    address1: Str | None = None
    address2: Str | None = None
    city: Str | None = None
    state: Str | None = None
    zip: Str16 | None = None
    country_code: Str | None = None
    ip_address: Str | None = None
    phone: PhoneIn | None = None
    phone_number: Str | None = None
    legal_document: Str | None = None
    date_of_birth: Str | None = None
    is_business: bool | None = None
    sex: Str | None = None
    metadata: Metadata | None = None
    reference_id: Str | None = None
    registered_at: Timestamp | None = None
    balance: Str | None = None
    currency: Str | None = None
    default_token_id: Str | None = None


# --- payments -------------------------------------------------------------------------------

Str8 = Annotated[str, Meta(max_length=8)]
# The official client sends what its caller gave: an int or a string of digits.
IntOrText = int | Annotated[str, Meta(max_length=8)]


class CardIn(Base):
    """POST /cards. The number and CVC go to the gateway's vault and nowhere else."""

    number: Annotated[str, Meta(max_length=32)] | None = None
    exp_month: IntOrText | None = None
    exp_year: IntOrText | None = None
    cvc2: Str8 | None = None
    name: Str | None = None
    metadata: Metadata | None = None


class TokenIn(Base):
    """POST /customers/{id}/tokens (and PUT, which may only change ``set_default``)."""

    source: Str | None = None
    set_default: bool | None = None
    description: Str | None = None
    metadata: Metadata | None = None


class PaymentIn(Base):
    """authorize and capture. The official client also sends the invoice's ``device`` and
    ``incremental`` and options Settle does not act on (synchronous, enable_three_d_s_2, ...):
    they are accepted and ignored, as unknown fields are."""

    source: Str | None = None
    capture_amount: Str | None = None
    authorize_only: bool | None = None
    metadata: Metadata | None = None
    device: RawJson = None
    incremental: RawJson = None


class AmountIn(Base):
    """void (``amount`` ignored: a void releases the whole authorization) and
    increment_authorization (``amount`` required). ``metadata`` is kept on the operation made,
    shown in the transaction's ``operations`` (ProcessOut's TransactionOperation has it)."""

    amount: Str | None = None
    metadata: Metadata | None = None


class RefundIn(Base):
    amount: Str | None = None
    reason: Str | None = None
    information: Text | None = None
    metadata: Metadata | None = None
    # Refunding given invoice details is not implemented: a non-empty list is refused (400,
    # request.not-implemented) by ``payments._refund``, not ignored; the document says so.
    invoice_detail_ids: Annotated[list[Str], Meta(max_length=1000)] | None = None
