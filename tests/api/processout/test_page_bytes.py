"""A list page is bounded in bytes as well as in items, and cut where the next page resumes."""

from __future__ import annotations

import httpx
import pytest

from settle.api.processout import invoices
from settle.api.processout.invoices import bounded_page


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invoices, "MAX_PAGE_BYTES", 10)


def parts(*sizes: int) -> list[bytes]:
    return [bytes([65 + i]) * size for i, size in enumerate(sizes)]


@pytest.mark.usefixtures("small_pages")
def test_a_page_within_the_bound_is_whole() -> None:
    page = parts(3, 3, 4)
    assert bounded_page(page, False, forward=True) == (page, False)
    assert bounded_page(page, True, forward=False) == (page, True)


@pytest.mark.usefixtures("small_pages")
def test_walking_forward_the_tail_is_cut_and_more_is_said() -> None:
    page = parts(4, 4, 4, 4)
    assert bounded_page(page, False, forward=True) == (page[:2], True)


@pytest.mark.usefixtures("small_pages")
def test_walking_back_the_head_is_cut_so_end_before_resumes_there() -> None:
    page = parts(4, 4, 4, 4)
    assert bounded_page(page, False, forward=False) == (page[2:], True)


@pytest.mark.usefixtures("small_pages")
def test_one_item_larger_than_the_bound_still_comes_alone() -> None:
    page = parts(50, 1)
    assert bounded_page(page, False, forward=True) == (page[:1], True)
    assert bounded_page(page, False, forward=False) == (page[1:], True)


def test_pages_cut_by_bytes_walk_every_invoice_once(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP, with the bound at about two invoices: forward with start_after and back
    with end_before, every invoice comes exactly once, in order (the render cache cold and
    warm: the second walk splices cached renderings)."""
    ids = [
        client.post("/invoices", json={"name": f"n{i}", "amount": "1", "currency": "EUR"}).json()[
            "invoice"
        ]["id"]
        for i in range(7)
    ][::-1]
    one = len(client.get(f"/invoices/{ids[0]}").content)
    monkeypatch.setattr(invoices, "MAX_PAGE_BYTES", int(one * 2.5))
    for _ in range(2):
        seen: list[str] = []
        params: dict[str, str] = {"limit": "100"}
        while True:
            page = client.get("/invoices", params=params).json()
            got = [iv["id"] for iv in page["invoices"]]
            assert 1 <= len(got) <= 2, got
            seen += got
            if not page["has_more"]:
                break
            params = {"limit": "100", "start_after": got[-1]}
        assert seen == ids
        back: list[str] = []
        params = {"limit": "100", "end_before": ids[-1]}
        while True:
            page = client.get("/invoices", params=params).json()
            got = [iv["id"] for iv in page["invoices"]]
            back = got + back
            if not page["has_more"]:
                break
            params = {"limit": "100", "end_before": got[0]}
        assert back == ids[:-1]
