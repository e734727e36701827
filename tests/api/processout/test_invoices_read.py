"""GET /invoices/{id} and GET /invoices: expansions in their three encodings, cursor pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.processout import invoices_support as s
from tests.conftest import RunningServer

po = s.po
po_empty = s.po_empty
no_server_errors = s.no_server_errors

TOTAL = 25


@pytest.fixture(scope="module")
def walked(server: RunningServer) -> Iterator[tuple[httpx.Client, list[str]]]:
    """A project holding 25 invoices; their ids oldest first."""
    with s.project_client(server) as c:
        ids = [s.create(c, name=f"invoice {i}", amount=str(i + 1))["id"] for i in range(TOTAL)]
        yield c, ids


def page(client: httpx.Client, **params: Any) -> tuple[list[str], bool]:
    body = s.success(client.get("/invoices", params=params))
    assert set(body) == {"success", "invoices", "has_more"}
    return [iv["id"] for iv in body["invoices"]], body["has_more"]


# --- one invoice, expanded -----------------------------------------------------------------


@pytest.fixture(scope="module")
def expandable(po: httpx.Client) -> dict[str, Any]:
    customer = s.create_customer(po, first_name="Ada")
    return s.create(po, customer_id=customer["id"], name="expand me", amount="7.5")


@pytest.mark.parametrize(
    "query",
    [
        "expand=customer&expand=project&expand=transaction&expand=token",
        "expand[]=customer&expand[]=project&expand[]=transaction&expand[]=token",
        "expand=customer,project,transaction,token",
        "expand=customer, project&expand[]=transaction,token",
        "expand%5B%5D=customer&expand%5B%5D=project&expand=transaction%2Ctoken",
    ],
)
def test_find_expands_in_every_encoding(
    po: httpx.Client, expandable: dict[str, Any], query: str
) -> None:
    invoice = s.success(po.get(f"/invoices/{expandable['id']}?{query}"))["invoice"]
    # The expansions come beside the ids, which stay.
    assert {k: invoice[k] for k in expandable} == expandable

    customer = invoice["customer"]
    assert customer["id"] == expandable["customer_id"]
    assert customer["first_name"] == "Ada"
    assert customer["sandbox"] is True

    assert invoice["project"]["id"] == expandable["project_id"]
    assert s.PROJECT_ID_RE.match(invoice["project"]["id"])
    assert s.RFC3339_UTC_RE.match(invoice["project"]["created_at"])

    transaction = invoice["transaction"]
    assert transaction["id"] == expandable["transaction_id"]
    assert transaction["invoice_id"] == expandable["id"]
    assert transaction["status"] == "waiting"
    assert (transaction["amount"], transaction["currency"]) == ("7.5", "EUR")
    assert transaction["captured_amount"] == "0"

    assert invoice["token"] is None  # no token_id


@pytest.mark.parametrize("name", ["customer", "project", "transaction", "token"])
def test_find_expands_only_what_is_asked(
    po: httpx.Client, expandable: dict[str, Any], name: str
) -> None:
    invoice = s.find(po, expandable["id"], expand=name)
    added = set(invoice) - set(expandable)
    assert added == {name}


def test_find_without_expand_has_ids_only(po: httpx.Client, expandable: dict[str, Any]) -> None:
    invoice = s.find(po, expandable["id"])
    assert invoice == expandable
    assert not {"customer", "project", "transaction", "token"} & set(invoice)


def test_expand_customer_of_invoice_without_customer(po: httpx.Client) -> None:
    invoice = s.create(po)
    assert s.find(po, invoice["id"], expand="customer")["customer"] is None


@pytest.mark.parametrize(
    "query", ["expand=subscription", "expand[]=details", "expand=customer,nope"]
)
def test_unknown_expansion_is_400(po: httpx.Client, expandable: dict[str, Any], query: str) -> None:
    s.invalid(po.get(f"/invoices/{expandable['id']}?{query}"), "expand")
    s.invalid(po.get(f"/invoices?{query}"), "expand")


@pytest.mark.parametrize("query", ["", "expand=", "expand[]=", "expand=,"])
def test_empty_expansion_is_no_expansion(
    po: httpx.Client, expandable: dict[str, Any], query: str
) -> None:
    found = s.success(po.get(f"/invoices/{expandable['id']}?{query}"))["invoice"]
    assert found == expandable


# --- lists ---------------------------------------------------------------------------------


def test_list_of_empty_project(po_empty: httpx.Client) -> None:
    assert s.success(po_empty.get("/invoices")) == {
        "success": True,
        "invoices": [],
        "has_more": False,
    }


def test_list_items_are_the_stored_invoices(client: httpx.Client) -> None:
    created = [s.create(client, name=f"n{i}", details=[{"amount": "1"}]) for i in range(3)]
    listed = s.success(client.get("/invoices"))["invoices"]
    assert listed == created[::-1]  # newest first


def test_list_expands_every_item(client: httpx.Client, project: IssuedKeys) -> None:
    ada = s.create_customer(client, first_name="Ada")
    bob = s.create_customer(client, first_name="Bob")
    created = [
        s.create(client, customer_id=ada["id"], amount="1"),
        s.create(client, amount="2"),
        s.create(client, customer_id=bob["id"], amount="3"),
        s.create(client, customer_id=ada["id"], amount="4"),
    ][::-1]
    for query in (
        "expand=customer&expand=transaction&expand=project&expand=token",
        "expand[]=customer&expand[]=transaction&expand[]=project&expand[]=token",
        "expand=customer,transaction,project,token",
    ):
        listed = s.success(client.get(f"/invoices?{query}"))["invoices"]
        assert [iv["id"] for iv in listed] == [iv["id"] for iv in created]
        for iv, made in zip(listed, created, strict=True):
            if made["customer_id"] is None:
                assert iv["customer"] is None
            else:
                assert iv["customer"]["id"] == made["customer_id"]
            assert iv["transaction"]["id"] == made["transaction_id"]
            assert iv["transaction"]["amount"] == made["amount"]
            assert iv["transaction"]["status"] == "waiting"
            assert iv["project"]["id"] == project.project.id
            assert iv["token"] is None
        assert [iv["customer"]["first_name"] for iv in listed if iv["customer"]] == [
            "Ada",
            "Bob",
            "Ada",
        ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 10),
        ({"limit": "0"}, 10),
        ({"limit": "00"}, 10),
        ({"limit": "000"}, 10),
        ({"limit": ""}, 10),
        ({"limit": "1"}, 1),
        ({"limit": "24"}, 24),
        ({"limit": "25"}, 25),
        ({"limit": "100"}, 25),
    ],
)
def test_limit(
    walked: tuple[httpx.Client, list[str]], params: dict[str, str], expected: int
) -> None:
    client, ids = walked
    got, has_more = page(client, **params)
    assert got == ids[::-1][:expected]
    assert has_more is (expected < TOTAL)


def test_limit_at_most_100(client: httpx.Client) -> None:
    ids = [s.create(client, amount="1")["id"] for _ in range(101)][::-1]
    assert page(client, limit=100) == (ids[:100], True)
    assert page(client, limit=100, start_after=ids[99]) == (ids[100:], False)
    assert page(client, limit=100, end_before=ids[100]) == (ids[:100], False)
    assert page(client) == (ids[:10], True)
    s.invalid(
        client.get("/invoices", params={"limit": 101}), "limit", "request.validation.invalid-limit"
    )


@pytest.mark.parametrize("limit", ["101", "1000", "-1", "abc", "1.5", "1e2", " 5", "9" * 30])
def test_invalid_limit_is_400(po_empty: httpx.Client, limit: str) -> None:
    s.invalid(po_empty.get("/invoices", params={"limit": limit}), "limit")


@pytest.mark.parametrize("order", ["up", "DESCENDING", "1"])
def test_invalid_order_is_400(po_empty: httpx.Client, order: str) -> None:
    s.invalid(po_empty.get("/invoices", params={"order": order}), "order")


def test_order(walked: tuple[httpx.Client, list[str]]) -> None:
    client, ids = walked
    assert page(client, limit=100) == (ids[::-1], False)
    assert page(client, limit=100, order="desc") == (ids[::-1], False)
    assert page(client, limit=100, order="asc") == (ids, False)
    assert page(client, limit=100, order="") == (ids[::-1], False)


def _walk(client: httpx.Client, order: str, forward: bool) -> list[list[str]]:
    """Pages of 10 from one end to the other: forward with start_after, back with end_before."""
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 10, "order": order}
    if not forward:
        # Start past the far end: end_before the last item, then add that item's page.
        everything, _ = page(client, limit=100, order=order)
        params["end_before"] = everything[-1]
        pages.append([everything[-1]])
    while True:
        ids, has_more = page(client, **params)
        assert ids, params
        pages.append(ids)
        if not has_more:
            return pages
        if forward:
            params["start_after"] = ids[-1]
        else:
            params["end_before"] = ids[0]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_walk_pages_forward(walked: tuple[httpx.Client, list[str]], order: str) -> None:
    client, ids = walked
    listing = ids[::-1] if order == "desc" else ids
    pages = _walk(client, order, forward=True)
    assert pages == [listing[0:10], listing[10:20], listing[20:25]]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_walk_pages_backward(walked: tuple[httpx.Client, list[str]], order: str) -> None:
    client, ids = walked
    listing = ids[::-1] if order == "desc" else ids
    pages = _walk(client, order, forward=False)
    # Each page keeps the listing's order; pages come back from the far end.
    assert pages == [listing[24:25], listing[14:24], listing[4:14], listing[0:4]]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_is_excluded_and_has_more_is_exact(
    walked: tuple[httpx.Client, list[str]], order: str
) -> None:
    client, ids = walked
    listing = ids[::-1] if order == "desc" else ids
    for i, cursor in enumerate(listing):
        after = listing[i + 1 : i + 6]
        assert page(client, start_after=cursor, limit=5, order=order) == (after, i + 6 < TOTAL)
        before = listing[max(0, i - 5) : i]
        assert page(client, end_before=cursor, limit=5, order=order) == (before, i > 5)


def test_exact_page_boundary_has_no_more(walked: tuple[httpx.Client, list[str]]) -> None:
    client, ids = walked
    listing = ids[::-1]
    assert page(client, limit=25) == (listing, False)
    assert page(client, start_after=listing[14], limit=10) == (listing[15:25], False)
    assert page(client, start_after=listing[13], limit=10) == (listing[14:24], True)
    assert page(client, end_before=listing[10], limit=10) == (listing[0:10], False)
    assert page(client, end_before=listing[11], limit=10) == (listing[1:11], True)


def test_empty_cursor_means_absent(walked: tuple[httpx.Client, list[str]]) -> None:
    client, ids = walked
    first = (ids[::-1][:10], True)
    assert page(client, start_after="") == first
    assert page(client, end_before="") == first
    assert page(client, start_after="", end_before="") == first
    assert page(client, start_after=ids[20], end_before="") == (ids[::-1][5:15], True)


def test_both_cursors_is_400(walked: tuple[httpx.Client, list[str]]) -> None:
    client, ids = walked
    response = client.get("/invoices", params={"start_after": ids[20], "end_before": ids[3]})
    body = s.failure(response, 400, "request.validation.conflicting-cursors")
    assert "start_after" in body["message"] and "end_before" in body["message"]


def test_unknown_or_foreign_cursor_is_400(
    walked: tuple[httpx.Client, list[str]], client: httpx.Client
) -> None:
    other, ids = walked
    mine = s.create(client)
    for cursor in (ids[3], "iv_" + "x" * 32, "garbage", mine["transaction_id"]):
        s.invalid(client.get("/invoices", params={"start_after": cursor}), "start_after")
        s.invalid(client.get("/invoices", params={"end_before": cursor}), "end_before")
    # The real cursor still works in its own project.
    assert page(other, start_after=ids[3], order="asc", limit=2) == (ids[4:6], True)


def test_lists_are_scoped_to_the_project(
    walked: tuple[httpx.Client, list[str]], client: httpx.Client
) -> None:
    _, ids = walked
    mine = s.create(client)
    assert s.all_invoice_ids(client) == [mine["id"]]
    assert not set(ids) & set(s.all_invoice_ids(client))


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_a_cursor_deleted_by_another_client_keeps_its_place(
    client: httpx.Client, order: str
) -> None:
    """List a page, another client deletes the invoice that ends it: the next page (after it)
    and the page before it still come, without the deleted one."""
    ids = [s.create(client, amount="1")["id"] for _ in range(6)]
    listing = ids if order == "asc" else ids[::-1]
    first, more = page(client, limit=3, order=order)
    assert (first, more) == (listing[:3], True)
    assert client.delete(f"/invoices/{first[-1]}").json() == {"success": True}
    assert page(client, limit=3, order=order, start_after=first[-1]) == (listing[3:], False)
    assert page(client, limit=3, order=order, end_before=first[-1]) == (listing[:2], False)
    # The deleted invoice is gone from every listing and lookup.
    assert first[-1] not in s.all_invoice_ids(client)
    assert client.get(f"/invoices/{first[-1]}").status_code == 404
    # A cursor of another project is still refused, deleted or not.
    s.invalid(client.get("/invoices", params={"start_after": "iv_" + "y" * 32}), "start_after")


def test_a_path_with_a_trailing_slash_is_a_404_in_this_dialect(client: httpx.Client) -> None:
    response = client.get("/invoices/")
    assert response.status_code == 404
    assert response.json()["success"] is False
    assert response.json()["error_type"] == "request.route.not-found"
