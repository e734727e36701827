"""Rendered invoice JSON, kept per worker and keyed by (invoice id, version).

Rendering an invoice (60-odd fields, its lines, decimal strings) costs more than reading it;
a list page renders ten. An invoice's ``version`` is bumped, under a row lock, by every change
to it or its lines, so (id, version) names one exact rendering: an entry can never be stale,
only unused, and the LRU bound drops those. Nothing here is shared between processes.
"""

from __future__ import annotations

from collections import OrderedDict


class RenderCache:
    """At most ``max_entries`` renderings (about 2 KiB each); 0 keeps none."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._data: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int]) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, int], value: bytes) -> None:
        if not self._max:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._max:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
