"""A list page is bounded in bytes as well as in items, and cut where the next page resumes."""

from __future__ import annotations

import pytest

from settle.api.processout import invoices
from settle.api.processout.invoices import bounded_page


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invoices, "MAX_PAGE_BYTES", 10)


def parts(*sizes: int) -> list[bytes]:
    return [bytes([65 + i]) * size for i, size in enumerate(sizes)]


def test_a_page_within_the_bound_is_whole() -> None:
    page = parts(3, 3, 4)
    assert bounded_page(page, False, forward=True) == (page, False)
    assert bounded_page(page, True, forward=False) == (page, True)


def test_walking_forward_the_tail_is_cut_and_more_is_said() -> None:
    page = parts(4, 4, 4, 4)
    assert bounded_page(page, False, forward=True) == (page[:2], True)


def test_walking_back_the_head_is_cut_so_end_before_resumes_there() -> None:
    page = parts(4, 4, 4, 4)
    assert bounded_page(page, False, forward=False) == (page[2:], True)


def test_one_item_larger_than_the_bound_still_comes_alone() -> None:
    page = parts(50, 1)
    assert bounded_page(page, False, forward=True) == (page[:1], True)
    assert bounded_page(page, False, forward=False) == (page[1:], True)
