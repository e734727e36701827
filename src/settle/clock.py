"""Time as integer microseconds since the Unix epoch, UTC: exact, sortable, portable.

Stored as BIGINT on every database; rendered as RFC 3339 UTC at the edge.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def from_datetime(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def rfc3339(us: int) -> str:
    """``1682327833370001`` -> ``"2023-04-24T09:17:13.370001Z"``. (Not strftime: its ``%Y``
    does not pad years before 1000 to four digits, which RFC 3339 requires.)"""
    return to_datetime(us).isoformat(timespec="microseconds").replace("+00:00", "Z")


# The instants ``to_datetime`` (and so every renderer) can represent: years 1 to 9999, UTC.
MIN_US: Final = from_datetime(datetime.min.replace(tzinfo=UTC))
MAX_US: Final = from_datetime(datetime.max.replace(tzinfo=UTC))
