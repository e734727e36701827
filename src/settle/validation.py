"""Field checks shared by every dialect. Each raises ValidationError naming the field."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

import pycountry

from settle.errors import ValidationError

COUNTRY_CODES: Final[frozenset[str]] = frozenset(c.alpha_2 for c in pycountry.countries)
# Pragmatic address check (RFC 5322 is far wider, but no payment provider accepts all of it).
_EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def invalid(field: str, message: str, code: str = "request.validation.error") -> ValidationError:
    return ValidationError(f"{field}: {message}", code=code, field=field)


def country_code(value: str, field: str) -> str:
    code = value.upper()
    if code not in COUNTRY_CODES:
        raise invalid(
            field,
            f"{value!r} is not an ISO 3166-1 alpha-2 country code.",
            "request.validation.invalid-country",
        )
    return code


def url(value: str, field: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and len(value) <= 2048
        _ = parts.port  # raises on a malformed port
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise invalid(
            field, f"{value!r} is not a valid http(s) URL.", "request.validation.invalid-url"
        )
    return value


def ip_address(value: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid(
            field, f"{value!r} is not a valid IP address.", "request.validation.invalid-ip"
        ) from None


def email(value: str, field: str) -> str:
    if len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        raise invalid(
            field, f"{value!r} is not a valid email address.", "request.validation.invalid-email"
        )
    return value
