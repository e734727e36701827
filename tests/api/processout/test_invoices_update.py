"""PUT /invoices/{id} (amount, tax, details, shipping; the rest stays) and DELETE."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.api.processout import invoices_support as s
from tests.conftest import RunningServer

po = s.po
no_server_errors = s.no_server_errors


def full_invoice(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    customer = s.create_customer(client)
    body = {**s.seed_invoice(), "customer_id": customer["id"], **overrides}
    invoice: dict[str, Any] = s.success(client.post("/invoices", json=body))["invoice"]
    return invoice


def put(client: httpx.Client, invoice_id: str, body: Any) -> dict[str, Any]:
    invoice: dict[str, Any] = s.success(client.put(f"/invoices/{invoice_id}", json=body))["invoice"]
    assert s.find(client, invoice_id) == invoice  # what PUT answers is what is stored
    return invoice


def transaction_of(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    transaction: dict[str, Any] = s.find(client, invoice_id, expand="transaction")["transaction"]
    return transaction


def test_put_amount_only(po: httpx.Client) -> None:
    before = full_invoice(po)
    after = put(po, before["id"], {"amount": "31.50"})
    assert after["amount"] == "31.5"
    assert {k: v for k, v in after.items() if k != "amount"} == {
        k: v for k, v in before.items() if k != "amount"
    }
    transaction = transaction_of(po, before["id"])
    assert transaction["id"] == before["transaction_id"]
    assert (transaction["amount"], transaction["currency"]) == ("31.5", "EUR")
    assert transaction["status"] == "waiting"
    assert transaction["customer_id"] == before["customer_id"]


def test_put_tax_only(po: httpx.Client) -> None:
    before = full_invoice(po)
    after = put(po, before["id"], {"tax": {"amount": "2.5", "rate": "12.50"}})
    assert after["tax"] == {"amount": "2.5", "rate": "12.5"}
    assert {k: v for k, v in after.items() if k != "tax"} == {
        k: v for k, v in before.items() if k != "tax"
    }
    assert transaction_of(po, before["id"])["amount"] == "29"


def test_put_details_replaces_them(po: httpx.Client) -> None:
    before = full_invoice(po)
    details = [
        {"name": "Case", "amount": "19.99", "category": "Technology"},
        {"name": "Cable", "amount": "9.01", "quantity": 2, "condition": "used"},
    ]
    after = put(po, before["id"], {"details": details})
    first, second = after["details"]
    assert (first["name"], first["amount"], first["quantity"]) == ("Case", "19.99", 1)
    assert first["category"] == "technology"
    assert (second["name"], second["amount"], second["quantity"]) == ("Cable", "9.01", 2)
    assert second["condition"] == "used"
    old_ids = {d["id"] for d in before["details"]}
    assert all(s.DETAIL_ID_RE.match(d["id"]) and d["id"] not in old_ids for d in after["details"])
    assert {k: v for k, v in after.items() if k != "details"} == {
        k: v for k, v in before.items() if k != "details"
    }
    # An empty list removes every line.
    assert put(po, before["id"], {"details": []})["details"] == []


def test_put_shipping_replaces_it(po: httpx.Client) -> None:
    before = full_invoice(po)
    shipping = {
        "amount": "4.5",
        "method": "locker",
        "delay": "standard",
        "country_code": "de",
        "city": "Berlin",
        "phone": {"number": "301234567", "dialing_code": "+49"},
    }
    after = put(po, before["id"], {"shipping": shipping})
    got = after["shipping"]
    assert (got["amount"], got["method"], got["delay"]) == ("4.5", "locker", "standard")
    assert (got["country_code"], got["city"]) == ("DE", "Berlin")
    assert got["phone"] == {"number": "301234567", "dialing_code": "0049"}
    # A given shipping object replaces the old one whole.
    assert got["provider"] is None and got["address1"] is None
    assert {k: v for k, v in after.items() if k != "shipping"} == {
        k: v for k, v in before.items() if k != "shipping"
    }


def test_put_everything_at_once(po: httpx.Client) -> None:
    before = s.create(po, amount="10", currency="JPY", name="keep me")
    after = put(
        po,
        before["id"],
        {
            "amount": "1200",
            "tax": {"amount": "100", "rate": "10"},
            "details": [{"amount": "1100"}, {"amount": "100", "name": "fee"}],
            "shipping": {"amount": "0", "method": "home"},
        },
    )
    assert after["amount"] == "1200"
    assert after["tax"] == {"amount": "100", "rate": "10"}
    assert [d["amount"] for d in after["details"]] == ["1100", "100"]
    assert after["shipping"]["amount"] == "0"
    assert after["name"] == "keep me"
    assert after["currency"] == "JPY"
    assert transaction_of(po, before["id"])["amount"] == "1200"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": None, "tax": None, "details": None, "shipping": None},
        # Fields PUT cannot change, sent as null (the official client sends unset fields so).
        {"name": None, "currency": None, "metadata": None, "customer_id": None},
    ],
)
def test_put_without_changes_keeps_everything(po: httpx.Client, body: dict[str, Any]) -> None:
    before = full_invoice(po)
    after = put(po, before["id"], body)
    assert after == before


def test_put_form_encoded(po: httpx.Client) -> None:
    before = full_invoice(po)
    pairs = [
        ("amount", "30"),
        ("details[0][name]", "Other"),
        ("details[0][amount]", "30"),
        ("details[0][quantity]", "3"),
        ("tax[rate]", "5"),
    ]
    response = po.put(
        f"/invoices/{before['id']}",
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    after = s.success(response)["invoice"]
    assert after["amount"] == "30"
    assert [(d["name"], d["amount"], d["quantity"]) for d in after["details"]] == [
        ("Other", "30", 3)
    ]
    assert after["tax"] == {"amount": None, "rate": "5"}
    assert s.find(po, before["id"]) == after


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "4.999"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": 5}, "amount"),
        ({"tax": {"rate": "101"}}, "tax.rate"),
        ({"tax": {"amount": "-1"}}, "tax.amount"),
        ({"details": [{"amount": "1", "category": "nope"}]}, "details[0].category"),
        ({"details": [{"amount": "1"}, {"name": "x"}]}, "details[1].amount"),
        ({"details": [{"amount": "1", "name": "x" * 81}]}, "details[0].name"),
        ({"shipping": {"method": "teleport"}}, "shipping.method"),
        ({"shipping": {"country_code": "ZZ"}}, "shipping.country_code"),
        ({"shipping": {"zip": "1" * 17}}, "shipping.zip"),
        # A valid part does not go through when another one is rejected.
        ({"amount": "1", "shipping": {"amount": "0.001"}}, "shipping.amount"),
    ],
)
def test_put_rejection_changes_nothing(po: httpx.Client, body: dict[str, Any], field: str) -> None:
    before = full_invoice(po)
    s.invalid(po.put(f"/invoices/{before['id']}", json=body), field)
    assert s.find(po, before["id"]) == before
    assert transaction_of(po, before["id"])["amount"] == "29"


def test_put_amount_uses_the_invoice_currency(po: httpx.Client) -> None:
    jpy = s.create(po, amount="100", currency="JPY")
    s.invalid(po.put(f"/invoices/{jpy['id']}", json={"amount": "100.5"}), "amount")
    kwd = s.create(po, amount="1", currency="KWD")
    assert put(po, kwd["id"], {"amount": "1.005"})["amount"] == "1.005"
    assert transaction_of(po, kwd["id"])["amount"] == "1.005"


def test_put_malformed_body(po: httpx.Client) -> None:
    before = s.create(po)
    response = po.put(
        f"/invoices/{before['id']}", content=b"{", headers={"Content-Type": "application/json"}
    )
    s.failure(response, 400, "request.body.malformed")
    assert s.find(po, before["id"]) == before


def test_put_unknown_or_foreign_invoice_is_404(po: httpx.Client, server: RunningServer) -> None:
    with s.project_client(server) as other:
        theirs = s.create(other, amount="5")
        unknown = "iv_" + "Z" * 32
        for invoice_id in (theirs["id"], unknown):
            response = po.put(f"/invoices/{invoice_id}", json={"amount": "1"})
            s.failure(response, 404, "resource.invoice.not-found")
        assert s.find(other, theirs["id"]) == theirs
        assert transaction_of(other, theirs["id"])["amount"] == "5"


# --- delete --------------------------------------------------------------------------------


def test_delete_then_find_is_404(client: httpx.Client) -> None:
    keep = s.create(client, name="keep")
    gone = full_invoice(client)
    response = client.delete(f"/invoices/{gone['id']}")
    assert response.status_code == 200
    assert response.json() == {"success": True}

    s.failure(client.get(f"/invoices/{gone['id']}"), 404, "resource.invoice.not-found")
    s.failure(client.get(f"/invoices/{gone['id']}?expand=transaction"), 404)
    s.failure(client.put(f"/invoices/{gone['id']}", json={"amount": "1"}), 404)
    s.failure(client.delete(f"/invoices/{gone['id']}"), 404, "resource.invoice.not-found")
    assert s.all_invoice_ids(client) == [keep["id"]]
    assert s.find(client, keep["id"]) == keep
    # A deleted invoice keeps its place as a cursor (another client may be paging past it).
    assert s.success(client.get("/invoices", params={"start_after": gone["id"]}))["invoices"] == [
        keep
    ]
    # Its customer is untouched.
    s.success(client.get(f"/customers/{gone['customer_id']}"))


def test_delete_foreign_invoice_is_404_and_keeps_it(
    po: httpx.Client, server: RunningServer
) -> None:
    with s.project_client(server) as other:
        theirs = s.create(other)
        s.failure(po.delete(f"/invoices/{theirs['id']}"), 404, "resource.invoice.not-found")
        assert s.find(other, theirs["id"]) == theirs
        assert s.all_invoice_ids(other) == [theirs["id"]]
