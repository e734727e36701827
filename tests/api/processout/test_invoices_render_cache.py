"""Lists and finds are spliced from renderings cached per (invoice id, version): every change
must show at once, in every way an invoice can be read."""

from __future__ import annotations

from typing import Any

import httpx


def listed(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    page = client.get("/invoices", params={"limit": 100}).json()
    assert page["success"] is True
    found: list[dict[str, Any]] = [iv for iv in page["invoices"] if iv["id"] == invoice_id]
    (invoice,) = found
    return invoice


def test_every_change_shows_in_lists_and_finds(client: httpx.Client) -> None:
    body = {
        "name": "cached",
        "amount": "10.00",
        "currency": "EUR",
        "details": [{"name": "a", "amount": "10.00"}],
    }
    invoice = client.post("/invoices", json=body).json()["invoice"]
    iid = invoice["id"]
    assert listed(client, iid) == invoice  # the list serves what create rendered
    assert client.get(f"/invoices/{iid}").json()["invoice"] == invoice

    changed = client.put(
        f"/invoices/{iid}",
        json={
            "amount": "12.50",
            "tax": {"amount": "2.50", "rate": "25"},
            "details": [{"name": "b", "amount": "12.50", "quantity": 2}],
        },
    ).json()["invoice"]
    for seen in (listed(client, iid), client.get(f"/invoices/{iid}").json()["invoice"]):
        assert seen == changed
        assert seen["amount"] == "12.5"
        assert seen["tax"] == {"amount": "2.5", "rate": "25"}
        assert [d["name"] for d in seen["details"]] == ["b"]

    customer = client.post("/customers", json={"email": "c@example.com"}).json()["customer"]
    assert (
        client.post(f"/invoices/{iid}/customers", json={"customer_id": customer["id"]}).status_code
        == 200
    )
    assert listed(client, iid)["customer_id"] == customer["id"]
    assert client.get(f"/invoices/{iid}").json()["invoice"]["customer_id"] == customer["id"]

    assert client.delete(f"/invoices/{iid}").json() == {"success": True}
    ids = [iv["id"] for iv in client.get("/invoices", params={"limit": 100}).json()["invoices"]]
    assert iid not in ids


def test_expanded_and_plain_lists_agree(client: httpx.Client) -> None:
    for i in range(3):
        client.post("/invoices", json={"name": f"n{i}", "amount": "1", "currency": "JPY"})
    plain = client.get("/invoices").json()["invoices"]
    expanded = client.get("/invoices", params={"expand": "transaction"}).json()["invoices"]
    for p, e in zip(plain, expanded, strict=True):
        transaction = e.pop("transaction")
        assert transaction["id"] == p["transaction_id"]
        assert p == e
