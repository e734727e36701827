"""Exact money: integer minor units inside, decimal strings at the ProcessOut edge.

The exponent of each currency comes from the maintained ISO 4217 table of the ``iso4217``
package. Currencies without a minor unit (gold, SDR, test codes: exponent "N.A.") are not
accepted for invoicing: an amount in them has no defined precision.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import iso4217

from settle.errors import ErrorCode, ValidationError
from settle.grammar import decimal_parts

EXPONENTS: Final[dict[str, int]] = {
    c.code: c.exponent for c in iso4217.Currency if c.exponent is not None
}

# The largest amount we store, in minor units: fits a signed 64-bit column with ample headroom
# for sums of many invoices.
MAX_MINOR: Final = 10**15 - 1


def currency_exponent(currency: str, *, field: str = "currency") -> int:
    """The ISO 4217 exponent of ``currency`` (upper-case code), or a ValidationError."""
    exponent = EXPONENTS.get(currency)
    if exponent is None:
        raise ValidationError(
            f"{field}: {currency!r} is not a supported ISO 4217 currency code.",
            code=ErrorCode.INVALID_CURRENCY,
            field=field,
        )
    return exponent


def currency_code(value: str, *, field: str = "currency") -> str:
    """A currency as clients may send it ("eur") -> its ISO 4217 code ("EUR"), checked: the
    one place a currency is normalised. ASCII letters only are folded: str.upper() also
    makes "S" of "\u017f" (long s) and "I" of "\u0131" (dotless i), which took "u\u017fd"
    for USD."""
    code = value.upper() if value.isascii() else value
    currency_exponent(code, field=field)
    return code


def parse_amount(text: str, currency: str, *, field: str = "amount") -> int:
    """Parse a non-negative decimal string into minor units of ``currency``, exactly.

    More decimals than the currency's exponent is an error, not a rounding: "100.5" JPY is
    invalid, "1.005" KWD is 1005 fils. Trailing zeros beyond the exponent are tolerated only if
    they are zeros ("4.990" EUR is 499 cents). The text must be exactly in the wire grammar
    (``settle.grammar``): no surrounding spaces, sign, exponent or non-ASCII digits.
    """
    exponent: int = currency_exponent(currency)
    parts = decimal_parts(text)
    if parts is None:
        raise ValidationError(
            f"{field}: {text!r} is not a valid amount; use a non-negative decimal string "
            'such as "4.99".',
            code=ErrorCode.INVALID_AMOUNT,
            field=field,
        )
    whole, frac = parts[0], parts[1].rstrip("0")
    if len(frac) > exponent:
        raise ValidationError(
            f"{field}: {text!r} has more decimals than {currency} allows ({exponent}).",
            code=ErrorCode.INVALID_AMOUNT,
            field=field,
        )
    minor: int = int(whole) * 10**exponent + (int(frac.ljust(exponent, "0")) if exponent else 0)
    if minor > MAX_MINOR:
        raise ValidationError(
            f"{field}: {text!r} is too large.",
            code=ErrorCode.INVALID_AMOUNT,
            field=field,
        )
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Render minor units as the shortest exact decimal string ("29", "4.99", "1.005")."""
    exponent = EXPONENTS[currency]
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    frac_text = str(frac).rjust(exponent, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def minor_to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-EXPONENTS[currency])


def round_minor(value: Decimal) -> int:
    """Round an exact intermediate (e.g. a VAT share) to whole minor units, banker's rounding.

    The one place money is rounded; callers pass an exact Decimal, never a float.
    """
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
