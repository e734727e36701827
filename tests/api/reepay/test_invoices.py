"""POST /v1/customer/{handle}/invoice (seed 002), GET /v1/invoice/{id or handle}, and an
invoice's metadata and addresses: one invoice row, seen by both dialects."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from settle.money import format_amount
from settle.projects.models import IssuedKeys
from tests.api.reepay.support import (
    NO_CUSTOMER_HEADER,
    assert_error,
    invoice_body,
    new_customer,
    new_invoice,
    reepay,
    reepay_client,
)
from tests.conftest import RunningServer, create_project
from tests.dbcheck import execute, query

__all__ = ["reepay"]


def _count_rows(server: RunningServer, project: IssuedKeys) -> tuple[int, int, int]:
    scope = (project.project.id, True)
    invoices = query(
        server.database_url,
        "SELECT COUNT(*) FROM invoices WHERE project_id = $1 AND sandbox = $2",
        *scope,
    )[0][0]
    stored = query(
        server.database_url,
        "SELECT lines FROM invoices WHERE project_id = $1 AND sandbox = $2",
        *scope,
    )
    lines = sum(len(json.loads(r[0]) if isinstance(r[0], str) else r[0]) for r in stored)
    transactions = query(
        server.database_url,
        "SELECT COUNT(*) FROM transactions WHERE project_id = $1 AND sandbox = $2",
        *scope,
    )[0][0]
    return int(invoices), int(lines), int(transactions)


def test_create_an_invoice_as_the_seed_describes(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "cust-1", email="jane@example.com")
    body = {
        "handle": "inv-0001",
        "currency": "EUR",
        "metadata": {"order": "A-17"},
        "order_lines": [
            {"ordertext": "Shoes", "amount": 10000, "vat": 0.25, "quantity": 2},
            {"ordertext": "Socks", "amount": 400, "vat": 0.25, "amount_incl_vat": False},
            {"ordertext": "Gift wrap", "amount": 150},
        ],
        "billing_address": {"address": "Main Street 1", "country": "dk", "email": "b@x.dk"},
        "shipping_address": {"first_name": "Jane", "city": "Aarhus"},
        "cost_center": "CC-9",
        "purchase_order_number": "PO-77",
    }
    response = reepay.post("/customer/cust-1/invoice", json=body)
    assert response.status_code == 200, response.text
    invoice = response.json()
    assert invoice["handle"] == "inv-0001"
    assert invoice["customer"] == "cust-1"
    assert invoice["state"] == "pending"
    assert invoice["type"] == "co"
    assert invoice["currency"] == "EUR"
    shoes, socks, wrap = invoice["order_lines"]
    assert (shoes["amount"], shoes["amount_vat"], shoes["amount_ex_vat"]) == (20000, 4000, 16000)
    assert (shoes["unit_amount"], shoes["unit_amount_vat"], shoes["unit_amount_ex_vat"]) == (
        10000,
        2000,
        8000,
    )
    assert shoes["vat"] == 0.25 and shoes["quantity"] == 2 and shoes["origin"] == "ondemand"
    assert shoes["amount_defined_incl_vat"] is True
    assert (socks["amount"], socks["amount_vat"], socks["amount_ex_vat"]) == (500, 100, 400)
    assert socks["amount_defined_incl_vat"] is False
    assert (wrap["amount"], wrap["amount_vat"], wrap["vat"]) == (150, 0, 0)
    assert invoice["amount"] == 20650
    assert invoice["amount_vat"] == 4100
    assert invoice["amount_ex_vat"] == 16550
    assert invoice["settled_amount"] == 0 and invoice["authorized_amount"] == 0
    assert invoice["billing_address"] == {
        "address": "Main Street 1",
        "country": "DK",
        "email": "b@x.dk",
    }
    assert invoice["shipping_address"] == {"first_name": "Jane", "city": "Aarhus"}
    assert invoice["cost_center"] == "CC-9" and invoice["purchase_order_number"] == "PO-77"
    assert reepay.get(f"/invoice/{invoice['id']}").json() == invoice
    assert reepay.get("/invoice/inv-0001").json() == invoice
    # The same invoice, through the ProcessOut face: its amount, its lines, its metadata.
    po = client.get(f"/invoices/{invoice['id']}").json()["invoice"]
    assert po["amount"] == "206.5" and po["currency"] == "EUR"
    assert po["metadata"] == {"order": "A-17"}
    assert [d["name"] for d in po["details"]] == ["Shoes", "Socks", "Gift wrap"]
    # Detail amounts include VAT as the invoice's does: Socks, 4.00 ex VAT at 25 %, is 5.
    assert [d["amount"] for d in po["details"]][1] == "5"
    assert sum(Decimal(d["amount"]) * d["quantity"] for d in po["details"]) == Decimal("206.5")
    transaction = client.get(f"/transactions/{po['transaction_id']}").json()["transaction"]
    assert transaction["status"] == "waiting" and transaction["amount"] == "206.5"
    # Its tax is the lines' VAT; Gift wrap carries none, so there is no one rate.
    assert po["tax"] == {"amount": "41", "rate": None}


def test_currency_defaults_to_the_projects_then_dkk(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c")
    assert new_invoice(reepay, "c", "no-currency")["currency"] == "DKK"
    assert new_invoice(reepay, "c", "lower", currency="jpy")["currency"] == "JPY"
    execute(
        server.database_url,
        "UPDATE projects SET default_currency = 'SEK' WHERE id = $1",
        project.project.id,
    )
    assert new_invoice(reepay, "c", "project-default")["currency"] == "SEK"


@pytest.mark.parametrize(
    "handle",
    ["a", "inv_1.2-3@shop", "A" * 255, "iv_" + "x" * 32],
)
def test_every_handle_of_the_vendors_rule_is_accepted(reepay: httpx.Client, handle: str) -> None:
    new_customer(reepay, "c")
    created = new_invoice(reepay, "c", handle)
    assert created["handle"] == handle
    assert reepay.get(f"/invoice/{handle}").json()["id"] == created["id"]


LINE = {"ordertext": "x", "amount": 100}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_lines": [LINE]}, "handle"),
        ({"handle": "", "order_lines": [LINE]}, "handle"),
        ({"handle": "with space", "order_lines": [LINE]}, "handle"),
        ({"handle": "a/b", "order_lines": [LINE]}, "handle"),
        ({"handle": "x" * 256, "order_lines": [LINE]}, "handle"),
        ({"handle": "é", "order_lines": [LINE]}, "handle"),
        ({"handle": "h"}, "order_lines"),
        ({"handle": "h", "order_lines": []}, "order_lines"),
        ({"handle": "h", "order_lines": [LINE] * 101}, "order_lines"),
        ({"handle": "h", "order_lines": [{"amount": 100}]}, "order_lines[0].ordertext"),
        ({"handle": "h", "order_lines": [{"ordertext": "", "amount": 1}]}, "order_lines[0]"),
        ({"handle": "h", "order_lines": [{"ordertext": "  ", "amount": 1}]}, "order_lines[0]"),
        ({"handle": "h", "order_lines": [{"ordertext": "x"}]}, "order_lines[0].amount"),
        ({"handle": "h", "order_lines": [{"ordertext": "x", "amount": 1.5}]}, "order_lines[0]"),
        ({"handle": "h", "order_lines": [{"ordertext": "x", "amount": "100"}]}, "order_lines"),
        ({"handle": "h", "order_lines": [{"ordertext": "x", "amount": -1}]}, "order_lines"),
        ({"handle": "h", "order_lines": [{**LINE, "amount": 10**15}]}, "order_lines"),
        ({"handle": "h", "order_lines": [{**LINE, "quantity": 0}]}, "order_lines[0].quantity"),
        ({"handle": "h", "order_lines": [{**LINE, "quantity": 1.0}]}, "order_lines[0].quantity"),
        ({"handle": "h", "order_lines": [{**LINE, "vat": 1.5}]}, "order_lines[0].vat"),
        ({"handle": "h", "order_lines": [{**LINE, "vat": -0.1}]}, "order_lines[0].vat"),
        ({"handle": "h", "order_lines": [{**LINE, "vat": 0.1234567}]}, "order_lines[0].vat"),
        ({"handle": "h", "order_lines": [{**LINE, "vat": "abc"}]}, "order_lines[0].vat"),
        ({"handle": "h", "order_lines": [{**LINE, "vat": True}]}, "order_lines[0].vat"),
        ({"handle": "h", "order_lines": [{**LINE, "amount_incl_vat": "no"}]}, "order_lines"),
        (
            {"handle": "h", "order_lines": [{**LINE, "amount": 10**14, "quantity": 100}]},
            "order_lines[0]",
        ),
        ({"handle": "h", "order_lines": [LINE], "currency": "XXX"}, "currency"),
        ({"handle": "h", "order_lines": [LINE], "currency": "EURO"}, "currency"),
        ({"handle": "h", "order_lines": [LINE], "metadata": {"n": 2}}, "metadata"),
        ({"handle": "h", "order_lines": [LINE], "metadata": []}, "metadata"),
        (
            {"handle": "h", "order_lines": [LINE], "billing_address": {"country": "XX"}},
            "billing_address.country",
        ),
        (
            {"handle": "h", "order_lines": [LINE], "shipping_address": {"email": "no"}},
            "shipping_address.email",
        ),
        ({"handle": "h", "order_lines": "x"}, "order_lines"),
    ],
)
def test_invalid_invoices_are_422_naming_the_field_and_write_nothing(
    server: RunningServer,
    project: IssuedKeys,
    reepay: httpx.Client,
    body: dict[str, Any],
    field: str,
) -> None:
    new_customer(reepay, "c")
    response = reepay.post("/customer/c/invoice", json=body)
    error = assert_error(response, 422, 1)
    assert error["message"].startswith(field), error
    assert _count_rows(server, project) == (0, 0, 0)


@pytest.mark.parametrize("vat", [b"0.2500000000000000000000000000001", b"1e-999999999"])
def test_rates_past_the_contexts_precision_are_refused_not_rounded(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client, vat: bytes
) -> None:
    """A rate of more than 28 digits was rounded to 28 before its decimals were counted
    (``Decimal.normalize``): 0.2500000000000000000000000000001 was stored as 0.25, and
    1e-999999999 as 0, where any other rate of more than 6 decimals is refused."""
    new_customer(reepay, "c")
    content = b'{"handle": "h", "order_lines": [{"ordertext": "x", "amount": 100, "vat": '
    response = reepay.post(
        "/customer/c/invoice",
        content=content + vat + b"}]}",
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 422, 1)
    assert error["message"].startswith("order_lines[0].vat"), error
    assert _count_rows(server, project) == (0, 0, 0)


@pytest.mark.parametrize(
    "vat", [" 0.25", "0.25 ", "0.2_5", ".25", "+0.25", "2.5e-1", "\uff10.\uff12\uff15", "0x1"]
)
@pytest.mark.parametrize("encoding", ["json", "form"])
def test_rates_as_strings_follow_the_wire_grammar(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client, vat: str, encoding: str
) -> None:
    """A rate sent as a string was read by msgspec's Decimal, that is Python's Decimal(),
    which takes spaces, underscores, a sign, an exponent and non-ASCII digits: the strings
    every other number of both faces refuses (settle.grammar)."""
    new_customer(reepay, "c")
    if encoding == "json":
        line = {"ordertext": "x", "amount": 100, "vat": vat}
        response = reepay.post("/customer/c/invoice", json={"handle": "h", "order_lines": [line]})
    else:
        pairs = [
            ("handle", "h"),
            ("order_lines[0][ordertext]", "x"),
            ("order_lines[0][amount]", "100"),
            ("order_lines[0][vat]", vat),
        ]
        response = reepay.post(
            "/customer/c/invoice",
            content=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    error = assert_error(response, 422, 1)
    assert error["message"].startswith("order_lines[0].vat"), error
    assert _count_rows(server, project) == (0, 0, 0)


def test_rates_as_numbers_strings_or_null(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    lines = [
        {"ordertext": "number", "amount": 100, "vat": 0.25},
        {"ordertext": "string", "amount": 100, "vat": "0.250"},
        {"ordertext": "exponent", "amount": 100, "vat": 2.5e-1},
        {"ordertext": "null", "amount": 100, "vat": None},
        {"ordertext": "absent", "amount": 100},
    ]
    made = reepay.post("/customer/c/invoice", json={"handle": "rates", "order_lines": lines})
    assert made.status_code == 200, made.text
    shown = [(line["vat"], line["amount_vat"]) for line in made.json()["order_lines"]]
    assert shown == [(0.25, 20), (0.25, 20), (0.25, 20), (0, 0), (0, 0)]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b'{"handle": "h", "order_lines": [', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"<xml/>", "application/xml"),
        (b"", "application/json"),  # no body where the document requires one
        (b"  ", ""),
    ],
)
def test_malformed_bodies_are_4xx_and_write_nothing(
    server: RunningServer,
    project: IssuedKeys,
    reepay: httpx.Client,
    content: bytes,
    content_type: str,
) -> None:
    new_customer(reepay, "c")
    response = reepay.post(
        "/customer/c/invoice", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code in (400, 415), response.text
    assert response.json()["code"] == 1
    assert _count_rows(server, project) == (0, 0, 0)


def test_an_unknown_customer_is_code_9(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    body = assert_error(reepay.post("/customer/nobody/invoice", json=invoice_body("i")), 404, 9)
    assert body["error"] == "Customer not found"
    # A handle no customer can have is not found whatever the body (checked first).
    for ref in ("x" * 256, "a%20b", "%27%20OR%201%3D1"):
        assert_error(reepay.post(f"/customer/{ref}/invoice", json={}), 404, 9)
        assert_error(reepay.put(f"/invoice/{ref}/metadata", json=[]), 404, 31)
        assert_error(reepay.put(f"/invoice/{ref}/billing_address", json=[]), 404, 31)
        assert_error(reepay.put(f"/customer/{ref}", json=[]), 404, 9)
    assert _count_rows(server, project) == (0, 0, 0)


def test_a_reused_handle_is_code_11_and_the_first_invoice_stays(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    new_customer(reepay, "c2")
    first = new_invoice(reepay, "c1", "dup")
    again = reepay.post("/customer/c2/invoice", json=invoice_body("dup", currency="EUR"))
    body = assert_error(again, 400, 11)
    assert body["error"] == "Duplicate handle"
    assert reepay.get("/invoice/dup").json() == first
    assert _count_rows(server, project) == (1, 1, 1)


def test_handles_are_unique_per_project_and_mode_only(
    server: RunningServer, reepay: httpx.Client
) -> None:
    other = create_project(server.database_url, "other")
    with reepay_client(server, other.reepay_private_key) as theirs:
        for c in (reepay, theirs):
            new_customer(c, "same")
            new_invoice(c, "same", "same-handle")


def test_concurrent_creates_with_one_handle_make_one_invoice(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "racer")
    statuses: list[tuple[int, int | None]] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        with reepay_client(server, project.reepay_private_key) as c:
            barrier.wait()
            response = c.post("/customer/racer/invoice", json=invoice_body("raced"))
            code = response.json().get("code") if response.status_code != 200 else None
            statuses.append((response.status_code, code))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses, key=str) == sorted([(200, None)] + [(400, 11)] * 7, key=str)
    assert _count_rows(server, project) == (1, 1, 1)


def test_get_invoice_by_id_or_handle_and_unknown_ones_are_code_31(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    created = new_invoice(reepay, "c", "inv-7")
    assert reepay.get(f"/invoice/{created['id']}").json()["handle"] == "inv-7"
    for ref in ("nope", "iv_" + "0" * 32, "x" * 300, "a%20b", "%27%3B--"):
        body = assert_error(reepay.get(f"/invoice/{ref}"), 404, 31)
        assert body["error"] == "Invoice not found"


def test_a_processout_invoice_is_visible_here(reepay: httpx.Client, client: httpx.Client) -> None:
    customer_id = client.post("/customers", json={"first_name": "Po"}).json()["customer"]["id"]
    created = client.post(
        "/invoices",
        json={
            "name": "Order 12",
            "amount": "12.50",
            "currency": "EUR",
            "customer_id": customer_id,
            "tax": {"amount": "2.50", "rate": "25"},
            "details": [
                {"name": "Book", "amount": "5.25", "quantity": 2},
                {"name": "Bag", "amount": "2.00"},
            ],
            "billing": {"address1": "Rue 1", "zip": "75001", "country_code": "FR"},
            "metadata": {"k": "v"},
        },
    ).json()["invoice"]
    invoice = reepay.get(f"/invoice/{created['id']}").json()
    assert invoice["id"] == invoice["handle"] == created["id"]
    assert invoice["customer"] == customer_id
    assert invoice["state"] == "pending"
    assert invoice["amount"] == 1250
    assert invoice["amount_vat"] == 250 and invoice["amount_ex_vat"] == 1000
    book, bag = invoice["order_lines"]
    assert (book["ordertext"], book["unit_amount"], book["quantity"], book["amount"]) == (
        "Book",
        525,
        2,
        1050,
    )
    assert book["vat"] == 0 and book["amount_vat"] == 0 and book["amount_defined_incl_vat"]
    assert (bag["amount"], bag["amount_ex_vat"]) == (200, 200)
    assert invoice["billing_address"] == {
        "address": "Rue 1",
        "postal_code": "75001",
        "country": "FR",
    }
    assert reepay.get(f"/invoice/{created['id']}/metadata").json() == {"k": "v"}
    # Without a customer (the vendor's schema requires one: checked here without it).
    bare = client.post("/invoices", json={"amount": "1", "currency": "JPY"}).json()["invoice"]
    shown = reepay.get(f"/invoice/{bare['id']}", headers={NO_CUSTOMER_HEADER: "1"}).json()
    assert shown["amount"] == 1 and shown["order_lines"] == []


def test_a_processout_update_cannot_leave_less_than_the_lines_vat(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    """PUT /invoices/{id} checked a new amount against the ProcessOut tax only: an invoice
    made here with 20.00 of VAT in its lines took an amount of 1.00 and was then shown with
    amount_vat 2000 and amount_ex_vat -1900."""
    new_customer(reepay, "c")
    made = new_invoice(reepay, "c", "vat-lines", currency="EUR")  # 100.00 incl. 25 % VAT
    assert (made["amount"], made["amount_vat"]) == (10000, 2000)
    response = client.put(f"/invoices/{made['id']}", json={"amount": "19.99"})
    assert response.status_code == 400, response.text
    assert response.json()["error_type"] == "request.validation.tax-exceeds-amount"
    assert response.json()["message"].startswith("amount:")
    shown = reepay.get("/invoice/vat-lines").json()
    assert (shown["amount"], shown["amount_vat"], shown["amount_ex_vat"]) == (10000, 2000, 8000)
    # Down to the VAT itself is allowed; so is any amount once details without rates replace
    # the lines.
    assert client.put(f"/invoices/{made['id']}", json={"amount": "20.00"}).status_code == 200
    shown = reepay.get("/invoice/vat-lines").json()
    assert (shown["amount"], shown["amount_vat"], shown["amount_ex_vat"]) == (2000, 2000, 0)
    body = {"amount": "1.00", "details": [{"name": "x", "amount": "1.00"}]}
    assert client.put(f"/invoices/{made['id']}", json=body).status_code == 200
    shown = reepay.get("/invoice/vat-lines").json()
    assert (shown["amount"], shown["amount_vat"], shown["amount_ex_vat"]) == (100, 0, 100)


@pytest.mark.parametrize(
    ("currency", "lines", "tax"),
    [
        # 2 x 100.00 incl. 25 % (40.00) and 4.00 excl. 25 % (1.00 on top).
        (
            "EUR",
            [
                {"ordertext": "a", "amount": 10000, "quantity": 2, "vat": 0.25},
                {"ordertext": "b", "amount": 400, "vat": "0.25", "amount_incl_vat": False},
            ],
            {"amount": "41", "rate": "25"},
        ),
        # Per unit: 1000 JPY incl. 10 % is 90.9.. -> 91 of VAT, x3 (not 3000 x 10/110 = 273);
        # no decimals in JPY.
        (
            "JPY",
            [{"ordertext": "a", "amount": 1000, "quantity": 3, "vat": 0.1}],
            {"amount": "273", "rate": "10"},
        ),
        # 1.234 KWD incl. 5 %: 58.76.. -> 59 fils a unit, x2; three decimals in KWD.
        (
            "KWD",
            [{"ordertext": "a", "amount": 1234, "quantity": 2, "vat": 0.05}],
            {"amount": "0.118", "rate": "5"},
        ),
        (
            "KWD",
            [{"ordertext": "a", "amount": 1000, "vat": 0.055}],
            {"amount": "0.052", "rate": "5.5"},
        ),
        # Two rates: the VAT of each line, and no one rate of the invoice.
        (
            "EUR",
            [
                {"ordertext": "a", "amount": 1000, "vat": 0.25},
                {"ordertext": "b", "amount": 1000, "vat": 0.1},
            ],
            {"amount": "2.91", "rate": None},
        ),
    ],
)
def test_the_vat_of_reepay_lines_is_the_processout_tax(
    reepay: httpx.Client,
    client: httpx.Client,
    sdk: Any,
    currency: str,
    lines: list[dict[str, Any]],
    tax: dict[str, str | None],
) -> None:
    """An invoice made here with VAT on its lines showed no tax through ProcessOut: its
    ``tax`` is the VAT included in its amount, the same figure as ``amount_vat`` here."""
    new_customer(reepay, "c")
    made = new_invoice(reepay, "c", "vat", currency=currency, order_lines=lines)
    assert format_amount(made["amount_vat"], currency) == tax["amount"]
    found = client.get(f"/invoices/{made['id']}").json()["invoice"]
    assert found["tax"] == tax
    listed = client.get("/invoices").json()["invoices"]
    assert [iv["tax"] for iv in listed] == [tax]
    events = client.get("/events").json()["events"]
    assert [e["data"]["invoice"]["tax"] for e in events if e["name"] == "invoice.created"] == [tax]
    # The official client reads it as its InvoiceTax.
    shown = sdk.new_invoice().find(made["id"]).tax
    assert (shown.amount, shown.rate) == (tax["amount"], tax["rate"])


def test_a_processout_tax_change_must_be_the_vat_of_reepay_lines(
    reepay: httpx.Client, client: httpx.Client, sdk: Any
) -> None:
    """PUT /invoices/{id} took any tax for an invoice whose lines carry VAT: stored, shown by
    the ProcessOut face while the Reepay face showed the lines' VAT. Now the lines' VAT is the
    tax of both, and another one is a 400 that changes nothing."""
    new_customer(reepay, "c")
    made = new_invoice(reepay, "c", "vat-tax", currency="EUR")  # 100.00 incl. 25 % VAT
    own = {"amount": "20", "rate": "25"}
    events = len(client.get("/events").json()["events"])
    for other in ({"amount": "5", "rate": "25"}, {"amount": "20", "rate": "20"}, {"amount": "0"}):
        response = client.put(f"/invoices/{made['id']}", json={"tax": other})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["success"] is False
        assert body["error_type"] == "request.validation.error"
        assert body["message"].startswith("tax: the invoice's tax is the VAT of its lines")
    assert client.get(f"/invoices/{made['id']}").json()["invoice"]["tax"] == own
    assert reepay.get("/invoice/vat-tax").json() == made
    assert len(client.get("/events").json()["events"]) == events
    # Its own tax (or a part of it) is taken, with a new amount.
    for same in (own, {"amount": "20"}, {"rate": "25.0"}):
        response = client.put(f"/invoices/{made['id']}", json={"amount": "99", "tax": same})
        assert response.status_code == 200, response.text
        assert response.json()["invoice"]["tax"] == own
    assert reepay.get("/invoice/vat-tax").json()["amount_vat"] == 2000
    # The official client writes back what it read (its details too, which replace the lines:
    # details carry no rates, so the tax it sends is then the invoice's own).
    invoice = sdk.new_invoice().find(made["id"])
    invoice.update(made["id"])
    assert client.get(f"/invoices/{made['id']}").json()["invoice"]["tax"] == own
    assert reepay.get("/invoice/vat-tax").json()["amount_vat"] == 2000


def test_a_paid_invoice_shows_its_payment(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "payer")
    invoice = new_invoice(reepay, "payer", "to-pay", currency="EUR")
    card = client.post(
        "/cards",
        json={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc2": "123"},
    ).json()["card"]["id"]
    captured = client.post(f"/invoices/{invoice['id']}/capture", json={"source": card})
    assert captured.status_code == 200, captured.text
    paid = reepay.get("/invoice/to-pay").json()
    assert paid["state"] == "settled"
    assert paid["settled_amount"] == 10000
    assert "settled" in paid and "authorized" in paid
    customer = reepay.get("/customer/payer").json()
    assert customer["settled_invoices"] == 1 and customer["pending_invoices"] == 0


def test_metadata_get_put_delete(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c")
    created = new_invoice(reepay, "c", "meta", metadata={"a": "1"})
    assert reepay.get("/invoice/meta/metadata").json() == {"a": "1"}
    # The ProcessOut face renders (and caches) the invoice before the change.
    assert client.get(f"/invoices/{created['id']}").json()["invoice"]["metadata"] == {"a": "1"}
    response = reepay.put("/invoice/meta/metadata", json={"b": "2", "c": "3"})
    assert response.status_code == 200 and response.json() == {"b": "2", "c": "3"}
    assert reepay.get(f"/invoice/{created['id']}/metadata").json() == {"b": "2", "c": "3"}
    assert client.get(f"/invoices/{created['id']}").json()["invoice"]["metadata"] == {
        "b": "2",
        "c": "3",
    }
    response = reepay.delete("/invoice/meta/metadata")
    assert response.status_code == 200 and response.content == b""
    assert reepay.get("/invoice/meta/metadata").json() == {}
    assert client.get(f"/invoices/{created['id']}").json()["invoice"]["metadata"] == {}
    bad: object
    for bad in ({"n": 1}, {"k": "x" * 5000}, [], {str(i): "v" for i in range(101)}):
        assert_error(reepay.put("/invoice/meta/metadata", json=bad), 422, 1)
    assert_error(reepay.get("/invoice/nope/metadata"), 404, 31)
    assert_error(reepay.put("/invoice/nope/metadata", json={}), 404, 31)
    assert_error(reepay.delete("/invoice/nope/metadata"), 404, 31)


def test_addresses_are_set_whole_and_shown(reepay: httpx.Client) -> None:
    new_customer(reepay, "c")
    created = new_invoice(reepay, "c", "addr", billing_address={"city": "Odense"})
    response = reepay.put(
        f"/invoice/{created['id']}/billing_address",
        json={"company": "Doe ApS", "vat": "DK1", "country": "se", "attention": "Jane"},
    )
    assert response.status_code == 200
    billing = {"company": "Doe ApS", "vat": "DK1", "country": "SE", "attention": "Jane"}
    assert response.json()["billing_address"] == billing
    response = reepay.put("/invoice/addr/shipping_address", json={"address": "Dock 4"})
    assert response.json()["shipping_address"] == {"address": "Dock 4"}
    assert response.json()["billing_address"] == billing
    shown = reepay.get("/invoice/addr").json()
    assert shown["billing_address"] == billing
    assert shown["amount"] == created["amount"]
    assert_error(reepay.put("/invoice/addr/billing_address", json={"country": "ZZ"}), 422, 1)
    assert_error(reepay.put("/invoice/nope/shipping_address", json={}), 404, 31)


@pytest.mark.parametrize(
    "path", ["/customer/c", "/invoice/i/metadata", "/invoice/i/billing_address"]
)
def test_a_put_without_a_body_is_400_and_changes_nothing(reepay: httpx.Client, path: str) -> None:
    """An empty PUT does not read as ``{}`` (which would wipe what the PUT sets)."""
    new_customer(reepay, "c", email="c@example.com")
    reepay.post("/customer/c/invoice", json=invoice_body("i") | {"metadata": {"k": "v"}})
    before = reepay.get(path).json() if path.endswith("metadata") else None
    assert_error(reepay.put(path), 400, 1)
    assert reepay.get("/customer/c").json()["email"] == "c@example.com"
    if before is not None:
        assert reepay.get(path).json() == before == {"k": "v"}


def test_a_customer_deleted_by_another_worker_is_71_and_writes_nothing(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    """A create keeps the customer its handle named as a hint (``customers.HandleHints``);
    a delete this process did not see (another worker's, here written behind the API's
    back) makes the hinted hold fail, and the request runs again with a lookup: code 71, as
    without the hint, and no invoice written. Then a live customer of another handle is
    unaffected."""
    new_customer(reepay, "c-hint")
    new_customer(reepay, "c-other")
    assert new_invoice(reepay, "c-hint", "iv-hint-1")["customer"] == "c-hint"  # hint made
    execute(
        server.database_url,
        "UPDATE customers SET deleted_at = 1 WHERE handle = $1 AND project_id = $2",
        "c-hint",
        project.project.id,
    )
    for _ in range(2):  # the second without the hint, dropped by the first
        answer = reepay.post("/customer/c-hint/invoice", json=invoice_body("iv-hint-2"))
        assert_error(answer, 404, 71)
    rows = query(
        server.database_url,
        "SELECT handle FROM invoices WHERE project_id = $1 ORDER BY seq",
        project.project.id,
    )
    assert rows == [("iv-hint-1",)]
    assert new_invoice(reepay, "c-other", "iv-hint-3")["customer"] == "c-other"


def test_a_hint_whose_customer_changed_handle_is_not_trusted(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    """No API changes a customer's handle, but the domain could: a hint (handle -> id) is
    held together with its handle, so that a customer renamed behind it, and another
    customer given the old handle, get the invoice that names them."""
    new_customer(reepay, "c-renamed")
    assert new_invoice(reepay, "c-renamed", "iv-ren-1")["customer"] == "c-renamed"  # hint made
    execute(
        server.database_url,
        "UPDATE customers SET handle = $1 WHERE handle = $2 AND project_id = $3",
        "c-renamed-2",
        "c-renamed",
        project.project.id,
    )
    new_customer(reepay, "c-renamed")  # a new customer takes the old handle
    assert new_invoice(reepay, "c-renamed", "iv-ren-2")["customer"] == "c-renamed"
    rows = query(
        server.database_url,
        "SELECT i.handle, c.handle FROM invoices i JOIN customers c ON c.id = i.customer_id"
        " WHERE i.project_id = $1 ORDER BY i.seq",
        project.project.id,
    )
    assert rows == [("iv-ren-1", "c-renamed-2"), ("iv-ren-2", "c-renamed")]
