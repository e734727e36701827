"""Reepay wire values -> domain values: handles, order lines, VAT rates, addresses.

Every check names the field as this dialect's clients spell it (``order_lines[2].vat``);
domain errors are translated back (``errors.FIELD_NAMES``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import msgspec

from settle import grammar, validation
from settle.api.reepay import schemas as wire
from settle.customers.models import CustomerFields
from settle.errors import ErrorCode, NotFoundError, invalid
from settle.ids import new_id
from settle.invoices import vat
from settle.invoices.models import LineInput
from settle.money import MAX_MINOR, currency_code

# The vendor's rule for invoice and customer handles: 1-255 of [a-zA-Z0-9_.-@].
HANDLE_RE: Final = re.compile(r"[a-zA-Z0-9_.\-@]{1,255}")
GENERATED_HANDLE_PREFIX: Final = "cust-"
# The currency of an invoice sent without one, for a project without a default currency.
FALLBACK_CURRENCY: Final = "DKK"

# Reepay's customer fields -> the domain's (CustomerFields); the rest have the same name.
CUSTOMER_FIELDS: Final = {
    "address": "address1",
    "postal_code": "zip",
    "country": "country_code",
    "company": "company_name",
    "phone": "phone_number",
}


def is_handle(value: str) -> bool:
    return HANDLE_RE.fullmatch(value) is not None


def check_handle(value: str, field: str = "handle") -> str:
    if not is_handle(value):
        raise invalid(
            field,
            f"{value[:40]!r} is not a valid handle: use 1 to 255 characters of "
            "a-z, A-Z, 0-9, '_', '.', '-' and '@'.",
        )
    return value


def lookup_handle(value: str, kind: str) -> str:
    """A handle (or id) from a path: one that no object can have is not found, at once."""
    if not is_handle(value):
        raise NotFoundError(kind, value[:40])
    return value


def customer_fields(body: wire.CustomerFieldsIn) -> CustomerFields:
    values = {
        CUSTOMER_FIELDS.get(name, name): getattr(body, name)
        for name in wire.CustomerFieldsIn.__struct_fields__
    }
    return CustomerFields(**values)


def new_customer_fields(body: wire.CreateCustomer) -> CustomerFields:
    if body.handle is not None and body.generate_handle:
        raise invalid("handle", "give either handle or generate_handle, not both.")
    if body.handle is not None:
        handle = check_handle(body.handle)
    elif body.generate_handle:
        # Time-led, so generated handles sort as the customers were created.
        handle = GENERATED_HANDLE_PREFIX + new_id("")
    else:
        raise invalid("handle", "is required (or set generate_handle to true).")
    return msgspec.structs.replace(
        customer_fields(body), handle=handle, metadata=body.metadata or {}
    )


def rate(value: msgspec.Raw, field: str) -> str | None:
    """A VAT rate as its exact decimal string ("0.25"), or None when none was given (absent
    or null). A JSON number is read exactly; a JSON string by the wire grammar."""
    text = bytes(value)
    if not text or text == b"null":
        return None
    if len(text) > _CACHED_RATE_BYTES:  # "0.25000...0" of a megabyte: parsed, not kept
        return _rate.__wrapped__(text, field)
    return _rate(text, field)


_CACHED_RATE_BYTES: Final = 64


# A shop's lines repeat a few rates: each parsed once (~4 us a parse). A refused rate
# raises, which is not cached.
@lru_cache(maxsize=256)
def _rate(text: bytes, field: str) -> str:
    if text.startswith(b'"'):
        value = grammar.parse_decimal(
            msgspec.json.decode(text, type=str),
            field=field,
            code=ErrorCode.INVALID_TAX_RATE,
            what="a VAT rate",
        )
    elif text[:1] in b"-0123456789":  # a JSON number: its text is exact Decimal syntax
        value = Decimal(text.decode())
    else:
        raise invalid(field, "must be a number, a decimal string or null.")
    return _parse_rate(value, field)


def _parse_rate(value: Decimal, field: str) -> str:
    try:
        parsed = vat.parse_rate(value)
    except ValueError:
        raise invalid(
            field,
            f"must be a fraction from 0 to 1 (0.25 is 25 %) with at most "
            f"{vat.MAX_RATE_DECIMALS} decimals.",
            ErrorCode.INVALID_TAX_RATE,
        ) from None
    return grammar.plain(parsed)


def order_lines(lines: list[wire.CreateOrderLine]) -> list[LineInput]:
    result = []
    for i, line in enumerate(lines):
        field = f"order_lines[{i}]"
        if not line.ordertext.strip():
            raise invalid(f"{field}.ordertext", "must not be blank.")
        result.append(
            LineInput(
                name=line.ordertext,
                amount=line.amount,
                quantity=1 if line.quantity is None else line.quantity,
                vat_rate=rate(line.vat, f"{field}.vat"),
                amount_incl_vat=line.amount_incl_vat is not False,
            )
        )
    return result


def invoice_amount(lines: list[LineInput]) -> int:
    """The invoice's amount: the sum of its lines including VAT, within what is stored."""
    total = 0
    for i, line in enumerate(lines):
        amount = vat.of_line(line).amount
        if amount > MAX_MINOR:
            raise invalid(f"order_lines[{i}]", "its total is too large.", ErrorCode.INVALID_AMOUNT)
        total += amount
    if total > MAX_MINOR:
        raise invalid("order_lines", "the invoice total is too large.", ErrorCode.INVALID_AMOUNT)
    return total


def address(value: wire.InvoiceBillingAddress | None, field: str) -> dict[str, Any] | None:
    """The descriptive address object as stored: given fields only, country and e-mail
    checked and normalised."""
    if value is None:
        return None
    data = msgspec.structs.asdict(value)
    if value.country is not None:
        data["country"] = validation.country_code(value.country, f"{field}.country")
    if value.email is not None:
        data["email"] = validation.email(value.email, f"{field}.email")
    return {k: v for k, v in data.items() if v is not None}


class InvoiceParts(msgspec.Struct, kw_only=True, frozen=True):
    """A create request, checked: what is left is the customer's and the project's part."""

    handle: str
    currency: str | None
    amount: int
    lines: list[LineInput]
    metadata: dict[str, str]
    attributes: dict[str, Any]


def invoice_parts(body: wire.CreateCustomerInvoice) -> InvoiceParts:
    handle = check_handle(body.handle)
    currency = currency_code(body.currency) if body.currency else None
    lines = order_lines(body.order_lines)
    amount = invoice_amount(lines)
    attributes: dict[str, Any] = {}
    for name in ("billing_address", "shipping_address"):
        found = address(getattr(body, name), name)
        if found is not None:
            attributes[name] = found
    for name in ("cost_center", "purchase_order_number"):
        if getattr(body, name) is not None:
            attributes[name] = getattr(body, name)
    return InvoiceParts(
        handle=handle,
        currency=currency,
        amount=amount,
        lines=lines,
        metadata=body.metadata or {},
        attributes=attributes,
    )
