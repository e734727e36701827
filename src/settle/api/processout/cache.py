"""Rendered invoice JSON, kept per worker and keyed by (invoice id, version).

Rendering an invoice (60-odd fields, its lines, decimal strings) costs more than reading it;
a list page renders ten. An invoice's ``version`` is bumped, under a row lock, by every change
to it or its lines, so (id, version) names one exact rendering: an entry can never be stale,
only unused, and the LRU bounds drop those. Nothing here is shared between processes.

Two bounds hold after every ``put``: at most ``max_entries`` renderings and at most
``max_bytes`` bytes, counted as each rendering's length plus ``ENTRY_OVERHEAD``. The count
alone let large invoices (a 0.93 MB free-form field each) grow a worker towards
20,000 x 1 MB = 19 GB; the byte bound keeps a worker's cache under ``max_bytes`` whatever it
is fed. A rendering costing more than ``1/OVERSIZE_FRACTION`` of the byte budget is not kept
at all: one hostile invoice must not evict the hot set of a list page, and rendering it again
when it is read is cheap next to sending it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

# Bytes one entry costs besides its rendering: the key tuple (56 bytes), its 35-character id
# string (84), the bytes object's header (33), the dict slot and index and the OrderedDict's
# link node (~100, more just after the table grows). Measured with sys.getsizeof and
# tracemalloc on CPython 3.11: ~280 bytes per entry of a 1-byte rendering; rounded up for
# malloc's headers on renderings over 512 bytes and the table's growth steps.
ENTRY_OVERHEAD: Final = 320
# An entry costing more than max_bytes // OVERSIZE_FRACTION is not cached (4 MiB of 64 MiB).
OVERSIZE_FRACTION: Final = 16


class RenderCache:
    """At most ``max_entries`` renderings and ``max_bytes`` bytes; either 0 keeps none.

    ``get`` and ``put`` are O(1) (amortised: a ``put`` may evict several entries, but each
    entry is evicted at most once after being put).
    """

    def __init__(self, max_entries: int, *, max_bytes: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._max = max_entries
        self._max_bytes = max_bytes
        self._max_entry_bytes = max_bytes // OVERSIZE_FRACTION
        self._nbytes = 0
        self._data: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    @property
    def nbytes(self) -> int:
        """The bytes held, as counted against ``max_bytes`` (renderings + overheads)."""
        return self._nbytes

    def get(self, key: tuple[str, int]) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, int], value: bytes) -> None:
        if not self._max or not self._max_bytes:
            return
        data = self._data
        old = data.pop(key, None)
        if old is not None:
            self._nbytes -= len(old) + ENTRY_OVERHEAD
        cost = len(value) + ENTRY_OVERHEAD
        if cost > self._max_entry_bytes:
            return  # oversize: rendered again when read
        data[key] = value
        self._nbytes += cost
        while len(data) > self._max or self._nbytes > self._max_bytes:
            _, evicted = data.popitem(last=False)
            self._nbytes -= len(evicted) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._data)
