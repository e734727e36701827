from __future__ import annotations

import random

import pytest

from settle.api.processout.cache import ENTRY_OVERHEAD, OVERSIZE_FRACTION, RenderCache

BIG = 1 << 30  # a bound that never binds


def cost(value: bytes) -> int:
    return len(value) + ENTRY_OVERHEAD


def test_least_recently_used_entries_go_first() -> None:
    cache = RenderCache(2, max_bytes=BIG)
    cache.put(("a", 1), b"A")
    cache.put(("b", 1), b"B")
    assert cache.get(("a", 1)) == b"A"  # now the most recent
    cache.put(("c", 1), b"C")
    assert cache.get(("b", 1)) is None
    assert cache.get(("a", 1)) == b"A"
    assert cache.get(("c", 1)) == b"C"
    assert len(cache) == 2


def test_a_new_version_is_a_new_entry() -> None:
    cache = RenderCache(10, max_bytes=BIG)
    cache.put(("a", 1), b"old")
    assert cache.get(("a", 2)) is None


def test_zero_entries_keeps_nothing() -> None:
    cache = RenderCache(0, max_bytes=BIG)
    cache.put(("a", 1), b"A")
    assert cache.get(("a", 1)) is None
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        RenderCache(-1, max_bytes=BIG)
    with pytest.raises(ValueError):
        RenderCache(10, max_bytes=-1)


# --- the byte bound --------------------------------------------------------------------


def test_bytes_are_counted_with_the_per_entry_overhead() -> None:
    cache = RenderCache(10, max_bytes=BIG)
    assert cache.nbytes == 0
    cache.put(("a", 1), b"x" * 100)
    cache.put(("b", 1), b"y" * 50)
    assert cache.nbytes == 150 + 2 * ENTRY_OVERHEAD


def test_least_recently_used_entries_go_first_when_bytes_run_out() -> None:
    value = b"v" * (1000 - ENTRY_OVERHEAD)  # costs 1000
    # Room for 16 such entries (the most an entry may cost is a 16th of the budget).
    cache = RenderCache(1000, max_bytes=16 * 1000 + 500)
    for i in range(16):
        cache.put((f"k{i}", 1), value)
    assert (len(cache), cache.nbytes) == (16, 16_000)
    assert cache.get(("k0", 1)) == value  # k0 is now the most recent; k1 the least
    cache.put(("k16", 1), value)
    assert cache.get(("k1", 1)) is None
    assert all(cache.get((f"k{i}", 1)) == value for i in (0, *range(2, 17)))
    assert (len(cache), cache.nbytes) == (16, 16_000)


def test_a_larger_entry_evicts_as_many_of_the_oldest_as_it_needs() -> None:
    small = b"s" * (400 - ENTRY_OVERHEAD)  # costs 400
    cache = RenderCache(1000, max_bytes=16_500)
    for i in range(41):
        cache.put((f"s{i}", 1), small)
    assert cache.nbytes == 16_400
    large = b"L" * (16_500 // OVERSIZE_FRACTION - ENTRY_OVERHEAD)  # the most an entry may cost
    cache.put(("large", 1), large)
    assert [cache.get((f"s{i}", 1)) is None for i in range(4)] == [True, True, True, False]
    assert cache.get(("large", 1)) == large
    assert cache.nbytes == 38 * 400 + cost(large) <= 16_500


def test_an_oversize_entry_is_not_cached() -> None:
    max_bytes = 64 * 1024
    cache = RenderCache(100, max_bytes=max_bytes)
    cache.put(("small", 1), b"s")
    limit = max_bytes // OVERSIZE_FRACTION - ENTRY_OVERHEAD
    cache.put(("fits", 1), b"f" * limit)
    assert cache.get(("fits", 1)) is not None
    cache.put(("big", 1), b"b" * (limit + 1))
    assert cache.get(("big", 1)) is None
    # ... and it evicted nothing to make room.
    assert cache.get(("small", 1)) == b"s"
    assert len(cache) == 2
    assert cache.nbytes == cost(b"s") + cost(b"f" * limit)


def test_an_oversize_overwrite_drops_the_old_value() -> None:
    cache = RenderCache(100, max_bytes=64 * 1024)
    cache.put(("a", 1), b"old")
    cache.put(("a", 1), b"x" * (64 * 1024))
    assert cache.get(("a", 1)) is None
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_both_bounds_hold_whichever_binds() -> None:
    small, large = b"s" * 10, b"L" * 3000
    # Small entries: the count binds.
    cache = RenderCache(5, max_bytes=16 * cost(large))
    for i in range(20):
        cache.put((f"s{i}", 1), small)
    assert len(cache) == 5
    assert cache.nbytes == 5 * cost(small)
    assert all(cache.get((f"s{i}", 1)) == small for i in range(15, 20))
    # Large entries: the bytes bind (16 fit, a 17th would not).
    cache = RenderCache(100, max_bytes=16 * cost(large) + 10)
    for i in range(50):
        cache.put((f"L{i}", 1), large)
        assert cache.nbytes <= 16 * cost(large) + 10
    assert len(cache) == 16
    assert all(cache.get((f"L{i}", 1)) == large for i in range(34, 50))
    # Many writes of mixed sizes, overwrites included: both bounds hold after every put, and
    # nbytes stays exactly the sum of what is held.
    cache = RenderCache(30, max_bytes=16 * 700)
    most_entries = most_bytes = 0
    rng = random.Random(7)
    for i in range(600):
        # Phases of small renderings (the count binds) and of large ones (the bytes bind).
        value = b"m" * (rng.randrange(0, 10) if i // 100 % 2 else rng.randrange(200, 300))
        cache.put((f"m{i % 13}", i % 3), value)
        assert len(cache) <= 30
        assert cache.nbytes <= 16 * 700
        most_entries, most_bytes = max(most_entries, len(cache)), max(most_bytes, cache.nbytes)
        held = [cache.get((f"m{k}", v)) for k in range(13) for v in range(3)]
        assert cache.nbytes == sum(cost(h) for h in held if h is not None)
    # Both were reached (the largest entry costs 619: within that of the byte budget).
    assert most_entries == 30
    assert most_bytes > 16 * 700 - 619


def test_zero_bytes_keeps_nothing() -> None:
    cache = RenderCache(100, max_bytes=0)
    cache.put(("a", 1), b"A")
    assert cache.get(("a", 1)) is None
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_a_budget_smaller_than_one_entry_keeps_nothing() -> None:
    cache = RenderCache(100, max_bytes=ENTRY_OVERHEAD)
    cache.put(("a", 1), b"")
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_overwriting_a_key_keeps_nbytes_exact() -> None:
    cache = RenderCache(10, max_bytes=BIG)
    cache.put(("a", 1), b"x" * 100)
    cache.put(("b", 1), b"y" * 10)
    cache.put(("a", 1), b"z" * 40)
    assert len(cache) == 2
    assert cache.nbytes == 40 + 10 + 2 * ENTRY_OVERHEAD
    cache.put(("a", 1), b"z" * 40)  # the same value again
    assert cache.nbytes == 40 + 10 + 2 * ENTRY_OVERHEAD
    assert cache.get(("a", 1)) == b"z" * 40


def test_an_overwritten_key_becomes_the_most_recent() -> None:
    value = b"x" * 100
    cache = RenderCache(100, max_bytes=16 * cost(value) + 50)
    cache.put(("a", 1), value)
    for i in range(15):
        cache.put((f"b{i}", 1), value)
    cache.put(("a", 1), value)  # now the most recent: b0 is the least
    cache.put(("c", 1), b"c" * 10)
    assert cache.get(("b0", 1)) is None
    assert cache.get(("a", 1)) == value
    assert cache.nbytes == 16 * cost(value) - cost(value) + cost(b"c" * 10)
