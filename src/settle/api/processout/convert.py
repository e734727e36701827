"""ProcessOut wire values -> domain values: enums, amounts, URLs, addresses, normalisation.

Every check names the field as the client spelled it (``details[2].amount``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from settle import validation
from settle.api.http import check_depth
from settle.api.processout import schemas as w
from settle.clock import MAX_US, MIN_US, from_datetime, rfc3339
from settle.customers.models import CustomerFields, Phone
from settle.errors import ValidationError
from settle.invoices.models import InvoiceChanges, InvoiceInput, LineInput, Tax
from settle.money import currency_exponent, parse_amount

INITIATION_TYPES: Final = ("cit", "mit")
PAYMENT_INTENTS: Final = (
    "one-off",
    "recurring",
    "recurring-standing-order",
    "recurring-subscription",
    "installment",
    "unscheduled",
    "unscheduled-delayed-charge",
    "unscheduled-resubmission",
    "unscheduled-no-show",
    "unscheduled-reauthorization",
)
SCA_EXEMPTION_REASONS: Final = ("low-value", "trusted-beneficiary", "transaction-risk-analysis")
CHALLENGE_INDICATORS: Final = (
    "no-preference",
    "no-challenge-requested",
    "challenge-requested",
    "challenge-requested-mandate",
    "no-challenge-requested-tra-performed",
    "no-challenge-requested-data-share-only",
    "no-challenge-requested-sca-performed",
    "no-challenge-requested-whitelist-exemption",
    "challenge-requested-whitelist-prompt",
    "cb-scoring",
)
PAYMENT_TYPES: Final = ("moto", "ecommerce")
CATEGORIES: Final = (
    "food",
    "entertainment",
    "home",
    "appliance",
    "bidding",
    "gift",
    "technology",
    "media",
    "communication",
    "health",
    "sport",
    "tickets",
    "personal-service",
    "professional-service",
    "clothing",
    "travel",
    "transport",
    "other",
)
CONDITIONS: Final = ("new", "refurbished", "used", "other")
CHANNELS: Final = ("web", "ios", "android", "other")
SHIPPING_METHODS: Final = (
    "web",
    "collect-at-shop",
    "relay",
    "travel-station",
    "home",
    "shipping",
    "locker",
    "other",
)
SHIPPING_DELAYS: Final = ("express", "priority", "standard", "other")

_DESCRIPTOR_RE: Final = re.compile(r"[A-Za-z0-9 ./]*")
_DIALING_RE: Final = re.compile(r"(\+|00)?[0-9]{1,4}")
_PHONE_RE: Final = re.compile(r"[0-9 ()./-]*")


def one_of(value: str | None, allowed: Iterable[str], field: str) -> str | None:
    """Enums are matched case-insensitively and stored in their documented (lower) case."""
    if value is None:
        return None
    folded = value.lower()
    allowed = tuple(allowed)
    if folded not in allowed:
        raise validation.invalid(
            field,
            f"{value!r} is not allowed; use one of: {', '.join(allowed)}.",
            "request.validation.invalid-enum",
        )
    return folded


def _micros(value: datetime | None, field: str) -> int | None:
    if value is None:
        return None
    us = from_datetime(value)
    # "9999-12-31T23:59:59-01:00" parses, but is in year 10000 in UTC: nothing could show it.
    if not MIN_US <= us <= MAX_US:
        raise validation.invalid(field, "must be between years 0001 and 9999 in UTC.")
    return us


def _iso(value: datetime | None, field: str) -> str | None:
    """RFC 3339 UTC, as every time the API answers (an offset is converted, not kept)."""
    us = _micros(value, field)
    return None if us is None else rfc3339(us)


def _amount(value: str | None, currency: str, field: str) -> int | None:
    return None if value is None else parse_amount(value, currency, field=field)


def _currency(value: str | None) -> str:
    if value is None or value == "":
        raise validation.invalid("currency", "is required.", "request.validation.missing-currency")
    code = value.upper()
    currency_exponent(code)
    return code


def _url(value: str | None, field: str) -> str | None:
    return None if value is None else validation.url(value, field)


def _raw(value: Any, field: str) -> Any:
    try:
        check_depth(value)
    except ValidationError:
        raise validation.invalid(field, "is nested too deeply.") from None
    return value


def _phone(phone: w.PhoneIn | None, field: str) -> dict[str, str | None] | None:
    if phone is None:
        return None
    dialing = phone.dialing_code
    if dialing is not None:
        if not _DIALING_RE.fullmatch(dialing):
            raise validation.invalid(f"{field}.dialing_code", f"{dialing!r} is not a dialing code.")
        # ProcessOut: "+" is treated as "00".
        dialing = "00" + dialing[1:] if dialing.startswith("+") else dialing
    if phone.number is not None and not _PHONE_RE.fullmatch(phone.number):
        raise validation.invalid(f"{field}.number", f"{phone.number!r} is not a phone number.")
    return {"number": phone.number, "dialing_code": dialing}


def tax(value: w.TaxIn | None, currency: str) -> Tax | None:
    if value is None:
        return None
    rate = None
    if value.rate is not None:
        try:
            parsed = Decimal(value.rate)
        except InvalidOperation:
            parsed = Decimal("NaN")
        if not parsed.is_finite() or not 0 <= parsed <= 100 or "e" in value.rate.lower():
            raise validation.invalid(
                "tax.rate",
                f"{value.rate!r} must be a percentage between 0 and 100.",
                "request.validation.invalid-tax-rate",
            )
        rate = format(parsed.normalize(), "f") if parsed else "0"
    return Tax(amount=_amount(value.amount, currency, "tax.amount"), rate=rate)


def shipping(value: w.ShippingIn | None, currency: str) -> tuple[dict[str, Any] | None, int | None]:
    """The descriptive shipping object, and its amount (money, kept apart in minor units)."""
    if value is None:
        return None, None
    amount = _amount(value.amount, currency, "shipping.amount")
    data = msgspec.structs.asdict(value)
    del data["amount"]
    data["method"] = one_of(value.method, SHIPPING_METHODS, "shipping.method")
    data["delay"] = one_of(value.delay, SHIPPING_DELAYS, "shipping.delay")
    if value.country_code is not None:
        data["country_code"] = validation.country_code(value.country_code, "shipping.country_code")
    if value.email is not None:
        data["email"] = validation.email(value.email, "shipping.email")
    data["phone"] = _phone(value.phone, "shipping.phone")
    data["expects_shipping_at"] = _iso(value.expects_shipping_at, "shipping.expects_shipping_at")
    return data, amount


def lines(details: list[w.DetailIn] | None, currency: str) -> list[LineInput]:
    result = []
    for i, d in enumerate(details or ()):
        field = f"details[{i}]"
        if d.amount is None:
            raise validation.invalid(f"{field}.amount", "is required.")
        result.append(
            LineInput(
                name=d.name,
                amount=parse_amount(d.amount, currency, field=f"{field}.amount"),
                quantity=1 if d.quantity is None else d.quantity,
                discount_amount=_amount(d.discount_amount, currency, f"{field}.discount_amount"),
                type=d.type,
                reference=d.reference,
                description=d.description,
                brand=d.brand,
                model=d.model,
                condition=one_of(d.condition, CONDITIONS, f"{field}.condition"),
                category=one_of(d.category, CATEGORIES, f"{field}.category"),
                marketplace_merchant=d.marketplace_merchant,
                marketplace_merchant_is_business=d.marketplace_merchant_is_business,
                marketplace_merchant_created_at=_micros(
                    d.marketplace_merchant_created_at, f"{field}.marketplace_merchant_created_at"
                ),
                metadata=d.metadata or {},
            )
        )
    return result


def invoice_input(body: w.InvoiceCreate) -> InvoiceInput:
    currency = _currency(body.currency)
    if body.amount is None:
        raise validation.invalid("amount", "is required.", "request.validation.missing-amount")
    amount = parse_amount(body.amount, currency)
    if body.statement_descriptor is not None and not _DESCRIPTOR_RE.fullmatch(
        body.statement_descriptor
    ):
        raise validation.invalid(
            "statement_descriptor",
            "may only contain letters, digits, spaces, dots and forward slashes.",
            "request.validation.invalid-statement-descriptor",
        )
    attributes: dict[str, Any] = {}
    if body.risk is not None:
        attributes["risk"] = msgspec.structs.asdict(body.risk)
    if body.device is not None:
        device = msgspec.structs.asdict(body.device)
        device["channel"] = one_of(body.device.channel, CHANNELS, "device.channel")
        if body.device.ip_address is not None:
            device["ip_address"] = validation.ip_address(
                body.device.ip_address, "device.ip_address"
            )
        device["threeds_sdk"] = _raw(body.device.threeds_sdk, "device.threeds_sdk")
        attributes["device"] = device
    shipping_data, shipping_amount = shipping(body.shipping, currency)
    if shipping_data is not None:
        attributes["shipping"] = shipping_data
    if body.billing is not None:
        billing = msgspec.structs.asdict(body.billing)
        if body.billing.country_code is not None:
            billing["country_code"] = validation.country_code(
                body.billing.country_code, "billing.country_code"
            )
        attributes["billing"] = billing
    if body.external_fraud_tools is not None:
        attributes["external_fraud_tools"] = _raw(body.external_fraud_tools, "external_fraud_tools")
    if body.unsupported_feature_bypass is not None:
        attributes["unsupported_feature_bypass"] = msgspec.structs.asdict(
            body.unsupported_feature_bypass
        )
    if body.gateway_data is not None:
        attributes["gateway_data"] = body.gateway_data
    if body.submerchant is not None:
        attributes["submerchant"] = _raw(body.submerchant, "submerchant")
    if body.verification is not None:
        attributes["verification"] = _raw(body.verification, "verification")
    return InvoiceInput(
        amount=amount,
        currency=currency,
        customer_id=body.customer_id,
        token_id=body.token_id,
        name=body.name,
        order_id=body.order_id,
        reference_id=body.reference_id,
        statement_descriptor=body.statement_descriptor,
        statement_descriptor_phone=body.statement_descriptor_phone,
        statement_descriptor_city=body.statement_descriptor_city,
        statement_descriptor_company=body.statement_descriptor_company,
        statement_descriptor_url=body.statement_descriptor_url,
        return_url=_url(body.return_url, "return_url"),
        cancel_url=_url(body.cancel_url, "cancel_url"),
        webhook_url=_url(body.webhook_url, "webhook_url"),
        initiation_type=one_of(body.initiation_type, INITIATION_TYPES, "initiation_type"),
        payment_intent=one_of(body.payment_intent, PAYMENT_INTENTS, "payment_intent"),
        payment_type=one_of(body.payment_type, PAYMENT_TYPES, "payment_type"),
        sca_exemption_reason=one_of(
            body.sca_exemption_reason, SCA_EXEMPTION_REASONS, "sca_exemption_reason"
        ),
        exemption_reason_3ds2=body.exemption_reason_3ds2,
        challenge_indicator=one_of(
            body.challenge_indicator, CHALLENGE_INDICATORS, "challenge_indicator"
        ),
        merchant_initiator_type=body.merchant_initiator_type,
        require_backend_capture=body.require_backend_capture,
        submerchant_id=body.submerchant_id,
        shipping_amount=shipping_amount,
        tax=tax(body.tax, currency),
        auto_capture_at=_micros(body.auto_capture_at, "auto_capture_at"),
        expires_at=_micros(body.expires_at, "expires_at"),
        metadata=body.metadata or {},
        attributes=attributes,
        lines=lines(body.details, currency),
    )


def invoice_changes(body: w.InvoiceUpdate, currency: str) -> InvoiceChanges:
    shipping_data, shipping_amount = shipping(body.shipping, currency)
    return InvoiceChanges(
        amount=_amount(body.amount, currency, "amount"),
        tax=tax(body.tax, currency),
        lines=None if body.details is None else lines(body.details, currency),
        shipping=shipping_data,
        shipping_amount=shipping_amount,
    )


def customer_fields(body: w.CustomerIn, stored_currency: str | None = None) -> CustomerFields:
    """``stored_currency`` (on update) prices a balance sent without a currency, as the
    official client's ``Customer.save()`` sends it."""
    currency = body.currency.upper() if body.currency is not None else None
    balance = None
    if body.balance is not None:
        balance_currency = currency or stored_currency
        if balance_currency is None:
            raise validation.invalid("currency", "is required when balance is given.")
        balance = parse_amount(body.balance, balance_currency, field="balance")
    phone = _phone(body.phone, "phone")
    return CustomerFields(
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        company_name=body.company_name,
        address1=body.address1,
        address2=body.address2,
        city=body.city,
        state=body.state,
        zip=body.zip,
        country_code=body.country_code,
        ip_address=body.ip_address,
        phone_number=body.phone_number,
        phone=Phone(**phone) if phone is not None else None,
        legal_document=body.legal_document,
        date_of_birth=body.date_of_birth,
        is_business=body.is_business,
        sex=body.sex,
        reference_id=body.reference_id,
        registered_at=_micros(body.registered_at, "registered_at"),
        balance=balance,
        currency=currency,
        default_token_id=body.default_token_id,
        metadata=body.metadata,
    )
