from __future__ import annotations

import httpx


def test_create_and_find_invoice(client: httpx.Client) -> None:
    created = client.post("/invoices", json={"name": "x", "amount": "4.99", "currency": "AUD"})
    assert created.status_code == 200, created.text
    invoice = created.json()["invoice"]
    found = client.get(f"/invoices/{invoice['id']}").json()
    assert found["success"] is True
    assert found["invoice"]["amount"] == "4.99"
