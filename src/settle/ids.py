"""Opaque prefixed ids: a type prefix and 32 alphanumerics, generated in Python.

Object ids lead with the creation time (8 characters, base 62, milliseconds) followed by 24
random characters (143 bits). Fully random ids scatter every insert across the id indexes:
past a million rows each insert dirtied a random leaf page, and PostgreSQL wrote a full page
image of it to the WAL after each checkpoint (create throughput fell by a third). Time-led ids
append at the right edge of the index instead, like ULIDs. Secrets are never made this way:
``random_token`` stays uniformly random.
"""

from __future__ import annotations

import os
import string
import threading
import time
from functools import lru_cache
from typing import Final

_ALPHABET: Final = (string.ascii_letters + string.digits).encode()
ID_LENGTH: Final = 32

# Map each random byte onto the 62-letter alphabet without bias: bytes >= 248 (= 4 * 62) are
# dropped (rejection sampling), the rest taken modulo 62. ``bytes.translate`` does it in C,
# about 30 times faster than ``secrets.choice`` per character.
_LIMIT: Final = 4 * len(_ALPHABET)
_TABLE: Final = bytes(_ALPHABET[b % len(_ALPHABET)] if b < _LIMIT else 0 for b in range(256))
_REJECT: Final = bytes(range(_LIMIT, 256))


# Random characters drawn ahead, in blocks: one os.urandom call per id cost a system call of
# ~1.4 us of the 3.7 us an id took (measured with timeit; a payment step makes about eight
# ids). Each character is handed out once; a forked child starts with none of its parent's.
_BLOCK: Final = 4096
_drawn = b""
_taken = 0
_drawing = threading.Lock()


def _forget_drawn() -> None:
    global _drawn, _taken
    _drawn, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_drawn)


def random_token(length: int = ID_LENGTH) -> str:
    """``length`` characters from a CSPRNG (os.urandom), uniform over [A-Za-z0-9]."""
    global _drawn, _taken
    with _drawing:
        while len(_drawn) - _taken < length:
            _drawn = _drawn[_taken:] + os.urandom(_BLOCK).translate(_TABLE, _REJECT)
            _taken = 0
        out = _drawn[_taken : _taken + length]
        _taken += length
    return out.decode()


def could_exist(object_id: str) -> bool:
    """False for an id no stored object can have: one with a NUL character (PostgreSQL text
    cannot hold it, so sending it would fail). Look-ups answer "not found" without a query,
    the same on every database."""
    return "\x00" not in object_id


# In ASCII order, so that ids sort as their timestamps do.
_SORTED_DIGITS: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
TIME_CHARS: Final = 8  # 62**8 ms: until the year 8888


@lru_cache(maxsize=4)  # the ids of one request are mostly made within one millisecond
def _time_prefix(ms: int) -> str:
    chars = []
    for _ in range(TIME_CHARS):
        ms, digit = divmod(ms, 62)
        chars.append(_SORTED_DIGITS[digit])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``new_id("iv_")`` -> ``"iv_0kJ1i4d06uViosJjCKpUHzKeauffMom4"``: time-led, see above."""
    return prefix + _time_prefix(time.time_ns() // 1_000_000) + random_token(ID_LENGTH - TIME_CHARS)
