"""The wire grammar: what a number, a boolean, a date and a time look like in a request.

One strict ASCII grammar for every encoding (JSON strings, form values) and every dialect.
Python's ``int()``, ``Decimal()`` and ``datetime.fromisoformat``, and msgspec's lax conversion,
accept far more than a payments API should ("1_0", "\u0665" (Arabic-Indic five), " 5 ",
"+5", "5\\n", "1e3"): a value that is not exactly in the grammar below is refused, never
repaired, so what a client sent and what we stored cannot differ.

- Non-negative decimal (amounts, rates): ``0|[1-9][0-9]*`` with an optional ``.[0-9]+``.
  No sign, spaces, exponent, underscores, thousands separators, leading zeros ("01"), lone
  dot (".5", "1.") or non-ASCII digits. At most ``MAX_DECIMAL_CHARS`` characters.
- Integer (form values; JSON integers are JSON numbers, checked by msgspec in strict mode):
  ``0|[1-9][0-9]*``, with a leading ``-`` only where the field allows negatives ("-0" is not
  canonical: refused). "1.0", "1e3", "01", "+1" are refused: a quantity is written one way.
  At most ``MAX_INTEGER_DIGITS`` digits.
- Boolean (form values; JSON booleans are JSON ``true``/``false``): ``true``/``false`` in any
  ASCII letter case (Python's ``requests`` sends ``True``), or ``1``/``0`` (PHP's
  ``http_build_query`` sends those). Nothing else ("yes", "on", "", " true").
- Timestamp: RFC 3339 ``date-time``: ``YYYY-MM-DDTHH:MM:SS[.fraction]`` then ``Z`` or
  ``+HH:MM``/``-HH:MM``; ``t`` and ``z`` may be lower case (RFC 3339 section 5.6). The
  fraction may have any number of digits and is *truncated* to microseconds, never rounded:
  ``12:00:00.9999999Z`` is still in second 00. A leap second (``:60``) is refused: nothing
  downstream can represent it. The date must exist (no February 30th).
- Date: RFC 3339 ``full-date`` ``YYYY-MM-DD``, a real calendar date.

Each parser raises a ``ValidationError`` naming the field; callers choose the field name.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Final

from settle.errors import ErrorCode, ValidationError, invalid

# Longer than any amount we store (10**15 minor units) or any sensible rate, short enough that
# nothing downstream ever works on a huge number.
MAX_DECIMAL_CHARS: Final = 40
# 18 digits: every value fits a signed 64-bit column; far above any quantity.
MAX_INTEGER_DIGITS: Final = 18
# "2030-06-01T12:00:00.123456789+02:00" is 35 characters; leaves room for long fractions.
MAX_TIMESTAMP_CHARS: Final = 64

# Integers, booleans and times that break the grammar get the code a JSON value of the wrong
# type gets from msgspec, so that both encodings answer alike.
INVALID_INTEGER: Final = ErrorCode.VALIDATION
INVALID_BOOLEAN: Final = ErrorCode.VALIDATION
INVALID_TIMESTAMP: Final = ErrorCode.VALIDATION
INVALID_DATE: Final = ErrorCode.INVALID_DATE

# [0-9] is the ASCII range only (unlike \d on str patterns); fullmatch, unlike $, does not
# let a trailing newline through.
_DECIMAL_RE: Final = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_INTEGER_RE: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIMESTAMP_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def decimal_parts(text: str) -> tuple[str, str] | None:
    """``"12.50"`` -> ``("12", "50")``, ``"7"`` -> ``("7", "")``; None outside the grammar."""
    if len(text) > MAX_DECIMAL_CHARS:
        return None
    match = _DECIMAL_RE.fullmatch(text)
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


def parse_decimal(
    text: str, *, field: str, code: ErrorCode, what: str = "a decimal number"
) -> Decimal:
    """A non-negative decimal string as an exact Decimal (built from its digits)."""
    parts = decimal_parts(text)
    if parts is None:
        raise invalid(
            field,
            f"{_shown(text)} is not {what}; use digits with an optional decimal point, "
            'such as "4.99" (no sign, spaces, exponent or leading zeros).',
            code,
        )
    whole, frac = parts
    return Decimal(f"{whole}.{frac}" if frac else whole)


def plain(value: Decimal) -> str:
    """A finite Decimal as the shortest plain string of exactly its value: "7.50" -> "7.5",
    "10.0" -> "10", 0 (of any exponent) -> "0". Not ``format(value.normalize(), "f")``:
    normalize() rounds to the context's 28 digits ("99.999...9" of 37 digits became "100")."""
    if not value:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_integer(text: str, *, field: str, signed: bool = False) -> int:
    """A whole number written canonically: "7", "0", "-3" (when ``signed``)."""
    digits = text[1:] if text.startswith("-") else text
    if (
        len(digits) > MAX_INTEGER_DIGITS
        or _INTEGER_RE.fullmatch(text) is None
        or (text.startswith("-") and (not signed or digits == "0"))
    ):
        sign = "an optional '-' then " if signed else ""
        raise invalid(
            field,
            f"{_shown(text)} is not a whole number; use {sign}digits only, without leading "
            'zeros, decimals or exponent, such as "3".',
            INVALID_INTEGER,
        )
    return int(text)


_BOOLEANS: Final = {"true": True, "false": False, "1": True, "0": False}


def parse_boolean(text: str, *, field: str) -> bool:
    value = _BOOLEANS.get(text.lower()) if text.isascii() else None
    if value is None:
        raise invalid(
            field, f"{_shown(text)} is not a boolean; use true or false.", INVALID_BOOLEAN
        )
    return value


def _calendar_date(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def parse_date(text: str, *, field: str) -> date:
    """An RFC 3339 full-date, ``YYYY-MM-DD``, that exists on the calendar."""
    match = _DATE_RE.fullmatch(text)
    found = _calendar_date(*match.groups()) if match else None
    if found is None:
        raise invalid(
            field,
            f'{_shown(text)} is not a calendar date; use YYYY-MM-DD, such as "1990-04-01".',
            INVALID_DATE,
        )
    return found


def parse_timestamp(text: str, *, field: str) -> int:
    """An RFC 3339 date-time as integer microseconds since the Unix epoch, UTC; the fraction
    truncated to microseconds. The result may lie outside years 1-9999 in UTC (a time zone
    can carry "9999-12-31T23:59:59-01:00" into year 10000): callers check the range."""

    def refused(problem: str) -> ValidationError:
        return invalid(
            field,
            f"{_shown(text)} {problem}; use YYYY-MM-DDTHH:MM:SS[.fraction] and a time zone "
            '(Z or +HH:MM), such as "2030-06-01T12:00:00Z".',
            INVALID_TIMESTAMP,
        )

    match = _TIMESTAMP_RE.fullmatch(text) if len(text) <= MAX_TIMESTAMP_CHARS else None
    if match is None:
        raise refused("is not an RFC 3339 date-time")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    day_value = _calendar_date(year, month, day)
    if day_value is None:
        raise refused("is not a real calendar date")
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise refused("is not a valid time of day (leap seconds are not supported)")
    if sign is not None and (int(off_h) > 23 or int(off_m) > 59):
        raise refused("has an invalid time zone offset")
    seconds = (day_value.toordinal() - _EPOCH_ORDINAL) * 86_400
    seconds += int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign == "+" else -offset
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return seconds * 1_000_000 + micros
