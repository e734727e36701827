"""ProcessOut events over HTTP and through the official client: GET /events, GET /events/{id}.

Every change through either dialect records an event; this dialect shows each with its name,
the object as it was when it happened, and when.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import processout
import pytest
from processout.errors.notfounderror import NotFoundError

from settle.projects.models import IssuedKeys
from tests.conftest import RunningServer

CARD_YEAR = datetime.now(UTC).year + 5  # a card's expiry must be in the future
EV_RE = re.compile(r"ev_[A-Za-z0-9]{32}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in events]


def all_events(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/events", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["has_more"] is False
    events: list[dict[str, Any]] = body["events"]
    return events


def test_every_change_is_an_event_with_the_object_as_it_was(client: httpx.Client) -> None:
    cust = client.post("/customers", json={"first_name": "Jane"}).json()["customer"]
    iv = client.post(
        "/invoices",
        json={"name": "Shoes", "amount": "4.99", "currency": "EUR", "customer_id": cust["id"]},
    ).json()["invoice"]
    assert client.put(f"/invoices/{iv['id']}", json={"amount": "5.99"}).json()["success"]
    assert client.delete(f"/invoices/{iv['id']}").json()["success"]
    assert client.put(f"/customers/{cust['id']}", json={"last_name": "Doe"}).json()["success"]
    assert client.delete(f"/customers/{cust['id']}").json()["success"]

    events = all_events(client, order="asc")
    assert names(events) == [
        "customer.created",
        "invoice.created",
        "invoice.changed",
        "invoice.deleted",
        "customer.changed",
        "customer.deleted",
    ]
    for e in events:
        assert EV_RE.fullmatch(e["id"]) and TIME_RE.fullmatch(e["fired_at"]), e
        assert e["sandbox"] is True
        assert e["project_id"] == iv["project_id"]
    created, changed, deleted = (e["data"]["invoice"] for e in events[1:4])
    # Each event keeps the invoice as it was then, rendered as GET /invoices/{id} renders it.
    assert created == iv
    assert (created["amount"], changed["amount"], deleted["amount"]) == ("4.99", "5.99", "5.99")
    assert events[0]["data"]["customer"]["last_name"] is None
    assert events[4]["data"]["customer"]["last_name"] == "Doe"
    assert events[5]["data"] == events[4]["data"]
    # Newest first by default; each one found by its id.
    assert names(all_events(client)) == names(events)[::-1]
    for e in events:
        r = client.get(f"/events/{e['id']}")
        assert r.status_code == 200 and r.json() == {"success": True, "event": e}


def test_events_are_paged_like_the_other_lists(client: httpx.Client) -> None:
    for i in range(5):
        client.post("/customers", json={"first_name": f"c{i}"})
    ids = [e["id"] for e in all_events(client)]
    assert len(ids) == 5
    first = client.get("/events", params={"limit": 2}).json()
    assert [e["id"] for e in first["events"]] == ids[:2] and first["has_more"] is True
    rest = client.get("/events", params={"limit": 10, "start_after": ids[1]}).json()
    assert [e["id"] for e in rest["events"]] == ids[2:] and rest["has_more"] is False
    back = client.get("/events", params={"limit": 10, "end_before": ids[2]}).json()
    assert [e["id"] for e in back["events"]] == ids[:2]
    bad = client.get("/events", params={"start_after": "ev_nope"})
    assert bad.status_code == 400
    assert bad.json()["error_type"] == "request.validation.invalid-cursor"


def test_an_event_of_another_project_or_mode_is_not_found(
    server: RunningServer, client: httpx.Client
) -> None:
    client.post("/customers", json={"first_name": "Jane"})
    (event,) = all_events(client)
    for sandbox in (True, False):
        other = server.create_project(sandbox=sandbox)
        with httpx.Client(
            base_url=server.url, auth=(other.processout_username, other.processout_password)
        ) as stranger:
            r = stranger.get(f"/events/{event['id']}")
            assert r.status_code == 404
            assert r.json()["error_type"] == "resource.event.not-found"
            assert all_events(stranger) == []
    assert client.get("/events/ev_x").status_code == 404


def test_a_refused_change_records_no_event(client: httpx.Client) -> None:
    iv = client.post("/invoices", json={"name": "x", "amount": "1", "currency": "EUR"}).json()
    before = all_events(client)
    r = client.put(f"/invoices/{iv['invoice']['id']}", json={"amount": "-1"})
    assert r.status_code == 400
    r = client.post("/invoices", json={"amount": "1", "currency": "EUR", "customer_id": "cust_x"})
    assert r.status_code == 404
    assert all_events(client) == before


def test_reepay_changes_are_events_here_too(server: RunningServer, project: IssuedKeys) -> None:
    with httpx.Client(base_url=server.url, auth=(project.reepay_private_key, "")) as reepay:
        r = reepay.post("/v1/customer", json={"handle": "c-1", "email": "jane@example.com"})
        assert r.status_code == 200, r.text
        r = reepay.post(
            "/v1/customer/c-1/invoice",
            json={
                "handle": "inv-1",
                "currency": "DKK",
                "order_lines": [{"ordertext": "Shoes", "amount": 49900, "quantity": 1}],
            },
        )
        assert r.status_code == 200, r.text
        invoice_id = r.json()["id"]
    with httpx.Client(
        base_url=server.url, auth=(project.processout_username, project.processout_password)
    ) as client:
        events = all_events(client, order="asc")
    assert names(events) == ["customer.created", "invoice.created"]
    assert events[0]["data"]["customer"]["email"] == "jane@example.com"
    assert events[1]["data"]["invoice"]["id"] == invoice_id
    assert events[1]["data"]["invoice"]["amount"] == "499"


def test_the_official_client_finds_and_lists_events(sdk: processout.ProcessOut) -> None:
    customer = sdk.new_customer().create({"email": "jane@example.com", "first_name": "Jane"})
    invoice = sdk.new_invoice().create(
        {"name": "Shoes", "amount": "4.99", "currency": "EUR", "customer_id": customer.id}
    )
    listed = sdk.new_event().all()  # newest first
    assert [e.name for e in listed] == ["invoice.created", "customer.created"]
    assert [e.name for e in sdk.new_event().all({"limit": 1})] == ["invoice.created"]
    found = sdk.new_event().find(listed[0].id)
    assert found.id == listed[0].id and EV_RE.fullmatch(found.id)
    assert found.name == "invoice.created"
    assert found.sandbox is True and TIME_RE.fullmatch(found.fired_at)
    assert found.project_id == invoice.project_id
    assert found.data["invoice"]["id"] == invoice.id
    assert found.data["invoice"]["amount"] == "4.99"
    with pytest.raises(NotFoundError):
        sdk.new_event().find("ev_" + "0" * 32)


def test_a_new_default_token_is_a_change_of_its_customer(client: httpx.Client) -> None:
    cust = client.post("/customers", json={"first_name": "Jane"}).json()["customer"]
    card = client.post(
        "/cards", json={"number": "4242424242424242", "exp_month": 12, "exp_year": CARD_YEAR}
    ).json()["card"]
    tokens = f"/customers/{cust['id']}/tokens"
    token = client.post(tokens, json={"source": card["id"], "set_default": True}).json()["token"]
    assert client.delete(f"{tokens}/{token['id']}").json()["success"]
    events = all_events(client, order="asc")
    assert names(events) == ["customer.created", "customer.changed", "customer.changed"]
    assert [e["data"]["customer"]["default_token_id"] for e in events] == [None, token["id"], None]


def test_reepay_metadata_and_address_changes_are_invoice_changes(
    server: RunningServer, project: IssuedKeys
) -> None:
    with httpx.Client(base_url=server.url, auth=(project.reepay_private_key, "")) as reepay:
        reepay.post("/v1/customer", json={"handle": "c-2"})
        made = reepay.post(
            "/v1/customer/c-2/invoice",
            json={"handle": "inv-2", "order_lines": [{"ordertext": "x", "amount": 100}]},
        )
        assert made.status_code == 200, made.text
        assert reepay.put("/v1/invoice/inv-2/metadata", json={"k": "v"}).status_code == 200
        r = reepay.put(f"/v1/invoice/{made.json()['id']}/billing_address", json={"company": "X"})
        assert r.status_code == 200, r.text
    with httpx.Client(
        base_url=server.url, auth=(project.processout_username, project.processout_password)
    ) as client:
        events = all_events(client, order="asc")
    assert names(events) == ["customer.created", "invoice.created", *["invoice.changed"] * 2]
    assert events[2]["data"]["invoice"]["metadata"] == {"k": "v"}
