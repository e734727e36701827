"""ProcessOut wire values -> domain values: enums, amounts, URLs, addresses, normalisation.

Every check names the field as the client spelled it (``details[2].amount``). Numbers, dates
and times are read with the one strict wire grammar (``settle.grammar``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from settle import grammar, validation
from settle.api.http import check_depth
from settle.api.processout import schemas as wire
from settle.clock import MAX_US, MIN_US, rfc3339
from settle.customers.models import CustomerFields, Phone
from settle.errors import ErrorCode, ValidationError, invalid
from settle.invoices.models import InvoiceChanges, InvoiceInput, LineInput, Tax
from settle.money import MAX_MINOR, currency_code, format_amount, parse_amount

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
# Customer.sex: ProcessOut documents the field (a string) but not its values, nor do our
# reference notes or seeds; these three are accepted, in any case, stored lower-case.
SEXES: Final = ("male", "female", "other")

# Free-form JSON (external_fraud_tools, submerchant, verification, device.threeds_sdk,
# gateway_data) is stored with the invoice and sent back on every read, in list pages of up to
# 100 invoices. Unbounded, one field took an object of 80,000 keys (0.93 MB) and every page
# holding that invoice cost as much. The real payloads (fraud tool tokens and signals, 3-D
# Secure SDK data with its ephemeral key, a submerchant's address) are well under 2 KiB: 8 KiB
# per field, measured on the re-encoded JSON, is four times that. The key count (objects'
# keys at every level) bounds the work of storing and rendering it, whatever its bytes.
MAX_FREE_FORM_BYTES: Final = 8 * 1024
MAX_FREE_FORM_KEYS: Final = 256
FREE_FORM_CODE: Final = ErrorCode.FREE_FORM_TOO_LARGE
IMMUTABLE_CODE: Final = ErrorCode.IMMUTABLE_FIELD

_DESCRIPTOR_RE: Final = re.compile(r"[A-Za-z0-9 ./]*")
_DIALING_RE: Final = re.compile(r"(\+|00)?[0-9]{1,4}")
_PHONE_RE: Final = re.compile(r"[0-9 ()./-]*")


def one_of(value: str | None, allowed: Iterable[str], field: str) -> str | None:
    """Enums are matched in any ASCII letter case and stored in their documented (lower) case
    (str.lower() beyond ASCII makes "k" of the Kelvin sign "\u212a")."""
    if value is None:
        return None
    folded = value.lower() if value.isascii() else value
    allowed = tuple(allowed)
    if folded not in allowed:
        raise invalid(
            field,
            f"{value!r} is not allowed; use one of: {', '.join(allowed)}.",
            ErrorCode.INVALID_ENUM,
        )
    return folded


def _micros(value: str | None, field: str) -> int | None:
    """An RFC 3339 date-time as microseconds, its fraction truncated (``settle.grammar``)."""
    if value is None:
        return None
    us = grammar.parse_timestamp(value, field=field)
    # "9999-12-31T23:59:59-01:00" parses, but is in year 10000 in UTC: nothing could show it.
    if not MIN_US <= us <= MAX_US:
        raise invalid(field, "must be between years 0001 and 9999 in UTC.")
    return us


def _iso(value: str | None, field: str) -> str | None:
    """RFC 3339 UTC, as every time the API answers (an offset is converted, not kept)."""
    us = _micros(value, field)
    return None if us is None else rfc3339(us)


def _amount(value: str | None, currency: str, field: str) -> int | None:
    return None if value is None else parse_amount(value, currency, field=field)


def _currency(value: str | None) -> str:
    if value is None or value == "":
        raise invalid("currency", "is required.", ErrorCode.MISSING_CURRENCY)
    return currency_code(value)


def _url(value: str | None, field: str) -> str | None:
    return None if value is None else validation.url(value, field)


def free_form(value: Any, field: str) -> Any:
    """Bound a free-form JSON value: nesting depth, key count and encoded size."""
    try:
        check_depth(value)
    except ValidationError:
        raise invalid(field, "is nested too deeply.") from None
    keys = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if keys > MAX_FREE_FORM_KEYS:
        raise invalid(field, f"must have at most {MAX_FREE_FORM_KEYS} keys in all.", FREE_FORM_CODE)
    if len(msgspec.json.encode(value)) > MAX_FREE_FORM_BYTES:
        raise invalid(
            field,
            f"must be at most {MAX_FREE_FORM_BYTES} bytes once encoded as JSON.",
            FREE_FORM_CODE,
        )
    return value


def _phone(phone: wire.PhoneIn | None, field: str) -> dict[str, str | None] | None:
    if phone is None:
        return None
    dialing = phone.dialing_code
    if dialing is not None:
        if not _DIALING_RE.fullmatch(dialing):
            raise invalid(f"{field}.dialing_code", f"{dialing!r} is not a dialing code.")
        # ProcessOut: "+" is treated as "00".
        dialing = "00" + dialing[1:] if dialing.startswith("+") else dialing
    if phone.number is not None and not _PHONE_RE.fullmatch(phone.number):
        raise invalid(f"{field}.number", f"{phone.number!r} is not a phone number.")
    return {"number": phone.number, "dialing_code": dialing}


def tax(value: wire.TaxIn | None, currency: str) -> Tax | None:
    if value is None:
        return None
    rate = None
    if value.rate is not None:
        parsed = grammar.parse_decimal(
            value.rate,
            field="tax.rate",
            code=ErrorCode.INVALID_TAX_RATE,
            what="a percentage between 0 and 100",
        )
        if parsed > 100:
            raise invalid(
                "tax.rate",
                f"{value.rate!r} must be a percentage between 0 and 100.",
                ErrorCode.INVALID_TAX_RATE,
            )
        rate = grammar.plain(parsed)
    return Tax(amount=_amount(value.amount, currency, "tax.amount"), rate=rate)


def shipping(
    value: wire.ShippingIn | None, currency: str
) -> tuple[dict[str, Any] | None, int | None]:
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


def lines(details: list[wire.DetailIn] | None, currency: str) -> list[LineInput]:
    result = []
    for i, d in enumerate(details or ()):
        field = f"details[{i}]"
        if d.amount is None:
            raise invalid(f"{field}.amount", "is required.")
        amount = parse_amount(d.amount, currency, field=f"{field}.amount")
        quantity = 1 if d.quantity is None else d.quantity
        # As a Reepay order line's (api.reepay.convert.invoice_amount): the line's total is an
        # amount too, shown by the Reepay face; 1000 such lines stay below 2**63 together.
        if amount * quantity > MAX_MINOR:
            raise invalid(
                field,
                "its total (amount times quantity) is more than "
                f"{format_amount(MAX_MINOR, currency)}, the largest amount.",
                ErrorCode.INVALID_AMOUNT,
            )
        result.append(
            LineInput(
                name=d.name,
                amount=amount,
                quantity=quantity,
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


def invoice_input(body: wire.InvoiceCreate) -> InvoiceInput:
    currency = _currency(body.currency)
    if body.amount is None:
        raise invalid("amount", "is required.", ErrorCode.MISSING_AMOUNT)
    amount = parse_amount(body.amount, currency)
    if body.statement_descriptor is not None and not _DESCRIPTOR_RE.fullmatch(
        body.statement_descriptor
    ):
        raise invalid(
            "statement_descriptor",
            "may only contain letters, digits, spaces, dots and forward slashes.",
            ErrorCode.INVALID_STATEMENT_DESCRIPTOR,
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
        device["threeds_sdk"] = free_form(body.device.threeds_sdk, "device.threeds_sdk")
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
        attributes["external_fraud_tools"] = free_form(
            body.external_fraud_tools, "external_fraud_tools"
        )
    if body.unsupported_feature_bypass is not None:
        attributes["unsupported_feature_bypass"] = msgspec.structs.asdict(
            body.unsupported_feature_bypass
        )
    if body.gateway_data is not None:
        attributes["gateway_data"] = free_form(body.gateway_data, "gateway_data")
    if body.submerchant is not None:
        attributes["submerchant"] = free_form(body.submerchant, "submerchant")
    if body.verification is not None:
        attributes["verification"] = free_form(body.verification, "verification")
    invoice_tax = tax(body.tax, currency)
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
        tax=invoice_tax,
        auto_capture_at=_micros(body.auto_capture_at, "auto_capture_at"),
        expires_at=_micros(body.expires_at, "expires_at"),
        metadata=body.metadata or {},
        attributes=attributes,
        lines=lines(body.details, currency),
    )


def invoice_changes(body: wire.InvoiceUpdate, currency: str) -> InvoiceChanges:
    """What a PUT changes. A field it cannot change is a 400 unless null ("not given"). The
    invoice's own rules (its tax within its amount) are the domain's to check, against the
    invoice as stored (settle.invoices.rules)."""
    for name in wire.IMMUTABLE:
        if getattr(body, name) is not None:
            raise invalid(
                name,
                "cannot be changed after the invoice is created; PUT /invoices/{id} changes "
                "only amount, tax, details and shipping.",
                IMMUTABLE_CODE,
            )
    amount = _amount(body.amount, currency, "amount")
    changed_tax = tax(body.tax, currency)
    shipping_data, shipping_amount = shipping(body.shipping, currency)
    return InvoiceChanges(
        amount=amount,
        tax=changed_tax,
        lines=None if body.details is None else lines(body.details, currency),
        shipping=shipping_data,
        shipping_amount=shipping_amount,
    )


def customer_fields(body: wire.CustomerIn, stored_currency: str | None = None) -> CustomerFields:
    """``stored_currency`` (on update) prices a balance sent without a currency, as the
    official client's ``Customer.save()`` sends it."""
    currency = currency_code(body.currency) if body.currency is not None else None
    balance = None
    if body.balance is not None:
        balance_currency = currency or stored_currency
        if balance_currency is None:
            raise invalid("currency", "is required when balance is given.")
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
        date_of_birth=validation.date_of_birth(body.date_of_birth, "date_of_birth"),
        is_business=body.is_business,
        sex=one_of(body.sex, SEXES, "sex"),
        reference_id=body.reference_id,
        registered_at=_micros(body.registered_at, "registered_at"),
        balance=balance,
        currency=currency,
        default_token_id=body.default_token_id,
        metadata=body.metadata,
    )
