"""Opaque prefixed ids: a type prefix and 32 random alphanumerics, generated in Python."""

from __future__ import annotations

import os
import string
from typing import Final

_ALPHABET: Final = (string.ascii_letters + string.digits).encode()
ID_LENGTH: Final = 32

# Map each random byte onto the 62-letter alphabet without bias: bytes >= 248 (= 4 * 62) are
# dropped (rejection sampling), the rest taken modulo 62. ``bytes.translate`` does it in C,
# about 30 times faster than ``secrets.choice`` per character.
_LIMIT: Final = 4 * len(_ALPHABET)
_TABLE: Final = bytes(_ALPHABET[b % len(_ALPHABET)] if b < _LIMIT else 0 for b in range(256))
_REJECT: Final = bytes(range(_LIMIT, 256))


def random_token(length: int = ID_LENGTH) -> str:
    """``length`` characters from a CSPRNG (os.urandom), uniform over [A-Za-z0-9]."""
    out = b""
    while len(out) < length:
        out += os.urandom(length + 16).translate(_TABLE, _REJECT)
    return out[:length].decode()


def could_exist(object_id: str) -> bool:
    """False for an id no stored object can have: one with a NUL character (PostgreSQL text
    cannot hold it, so sending it would fail). Look-ups answer "not found" without a query,
    the same on every database."""
    return "\x00" not in object_id


def new_id(prefix: str) -> str:
    """``new_id("iv_")`` -> ``"iv_0kJ1i4d06uViosJjCKpUHzKeauffMom4"``."""
    return prefix + random_token()
