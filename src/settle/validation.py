"""Field checks shared by every dialect. Each raises ValidationError naming the field
(``invalid``, from the error tree, builds one)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import pycountry

from settle import grammar
from settle.errors import ErrorCode, invalid

COUNTRY_CODES: Final[frozenset[str]] = frozenset(c.alpha_2 for c in pycountry.countries)
# Pragmatic address check (RFC 5322 is far wider, but no payment provider accepts all of it).
_EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def country_code(value: str, field: str) -> str:
    code = value.upper() if value.isascii() else value  # as settle.money.currency_code
    if code not in COUNTRY_CODES:
        raise invalid(
            field,
            f"{value!r} is not an ISO 3166-1 alpha-2 country code.",
            ErrorCode.INVALID_COUNTRY,
        )
    return code


def url(value: str, field: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and len(value) <= 2048
        # A malformed port raises; port 0 and a host name with no IDNA form (an empty or
        # overlong label, characters IDNA refuses) are well-formed but never reachable: as
        # a webhook URL each failed only at delivery, retried for days.
        valid = valid and parts.port != 0
        if valid and parts.hostname is not None:
            parts.hostname.encode("idna")
    except (ValueError, UnicodeError):
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise invalid(field, f"{value!r} is not a valid http(s) URL.", ErrorCode.INVALID_URL)
    return value


def ip_address(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid(
            field, f"{value!r} is not a valid IP address.", ErrorCode.INVALID_IP
        ) from None


def email(value: str, field: str) -> str:
    if len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        raise invalid(field, f"{value!r} is not a valid email address.", ErrorCode.INVALID_EMAIL)
    return value


def date_of_birth(value: str | None, field: str) -> str | None:
    """A real calendar date, ``YYYY-MM-DD`` (``settle.grammar``), not in the future. The future
    starts after today's date in the earliest time zone (UTC+14): whoever was born today,
    anywhere, is accepted. Stored as given (the grammar admits one spelling per date)."""
    if value is None:
        return None
    born = grammar.parse_date(value, field=field)
    if born > (datetime.now(UTC) + timedelta(hours=14)).date():
        raise invalid(field, f"{value!r} is in the future.", grammar.INVALID_DATE)
    return value
