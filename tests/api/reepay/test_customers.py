"""Reepay customers: by handle, on the one customer table the ProcessOut face also serves."""

from __future__ import annotations

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.reepay.support import (
    assert_error,
    new_customer,
    new_invoice,
    reepay,
    reepay_client,
)
from tests.conftest import RunningServer

__all__ = ["reepay"]

FULL = {
    "email": "jane@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "address": "Main Street 1",
    "address2": "2nd floor",
    "city": "Copenhagen",
    "country": "dk",
    "postal_code": "1000",
    "phone": "+45 12345678",
    "company": "Doe ApS",
    "vat": "DK12345678",
    "metadata": {"crm": "42"},
}


def test_create_and_get_a_customer_with_every_field(reepay: httpx.Client) -> None:
    created = new_customer(reepay, "cust-0001", **FULL)
    expected = {k: v for k, v in FULL.items() if k != "metadata"} | {"country": "DK"}
    assert {k: created[k] for k in expected} == expected
    assert created["handle"] == "cust-0001"
    assert created["test"] is True
    assert created["pending_invoices"] == 0 and created["settled_amount"] == 0
    assert "deleted" not in created
    fetched = reepay.get("/customer/cust-0001")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_reepay_field_names_map_onto_the_domain_seen_by_processout(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "mapped", **FULL)
    listed = client.get("/customers").json()["customers"]
    (po,) = listed
    assert po["address1"] == "Main Street 1"
    assert po["zip"] == "1000"
    assert po["country_code"] == "DK"
    assert po["company_name"] == "Doe ApS"
    assert po["phone_number"] == "+45 12345678"
    assert po["metadata"] == {"crm": "42"}


def test_generated_handles(reepay: httpx.Client) -> None:
    handles = {
        reepay.post("/customer", json={"generate_handle": True}).json()["handle"] for _ in range(3)
    }
    assert len(handles) == 3
    for handle in handles:
        assert handle.startswith("cust-")
        assert reepay.get(f"/customer/{handle}").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com"},
        {"handle": "both", "generate_handle": True},
        {"handle": ""},
        {"handle": "has space"},
        {"handle": "slash/no"},
        {"handle": "x" * 256},
        {"handle": "ünïcode"},
        {"handle": 42},
        {"handle": "ok", "email": "not-an-address"},
        {"handle": "ok", "country": "XX"},
        {"handle": "ok", "metadata": {"n": 1}},
        {"handle": "ok", "first_name": "x" * 256},
    ],
)
def test_invalid_customers_are_422_and_write_nothing(
    reepay: httpx.Client, client: httpx.Client, body: dict[str, object]
) -> None:
    assert_error(reepay.post("/customer", json=body), 422, 1)
    assert client.get("/customers").json()["customers"] == []


def test_errors_name_the_fields_this_dialect_uses(reepay: httpx.Client) -> None:
    body = assert_error(reepay.post("/customer", json={"handle": "c", "country": "XX"}), 422, 1)
    assert body["message"].startswith("country:"), body
    body = assert_error(reepay.post("/customer", json={"handle": "c", "email": "no"}), 422, 1)
    assert body["message"].startswith("email:"), body


def test_a_taken_handle_is_code_11(reepay: httpx.Client) -> None:
    new_customer(reepay, "taken")
    assert_error(reepay.post("/customer", json={"handle": "taken"}), 400, 11)


def test_update_changes_the_given_fields_only(reepay: httpx.Client) -> None:
    new_customer(reepay, "upd", email="old@example.com", first_name="Old", vat="DK1")
    response = reepay.put("/customer/upd", json={"email": "new@example.com", "city": "Aarhus"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["email"] == "new@example.com"
    assert updated["city"] == "Aarhus"
    assert updated["first_name"] == "Old" and updated["vat"] == "DK1"
    assert reepay.get("/customer/upd").json() == updated
    assert_error(reepay.put("/customer/upd", json={"country": "nowhere"}), 422, 1)
    assert reepay.get("/customer/upd").json() == updated


def test_unknown_customers_are_code_9(reepay: httpx.Client) -> None:
    for response in (
        reepay.get("/customer/nobody"),
        reepay.put("/customer/nobody", json={"email": "a@example.com"}),
        reepay.delete("/customer/nobody"),
        reepay.get("/customer/" + "x" * 300),
        reepay.get("/customer/%27%20OR%20%271%27%3D%271"),
    ):
        assert_error(response, 404, 9)


def test_a_deleted_customer_is_code_71_everywhere(reepay: httpx.Client) -> None:
    new_customer(reepay, "gone", email="gone@example.com")
    response = reepay.delete("/customer/gone")
    assert response.status_code == 200
    deleted = response.json()
    assert deleted["handle"] == "gone" and "deleted" in deleted
    for response in (
        reepay.get("/customer/gone"),
        reepay.put("/customer/gone", json={"email": "back@example.com"}),
        reepay.delete("/customer/gone"),
        reepay.post(
            "/customer/gone/invoice",
            json={"handle": "i", "order_lines": [{"ordertext": "x", "amount": 100}]},
        ),
    ):
        body = assert_error(response, 404, 71)
        assert body["error"] == "Customer has been deleted"
    # Its handle stays taken, as the vendor's do.
    assert_error(reepay.post("/customer", json={"handle": "gone"}), 400, 11)


def test_processout_customers_answer_to_their_id(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    created = client.post("/customers", json={"email": "po@example.com", "first_name": "Po"})
    customer_id = created.json()["customer"]["id"]
    found = reepay.get(f"/customer/{customer_id}")
    assert found.status_code == 200
    assert found.json()["handle"] == customer_id
    assert found.json()["email"] == "po@example.com"
    assert client.delete(f"/customers/{customer_id}").status_code == 200
    assert_error(reepay.get(f"/customer/{customer_id}"), 404, 71)


def test_invoice_counters(reepay: httpx.Client) -> None:
    new_customer(reepay, "counted")
    new_invoice(reepay, "counted", "inv-1")
    new_invoice(reepay, "counted", "inv-2")
    customer = reepay.get("/customer/counted").json()
    assert customer["pending_invoices"] == 2
    assert customer["pending_amount"] == 20000
    assert customer["settled_invoices"] == 0 and customer["refunded_amount"] == 0


@pytest.mark.parametrize(
    "auth",
    [None, ("priv_wrong", ""), ("", "priv_x"), "processout"],
    ids=["none", "wrong-key", "key-as-password", "processout-credentials"],
)
def test_authentication_failures_are_401_code_6(
    server: RunningServer, project: IssuedKeys, auth: object
) -> None:
    if auth == "processout":
        auth = (project.processout_username, project.processout_password)
    with httpx.Client(base_url=f"{server.url}/v1", timeout=30) as anon:
        response = anon.get("/customer/x", auth=auth)  # type: ignore[arg-type]
        body = assert_error(response, 401, 6)
        assert body["http_reason"] == "Unauthorized"
        assert response.headers["www-authenticate"].startswith("Basic")
        assert_error(anon.post("/customer", json={"handle": "h"}, auth=auth), 401, 6)  # type: ignore[arg-type]


def test_a_password_beside_the_key_is_not_looked_at(
    server: RunningServer, project: IssuedKeys
) -> None:
    with reepay_client(server, project.reepay_private_key) as c:
        c.auth = (project.reepay_private_key, "anything")
        assert c.post("/customer", json={"handle": "pw"}).status_code == 200
