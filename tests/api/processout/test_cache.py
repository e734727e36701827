from __future__ import annotations

import pytest

from settle.api.processout.cache import RenderCache


def test_least_recently_used_entries_go_first() -> None:
    cache = RenderCache(2)
    cache.put(("a", 1), b"A")
    cache.put(("b", 1), b"B")
    assert cache.get(("a", 1)) == b"A"  # now the most recent
    cache.put(("c", 1), b"C")
    assert cache.get(("b", 1)) is None
    assert cache.get(("a", 1)) == b"A"
    assert cache.get(("c", 1)) == b"C"
    assert len(cache) == 2


def test_a_new_version_is_a_new_entry() -> None:
    cache = RenderCache(10)
    cache.put(("a", 1), b"old")
    assert cache.get(("a", 2)) is None


def test_zero_entries_keeps_nothing() -> None:
    cache = RenderCache(0)
    cache.put(("a", 1), b"A")
    assert cache.get(("a", 1)) is None
    assert len(cache) == 0


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        RenderCache(-1)
