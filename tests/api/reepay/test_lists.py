"""GET /v1/list/invoice and /v1/list/customer: newest first, pages that stay put while new
objects arrive, filters, and the vendor's answer shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.reepay.support import assert_error, new_customer, new_invoice, reepay

__all__ = ["reepay"]


def walk(reepay: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list; checks each page's own bookkeeping."""
    pages = []
    token = None
    while True:
        query = {**params, **({"next_page_token": token} if token else {})}
        response = reepay.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["count"] == len(page["content"])
        pages.append(page)
        token = page.get("next_page_token")
        if token is None:
            return pages
        assert page["count"] == page["size"]


def handles(pages: list[dict[str, Any]]) -> list[str]:
    for page in pages:
        assert "content" in page, page
    return [item["handle"] for page in pages for item in page["content"]]


def test_an_empty_list(reepay: httpx.Client) -> None:
    for path in ("/list/invoice", "/list/customer"):
        page = reepay.get(path).json()
        assert page["size"] == 20 and page["count"] == 0 and page["content"] == []
        assert page["range"] == "created"
        assert "next_page_token" not in page


def test_pages_are_newest_first_and_stable_while_invoices_arrive(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    for i in range(25):
        new_invoice(reepay, "c", f"inv-{i:02d}")
    first = reepay.get("/list/invoice", params={"size": 10}).json()
    assert handles([first]) == [f"inv-{i:02d}" for i in range(24, 14, -1)]
    token = first["next_page_token"]
    for i in range(25, 28):  # newer than the first page: never in the pages after it
        new_invoice(reepay, "c", f"inv-{i:02d}")
    rest = walk(reepay, "/list/invoice", size=10, next_page_token=token)
    assert [page["count"] for page in rest] == [10, 5]
    assert handles(rest) == [f"inv-{i:02d}" for i in range(14, -1, -1)]
    everything = walk(reepay, "/list/invoice", size=100)
    assert handles(everything) == [f"inv-{i:02d}" for i in range(27, -1, -1)]
    assert len(walk(reepay, "/list/invoice")) == 2  # default size 20


def test_invoices_of_both_dialects_are_listed(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c")
    ours = new_invoice(reepay, "c", "ours")
    customer_id = client.post("/customers", json={}).json()["customer"]["id"]
    theirs = client.post(
        "/invoices", json={"amount": "3.00", "currency": "EUR", "customer_id": customer_id}
    ).json()
    content = reepay.get("/list/invoice").json()["content"]
    assert [iv["id"] for iv in content] == [theirs["invoice"]["id"], ours["id"]]


@pytest.mark.parametrize("size", ["9", "101", "0", "-1", "abc", "10.0", "1e1", "\uff10\uff11", ""])
def test_sizes_outside_10_to_100_are_422(reepay: httpx.Client, size: str) -> None:
    for path in ("/list/invoice", "/list/customer"):
        body = assert_error(reepay.get(path, params={"size": size}), 422, 1)
        assert body["message"].startswith("size"), body


@pytest.mark.parametrize("token", ["nope", "iv_" + "0" * 32, "cust_" + "0" * 32, "x" * 1000])
def test_unknown_page_tokens_are_422(reepay: httpx.Client, token: str) -> None:
    for path in ("/list/invoice", "/list/customer"):
        body = assert_error(reepay.get(path, params={"next_page_token": token}), 422, 1)
        assert body["message"].startswith("next_page_token"), body


def test_a_token_of_the_other_list_is_refused(reepay: httpx.Client) -> None:
    for i in range(11):
        new_customer(reepay, f"c{i}")
    token = reepay.get("/list/customer", params={"size": 10}).json()["next_page_token"]
    assert_error(reepay.get("/list/invoice", params={"next_page_token": token}), 422, 1)
    assert reepay.get("/list/customer", params={"next_page_token": token}).json()["count"] == 1


def test_invoice_filters(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "alice")
    new_customer(reepay, "bob")
    new_invoice(reepay, "alice", "a-1", currency="EUR")
    new_invoice(reepay, "alice", "a-2", currency="DKK")
    new_invoice(reepay, "bob", "b-1", currency="SEK")
    paid = new_invoice(reepay, "bob", "b-2", currency="EUR")
    card = client.post(
        "/cards",
        json={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc2": "123"},
    ).json()["card"]["id"]
    assert client.post(f"/invoices/{paid['id']}/capture", json={"source": card}).status_code == 200

    def listed(**params: Any) -> list[str]:
        return handles(walk(reepay, "/list/invoice", **params))

    assert listed(handle="a-2") == ["a-2"]
    assert listed(handle_prefix="a-") == ["a-2", "a-1"]
    assert listed(handle_prefix="b") == ["b-2", "b-1"]
    assert listed(handle_prefix="zz") == []
    assert listed(customer="alice") == ["a-2", "a-1"]
    assert listed(customer="nobody") == []
    assert listed(state="settled") == ["b-2"]
    assert listed(state=["pending", "settled"]) == ["b-2", "b-1", "a-2", "a-1"]
    assert listed(state="pending,dunning") == ["b-1", "a-2", "a-1"]
    assert listed(state="dunning") == []
    assert listed(exclude_state="pending") == ["b-2"]
    assert listed(currency="EUR") == ["b-2", "a-1"]
    assert listed(currency=["eur", "SEK"]) == ["b-2", "b-1", "a-1"]
    assert listed(currency="EUR", customer="bob", state="pending") == []
    assert listed(type="co") == ["b-2", "b-1", "a-2", "a-1"]
    assert listed(type="s") == []
    assert listed(subscription="sub-1") == []
    page = reepay.get("/list/invoice", params={"handle_prefix": "a-", "size": 10}).json()
    assert page["count"] == 2 and "next_page_token" not in page


def test_filters_hold_across_pages(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    for i in range(12):
        new_invoice(reepay, "c", f"{'x' if i % 2 else 'y'}-{i:02d}", currency="EUR")
    pages = walk(reepay, "/list/invoice", size=10, handle_prefix="x-")
    assert handles(pages) == [f"x-{i:02d}" for i in range(11, 0, -2)]
    new_invoice(reepay, "c", "y-99")
    first = reepay.get("/list/invoice", params={"size": 11}).json()
    assert first["content"][-1]["handle"] == "y-02"
    token = first["next_page_token"]
    # A token keeps its place only under the filters it was given with.
    assert_error(
        reepay.get("/list/invoice", params={"next_page_token": token, "handle_prefix": "x-"}),
        422,
        1,
    )


def test_from_and_to(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    created = new_invoice(reepay, "c", "when")["created"]
    day = created[:10]
    for params in (
        {"from": day},
        {"from": f"{day}T00:00"},
        {"from": f"{day}T00:00:00.000"},
        {"to": "9999-12-31"},
        {"from": created, "to": "9999-12-31T00:00:00Z"},
        {"from": "2000-01-01", "to": "9000-01-01T00:00+02:00"},
    ):
        page = reepay.get("/list/invoice", params=params).json()
        assert handles([page]) == ["when"], params
        assert page["from"] and page["to"]
    for params in ({"to": day}, {"from": "9000-01-01"}, {"to": created}):
        assert reepay.get("/list/invoice", params=params).json()["content"] == [], params
    body = assert_error(
        reepay.get("/list/invoice", params={"from": "2024-02-01", "to": "2024-01-01"}), 400, 23
    )
    assert body["error"] == "From date after to date"
    for bad in ("2024-02-30", "yesterday", "2024-1-1", "2024-01-01T25:00", "2024-01-01 10:00"):
        assert_error(reepay.get("/list/customer", params={"from": bad}), 422, 1)


def test_ranges_and_unsupported_filters(reepay: httpx.Client) -> None:
    assert reepay.get("/list/invoice", params={"range": "created"}).status_code == 200
    assert_error(reepay.get("/list/invoice", params={"range": "settled"}), 501, 43)
    assert_error(reepay.get("/list/invoice", params={"range": "bogus"}), 422, 1)
    assert_error(reepay.get("/list/invoice", params={"range": ""}), 422, 1)
    assert_error(reepay.get("/list/customer", params={"range": "settled"}), 422, 1)
    assert_error(reepay.get("/list/invoice", params={"state": "paid"}), 422, 1)
    for name in ("amount", "interval", "handle_contains", "number"):
        body = assert_error(reepay.get("/list/invoice", params={name: "1"}), 501, 43)
        assert body["message"].startswith(name)
    assert_error(reepay.get("/list/customer", params={"name": "Jane"}), 501, 43)
    assert_error(reepay.get("/list/customer", params={"email": "a\x00b"}), 422, 1)
    assert_error(reepay.get("/list/customer", params={"email": "x" * 256}), 422, 1)


def test_customer_list_and_filters(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "jane", email="jane@example.com", country="DK", vat="DK1")
    new_customer(reepay, "john", email="john@example.org", country="SE", company="Doe AB")
    new_customer(reepay, "gone")
    reepay.delete("/customer/gone")
    po = client.post("/customers", json={"email": "po@example.com"}).json()["customer"]["id"]

    def listed(**params: Any) -> list[str]:
        return handles(walk(reepay, "/list/customer", **params))

    assert listed() == [po, "john", "jane"]
    assert listed(email="jane@example.com") == ["jane"]
    assert listed(email_prefix="jo") == ["john"]
    assert listed(country="dk") == ["jane"]
    assert listed(vat="DK1") == ["jane"]
    assert listed(company="Doe AB") == ["john"]
    assert listed(handle="jane") == ["jane"]
    assert listed(handle_prefix="j") == ["john", "jane"]
    assert listed(handle_prefix="gone") == []
    new_invoice(reepay, "jane", "jane-1")
    (jane,) = reepay.get("/list/customer", params={"handle": "jane"}).json()["content"]
    assert jane["pending_invoices"] == 1 and jane["pending_amount"] == 10000
