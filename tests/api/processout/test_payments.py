"""ProcessOut payments over HTTP: cards, customer tokens, authorize, capture, void, increment,
refunds, and the transaction reads, against a live server on each backend.

Every rule is checked from the outside (the answers, then GET of what the answer claims), and
behind the API where the API cannot tell (the card number and CVC are nowhere in the database;
one gateway operation per operation key). An illegal move is a clear 4xx that changes nothing:
the transaction read before and after is the same, field for field.
"""

from __future__ import annotations

import json
import secrets
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from settle.db.sqlite import sqlite_path
from settle.payments.sandbox import TEST_CARDS
from tests.api.processout.invoices_support import guard
from tests.conftest import RunningServer
from tests.dbcheck import files_containing, query, table_names

NUMBER = "4242424242424242"
CVC = "7391"
AMOUNTS: tuple[str, ...] = (
    "amount",
    "authorized_amount",
    "captured_amount",
    "refunded_amount",
    "available_amount",
    "voided_amount",
)


@pytest.fixture(autouse=True)
def _no_server_errors(client: httpx.Client) -> None:
    guard(client)


# --- helpers -----------------------------------------------------------------------------------


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True, body
    return body


def refused(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    """The error's message, after checking its status, code and (if given) named field."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error_type"] == code, body
    message: str = body["message"]
    if field is not None:
        assert message.startswith(f"{field}:"), message
    return message


def new_card(client: httpx.Client, number: str = NUMBER, **more: Any) -> str:
    body = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc2": "123", **more}
    card_id: str = ok(client.post("/cards", json=body))["card"]["id"]
    return card_id


def new_invoice(
    client: httpx.Client, amount: str = "10.00", currency: str = "EUR", **more: Any
) -> dict[str, Any]:
    body = {"name": "Amazing item", "amount": amount, "currency": currency, **more}
    invoice: dict[str, Any] = ok(client.post("/invoices", json=body))["invoice"]
    return invoice


def new_customer(client: httpx.Client, email: str = "jane@example.com") -> str:
    customer_id: str = ok(client.post("/customers", json={"email": email}))["customer"]["id"]
    return customer_id


def transaction_of(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    tr: dict[str, Any] = ok(client.get(f"/invoices/{invoice_id}/transactions"))["transaction"]
    return tr


def amounts(tr: dict[str, Any]) -> dict[str, Decimal]:
    return {name: Decimal(tr[name]) for name in AMOUNTS}


def expect(tr: dict[str, Any], status: str, **want: str) -> None:
    """``tr`` has ``status`` and the amounts ``want`` (the others 0, ``amount`` aside)."""
    assert tr["status"] == status, tr
    got = amounts(tr)
    for name in AMOUNTS[1:]:
        assert got[name] == Decimal(want.get(name, "0")), (name, tr)
    for name, value in want.items():
        assert got[name] == Decimal(value), (name, tr)


def ops(tr: dict[str, Any]) -> list[tuple[str, str, Decimal]]:
    return [(op["type"], op["status"], Decimal(op["amount"])) for op in tr["operations"]]


def pay(
    client: httpx.Client, invoice_id: str, action: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return client.post(f"/invoices/{invoice_id}/{action}", json=body or {})


def sale(client: httpx.Client, amount: str = "10.00", number: str = NUMBER) -> dict[str, Any]:
    """A captured invoice: its transaction."""
    invoice = new_invoice(client, amount)
    tr: dict[str, Any] = ok(
        pay(client, invoice["id"], "capture", {"source": new_card(client, number)})
    )["transaction"]
    return tr


def unchanged(client: httpx.Client, invoice_id: str, before: dict[str, Any]) -> None:
    after = transaction_of(client, invoice_id)
    assert after == before


def operation_keys(database_url: str, transaction_id: str) -> list[tuple[str, str, str]]:
    rows = query(
        database_url,
        "SELECT operation_key, type, status FROM transaction_operations"
        " WHERE transaction_id = $1 ORDER BY seq",
        transaction_id,
    )
    return [(str(k), str(t), str(s)) for k, t, s in rows]


def gateway_calls(database_url: str, transaction_id: str) -> list[tuple[str, str]]:
    """(operation key, kind) of every operation the sandbox gateway recorded for it."""
    rows = query(
        database_url,
        "SELECT s.operation_key, s.kind FROM sandbox_operations s"
        " JOIN transaction_operations o ON o.operation_key = s.operation_key"
        " WHERE o.transaction_id = $1 ORDER BY s.created_at",
        transaction_id,
    )
    return [(str(k), str(t)) for k, t in rows]


# --- cards ---------------------------------------------------------------------------------


def luhn_number(prefix: str = "4", length: int = 16) -> str:
    """A random card number that passes the Luhn check (no other test uses it)."""
    digits = prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(digits + check)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits + check
    raise AssertionError("unreachable")


def test_a_card_shows_what_may_be_shown_and_never_its_number_or_cvc(
    client: httpx.Client, server: RunningServer
) -> None:
    number = luhn_number()
    spaced = f"{number[:4]} {number[4:8]}-{number[8:12]} {number[12:]}"
    body = {
        "number": spaced,
        "exp_month": "7",
        "exp_year": "2032",
        "cvc2": CVC,
        "name": "Jane Doe",
        "metadata": {"k": "v"},
    }
    response = client.post("/cards", json=body)
    card = ok(response)["card"]
    assert number not in response.text and spaced not in response.text
    shown = {k: v for k, v in card.items() if k not in ("id", "project_id", "created_at")}
    assert CVC not in json.dumps(shown).replace(card["fingerprint"], "")
    assert card["id"].startswith("card_")
    assert (card["scheme"], card["iin"], card["last_4_digits"]) == ("visa", number[:6], number[-4:])
    assert (card["exp_month"], card["exp_year"], card["name"]) == (7, 2032, "Jane Doe")
    assert card["cvc_check"] == "unchecked" and card["metadata"] == {"k": "v"}
    assert "number" not in card and "cvc2" not in card and "cvc" not in card
    # The same card again has the same fingerprint; another card another one.
    again = ok(client.post("/cards", json={**body, "number": number}))["card"]
    other = ok(client.post("/cards", json={**body, "number": "5555555555554444"}))["card"]
    assert again["fingerprint"] == card["fingerprint"] != other["fingerprint"]
    assert other["scheme"] == "mastercard"
    assert ok(client.get(f"/cards/{card['id']}"))["card"] == card
    # Pay with it (a number outside the sandbox's table: declined), so that every table a
    # card reaches has rows of it.
    invoice = new_invoice(client)
    tr = ok(pay(client, invoice["id"], "capture", {"source": card["id"]}))["transaction"]
    assert (tr["status"], tr["card_id"]) == ("failed", card["id"])
    for answer in (
        client.get("/cards"),
        client.get(f"/cards/{card['id']}"),
        client.get("/transactions"),
    ):
        assert number not in answer.text and spaced not in answer.text
    assert_nowhere_in_database(server.database_url, [number, spaced], CVC, card)


def assert_nowhere_in_database(
    database_url: str, numbers: list[str], cvc: str, card: dict[str, Any]
) -> None:
    """Grep the database for the card number; the CVC in every value of the card's rows."""
    if database_url.startswith("sqlite:"):
        path = Path(sqlite_path(database_url))
        files = [str(p) for p in (path, Path(f"{path}-wal")) if p.exists()]
        assert files
        # Read by another process: closing the file here would drop the in-process server's
        # POSIX locks on it (this did corrupt the test database once another process used it).
        assert files_containing(files, numbers) == []
    else:
        for table in sorted(table_names(database_url)):
            for (text,) in query(database_url, f"SELECT CAST(t AS text) FROM {table} t"):
                for number in numbers:
                    assert number not in str(text), f"{number} found in a row of {table}"
    rows = query(database_url, "SELECT * FROM cards WHERE id = $1", card["id"])
    rows += query(
        database_url,
        "SELECT v.* FROM sandbox_vault v JOIN cards c ON c.gateway_reference = v.reference"
        " WHERE c.id = $1",
        card["id"],
    )
    assert len(rows) == 2
    for row in rows:
        for value in row:
            text = str(value)
            if text in (card["id"], card["fingerprint"]) or text.startswith("sbxcard_"):
                continue
            assert text != cvc and (not isinstance(value, str) or cvc not in text), row


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"number": "4242424242424241"}, "number", "card.invalid-number"),  # Luhn
        ({"number": "42424242424"}, "number", "card.invalid-number"),  # 11 digits
        ({"number": "42424242424242424242"}, "number", "card.invalid-number"),  # 20 digits
        ({"number": "4242x24242424242"}, "number", "card.invalid-number"),
        ({"number": "\uff14\uff12" * 8}, "number", "card.invalid-number"),
        ({"number": None}, "number", "card.invalid-number"),
        ({"number": ""}, "number", "card.invalid-number"),
        ({"exp_month": 13}, "exp_month", "card.invalid-expiry"),
        ({"exp_month": 0}, "exp_month", "card.invalid-expiry"),
        ({"exp_month": None}, "exp_month", "card.invalid-expiry"),
        ({"exp_year": 2020}, "exp_year", "card.invalid-expiry"),
        ({"exp_year": "19"}, "exp_year", "card.invalid-expiry"),
        ({"exp_year": 2999}, "exp_year", "card.invalid-expiry"),
        ({"exp_year": None}, "exp_year", "card.invalid-expiry"),
        ({"cvc2": "12"}, "cvc2", "card.invalid-cvc"),
        ({"cvc2": "12345"}, "cvc2", "card.invalid-cvc"),
        ({"cvc2": "12a"}, "cvc2", "card.invalid-cvc"),
    ],
)
def test_a_bad_card_is_refused_naming_the_field_and_nothing_is_kept(
    client: httpx.Client, change: dict[str, Any], field: str, code: str
) -> None:
    body = {"number": NUMBER, "exp_month": 12, "exp_year": 2031, "cvc2": "123", **change}
    response = client.post("/cards", json=body)
    message = refused(response, 400, code, field)
    number = str(body["number"] or "")
    assert not number or number not in message
    assert ok(client.get("/cards"))["cards"] == []


def test_an_expiry_this_month_and_a_two_digit_year_are_accepted(client: httpx.Client) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    card = ok(
        client.post(
            "/cards",
            json={"number": NUMBER, "exp_month": now.month, "exp_year": now.year % 100},
        )
    )["card"]
    assert (card["exp_month"], card["exp_year"]) == (now.month, now.year)
    assert card["cvc_check"] == "unavailable"  # no CVC given


def test_cards_list_find_and_anonymize(client: httpx.Client) -> None:
    first = new_card(client, name="First")
    second = new_card(client, "5555555555554444", name="Second")
    listed = ok(client.get("/cards"))["cards"]
    assert [c["id"] for c in listed] == [second, first]  # newest first
    page = ok(client.get("/cards", params={"limit": 1}))
    assert [c["id"] for c in page["cards"]] == [second] and page["has_more"] is True
    refused(client.get("/cards/card_" + "x" * 32), 404, "resource.card.not-found")
    refused(client.get("/cards/nope"), 404, "resource.card.not-found")

    assert ok(client.delete(f"/cards/{first}")) == {"success": True}
    card = ok(client.get(f"/cards/{first}"))["card"]
    assert card["name"] is None and card["fingerprint"] is None
    assert (card["last_4_digits"], card["scheme"]) == ("4242", "visa")  # history stays
    assert ok(client.delete(f"/cards/{first}")) == {"success": True}  # again: still anonymized
    refused(client.delete("/cards/card_" + "y" * 32), 404, "resource.card.not-found")

    # An anonymized card cannot pay: refused before anything is tried.
    invoice = new_invoice(client)
    before = transaction_of(client, invoice["id"])
    for action in ("authorize", "capture"):
        refused(pay(client, invoice["id"], action, {"source": first}), 400, "token.not-usable")
    unchanged(client, invoice["id"], before)
    # ... nor be saved as a token.
    customer = new_customer(client)
    response = client.post(f"/customers/{customer}/tokens", json={"source": first})
    refused(response, 400, "token.not-usable")
    assert ok(client.get(f"/customers/{customer}/tokens"))["tokens"] == []
    # The other card still pays.
    ok(pay(client, invoice["id"], "authorize", {"source": second}))


def test_a_token_whose_card_was_anonymized_cannot_pay(client: httpx.Client) -> None:
    customer = new_customer(client)
    card = new_card(client)
    token = ok(client.post(f"/customers/{customer}/tokens", json={"source": card}))["token"]
    ok(client.delete(f"/cards/{card}"))
    found = ok(client.get(f"/customers/{customer}/tokens/{token['id']}"))["token"]
    assert found["is_chargeable"] is False
    invoice = new_invoice(client, customer_id=customer)
    before = transaction_of(client, invoice["id"])
    response = pay(client, invoice["id"], "authorize", {"source": token["id"]})
    refused(response, 400, "token.not-usable")
    unchanged(client, invoice["id"], before)


# --- tokens --------------------------------------------------------------------------------


def test_tokens_create_list_find_set_default_and_delete(client: httpx.Client) -> None:
    customer = new_customer(client)
    card_a, card_b = new_card(client), new_card(client, "5555555555554444")
    made = client.post(
        f"/customers/{customer}/tokens",
        json={"source": card_a, "set_default": True, "description": "main", "metadata": {"a": "1"}},
    )
    body = ok(made)
    a = body["token"]
    assert a["id"].startswith("tok_") and body.get("customer_action") is None
    assert (a["customer_id"], a["card_id"], a["is_default"]) == (customer, card_a, True)
    assert (a["description"], a["metadata"], a["is_chargeable"]) == ("main", {"a": "1"}, True)
    assert a["card"]["id"] == card_a and NUMBER not in made.text
    assert ok(client.get(f"/customers/{customer}"))["customer"]["default_token_id"] == a["id"]

    b = ok(client.post(f"/customers/{customer}/tokens", json={"source": card_b}))["token"]
    assert b["is_default"] is False
    assert ok(client.get(f"/customers/{customer}"))["customer"]["default_token_id"] == a["id"]
    listed = ok(client.get(f"/customers/{customer}/tokens"))
    assert [(t["id"], t["is_default"]) for t in listed["tokens"]] == [
        (b["id"], False),
        (a["id"], True),
    ]
    assert all("card" not in t and t["is_chargeable"] for t in listed["tokens"])
    # expand=card shows each token's card; an anonymized card's token is not chargeable.
    ok(client.delete(f"/cards/{card_a}"))
    expanded = ok(client.get(f"/customers/{customer}/tokens?expand=card"))["tokens"]
    assert [(t["card"]["id"], t["is_chargeable"]) for t in expanded] == [
        (card_b, True),
        (card_a, False),
    ]
    assert NUMBER not in str(expanded)
    refused(
        client.get(f"/customers/{customer}/tokens?expand=invoice"), 400, "request.validation.error"
    )
    found = ok(client.get(f"/customers/{customer}/tokens/{b['id']}"))["token"]
    assert found["card"]["last_4_digits"] == "4444" and found["card_id"] == card_b

    # PUT set_default moves the default; PUT without it changes nothing.
    url_b = f"/customers/{customer}/tokens/{b['id']}"
    assert ok(client.put(url_b, json={"set_default": True})) == {"success": True}
    assert ok(client.get(f"/customers/{customer}"))["customer"]["default_token_id"] == b["id"]
    assert ok(client.get(f"/customers/{customer}/tokens/{a['id']}"))["token"]["is_default"] is False
    ok(client.put(f"/customers/{customer}/tokens/{a['id']}", json={"set_default": None}))
    assert ok(client.get(f"/customers/{customer}"))["customer"]["default_token_id"] == b["id"]

    # DELETE: gone, and no longer the default.
    assert ok(client.delete(url_b)) == {"success": True}
    refused(client.get(url_b), 404, "resource.token.not-found")
    refused(client.delete(url_b), 404, "resource.token.not-found")
    refused(client.put(url_b, json={"set_default": True}), 404, "resource.token.not-found")
    assert ok(client.get(f"/customers/{customer}"))["customer"]["default_token_id"] is None
    assert [t["id"] for t in ok(client.get(f"/customers/{customer}/tokens"))["tokens"]] == [a["id"]]


def test_token_errors(client: httpx.Client) -> None:
    customer, other = new_customer(client), new_customer(client, "other@example.com")
    card = new_card(client)
    tokens = f"/customers/{customer}/tokens"
    refused(client.post(tokens, json={}), 400, "request.validation.error", "source")
    refused(
        client.post(tokens, json={"source": "card_" + "z" * 32}), 404, "resource.card.not-found"
    )
    missing = "cust_" + "q" * 32
    response = client.post(f"/customers/{missing}/tokens", json={"source": card})
    refused(response, 404, "resource.customer.not-found")
    refused(client.get(f"/customers/{missing}/tokens"), 404, "resource.customer.not-found")
    token = ok(client.post(tokens, json={"source": card}))["token"]["id"]
    # A token is found through its own customer only.
    refused(client.get(f"/customers/{other}/tokens/{token}"), 404, "resource.token.not-found")
    refused(client.delete(f"/customers/{other}/tokens/{token}"), 404, "resource.token.not-found")
    assert ok(client.get(f"/customers/{other}/tokens"))["tokens"] == []
    response = client.put(f"/customers/{other}", json={"default_token_id": token})
    refused(response, 404, "resource.token.not-found")
    # The customer's own: accepted.
    ok(client.put(f"/customers/{customer}", json={"default_token_id": token}))
    assert ok(client.get(f"{tokens}/{token}"))["token"]["is_default"] is True


def test_a_token_pays_only_its_own_customers_invoices(
    client: httpx.Client, server: RunningServer
) -> None:
    jane, john = new_customer(client), new_customer(client, "john@example.com")
    card = new_card(client)
    token = ok(client.post(f"/customers/{jane}/tokens", json={"source": card}))["token"]["id"]

    theirs = new_invoice(client, customer_id=john)
    nobodys = new_invoice(client)
    for invoice in (theirs, nobodys):
        before = transaction_of(client, invoice["id"])
        for action in ("authorize", "capture"):
            response = pay(client, invoice["id"], action, {"source": token})
            message = refused(response, 400, "token.not-usable", "source")
            assert jane not in message
        unchanged(client, invoice["id"], before)
        assert operation_keys(server.database_url, before["id"]) == []
    # An invoice naming another customer's token is refused at once.
    response = client.post(
        "/invoices",
        json={
            "name": "x",
            "amount": "1.00",
            "currency": "EUR",
            "customer_id": john,
            "token_id": token,
        },
    )
    refused(response, 404, "resource.token.not-found")

    mine = new_invoice(client, customer_id=jane)
    tr = ok(pay(client, mine["id"], "capture", {"source": token}))["transaction"]
    expect(tr, "completed", authorized_amount="10", captured_amount="10", available_amount="10")
    assert (tr["token_id"], tr["card_id"], tr["customer_id"]) == (token, card, jane)
    assert {op["token_id"] for op in tr["operations"]} == {token}


# --- authorize, capture, void, increment -----------------------------------------------------


def test_authorize_then_capture_part_then_the_rest(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client)
    waiting = transaction_of(client, invoice["id"])
    expect(waiting, "waiting")
    assert waiting["operations"] == [] and waiting["id"] == invoice["transaction_id"]

    body = ok(pay(client, invoice["id"], "authorize", {"source": card, "metadata": {"o": "1"}}))
    tr = body["transaction"]
    assert body["customer_action"] is None
    expect(tr, "authorized", authorized_amount="10")
    assert tr["authorized"] is True and tr["captured"] is False and tr["authorized_at"]
    assert (tr["card_id"], tr["gateway_name"], tr["cvc_check"], tr["avs_check"]) == (
        card,
        "sandbox",
        "passed",
        "passed",
    )
    assert ops(tr) == [("authorization", "succeeded", Decimal(10))]
    assert tr["operations"][0]["metadata"] == {"o": "1"}
    assert tr["operations"][0]["gateway_operation_id"].startswith("sbx_")
    assert transaction_of(client, invoice["id"]) == tr

    tr = ok(pay(client, invoice["id"], "capture", {"capture_amount": "4.00"}))["transaction"]
    expect(tr, "completed", authorized_amount="10", captured_amount="4", available_amount="4")
    assert tr["captured"] is True and tr["captured_at"]
    tr = ok(pay(client, invoice["id"], "capture"))["transaction"]  # the rest
    expect(tr, "completed", authorized_amount="10", captured_amount="10", available_amount="10")
    assert ops(tr) == [
        ("authorization", "succeeded", Decimal(10)),
        ("capture", "succeeded", Decimal(4)),
        ("capture", "succeeded", Decimal(6)),
    ]
    assert all(op["is_accountable"] and not op["is_attempt"] for op in tr["operations"])
    assert transaction_of(client, invoice["id"]) == tr
    # Nothing is left to capture.
    refused(pay(client, invoice["id"], "capture"), 400, "transaction.illegal-operation")
    refused(
        pay(client, invoice["id"], "capture", {"capture_amount": "0.01"}),
        400,
        "transaction.illegal-operation",
    )
    unchanged(client, invoice["id"], tr)


def test_a_sale_is_an_authorization_and_a_capture(client: httpx.Client) -> None:
    invoice = new_invoice(client, "25.50")
    tr = ok(pay(client, invoice["id"], "capture", {"source": new_card(client)}))["transaction"]
    expect(
        tr, "completed", authorized_amount="25.50", captured_amount="25.50", available_amount="25.5"
    )
    assert [op[:2] for op in ops(tr)] == [("authorization", "succeeded"), ("capture", "succeeded")]


def test_a_partial_sale_and_authorize_only(client: httpx.Client) -> None:
    card = new_card(client)
    invoice = new_invoice(client, "10.00")
    body = {"source": card, "capture_amount": "7.50"}
    tr = ok(pay(client, invoice["id"], "capture", body))["transaction"]
    expect(tr, "completed", authorized_amount="10", captured_amount="7.5", available_amount="7.5")
    # More than the invoice is refused before anything is tried.
    invoice = new_invoice(client, "10.00")
    before = transaction_of(client, invoice["id"])
    body = {"source": card, "capture_amount": "10.01"}
    refused(pay(client, invoice["id"], "capture", body), 400, "transaction.amount-too-high")
    unchanged(client, invoice["id"], before)
    only: dict[str, Any] = {"source": card, "authorize_only": True}
    tr = ok(pay(client, invoice["id"], "capture", only))["transaction"]
    expect(tr, "authorized", authorized_amount="10")


def test_illegal_captures_and_voids_change_nothing(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client)
    # Nothing authorized yet.
    before = transaction_of(client, invoice["id"])
    refused(pay(client, invoice["id"], "capture"), 400, "transaction.illegal-operation")
    refused(pay(client, invoice["id"], "void"), 400, "transaction.illegal-operation")
    refused(pay(client, invoice["id"], "authorize"), 400, "request.validation.error", "source")
    response = pay(client, invoice["id"], "authorize", {"source": "card_" + "n" * 32})
    refused(response, 404, "resource.card.not-found")
    unchanged(client, invoice["id"], before)

    tr = ok(pay(client, invoice["id"], "authorize", {"source": card}))["transaction"]
    for amount, code in (
        ("10.01", "transaction.amount-too-high"),
        ("0", "transaction.amount-too-high"),
        ("-1", "request.validation.invalid-amount"),
        ("1.001", "request.validation.invalid-amount"),
        ("ten", "request.validation.invalid-amount"),
    ):
        response = pay(client, invoice["id"], "capture", {"capture_amount": amount})
        refused(response, 400, code, "capture_amount")
    # Authorized already: neither authorize nor a sale again.
    refused(pay(client, invoice["id"], "authorize", {"source": card}), 400, "invoice.not-payable")
    unchanged(client, invoice["id"], tr)

    tr = ok(pay(client, invoice["id"], "capture", {"capture_amount": "1.00"}))["transaction"]
    refused(pay(client, invoice["id"], "void"), 400, "transaction.illegal-operation")
    response = pay(client, invoice["id"], "capture", {"capture_amount": "9.01"})
    message = refused(response, 400, "transaction.amount-too-high")
    assert "(9 EUR, 900 minor units)" in message  # also in the units the client sent
    refused(pay(client, invoice["id"], "authorize", {"source": card}), 400, "invoice.not-payable")
    unchanged(client, invoice["id"], tr)


def test_void_releases_the_authorization(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client)
    ok(pay(client, invoice["id"], "authorize", {"source": card}))
    tr = ok(pay(client, invoice["id"], "void", {"amount": "3.00"}))["transaction"]  # all of it
    expect(tr, "voided", authorized_amount="10", voided_amount="10")
    assert tr["voided"] is True and tr["voided_at"]
    assert ops(tr)[-1] == ("void", "succeeded", Decimal(10))
    for action, body, code in (
        ("void", None, "transaction.illegal-operation"),
        ("capture", None, "transaction.illegal-operation"),
        ("increment_authorization", {"amount": "1.00"}, "transaction.illegal-operation"),
        ("refunds", {"amount": "1.00"}, "transaction.illegal-operation"),
        ("authorize", {"source": card}, "invoice.not-payable"),
        # A sale's source is ignored once authorized: it is a capture of the voided rest.
        ("capture", {"source": card}, "transaction.illegal-operation"),
    ):
        refused(pay(client, invoice["id"], action, body), 400, code)
    unchanged(client, invoice["id"], tr)


def test_increment_authorization(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client)
    refused(
        pay(client, invoice["id"], "increment_authorization", {"amount": "1.00"}),
        400,
        "transaction.illegal-operation",
    )
    ok(pay(client, invoice["id"], "authorize", {"source": card}))
    tr = ok(pay(client, invoice["id"], "increment_authorization", {"amount": "2.50"}))[
        "transaction"
    ]
    expect(tr, "authorized", authorized_amount="12.50")
    assert ops(tr)[-1] == ("increment_authorization", "succeeded", Decimal("2.5"))
    for body, status, code in (
        ({}, 400, "request.validation.missing-amount"),
        ({"amount": "0"}, 400, "request.validation.invalid-amount"),
        ({"amount": "-1.00"}, 400, "request.validation.invalid-amount"),
        ({"amount": "0.001"}, 400, "request.validation.invalid-amount"),
    ):
        refused(pay(client, invoice["id"], "increment_authorization", body), status, code)
    unchanged(client, invoice["id"], tr)
    tr = ok(pay(client, invoice["id"], "capture"))["transaction"]
    expect(
        tr, "completed", authorized_amount="12.5", captured_amount="12.5", available_amount="12.5"
    )
    response = pay(client, invoice["id"], "increment_authorization", {"amount": "1.00"})
    refused(response, 400, "transaction.illegal-operation")
    unchanged(client, invoice["id"], tr)


def test_increments_never_authorize_more_than_an_amount_can_be(client: httpx.Client) -> None:
    """Increments added up without a bound: three of 999999999999999 JPY authorized 4e15,
    past the largest amount (settle.money.MAX_MINOR) that any request can name, so the
    captured sum could not be refunded in one request; about 9,200 of them would overflow
    the signed 64-bit columns of the transaction (a 500 on every later operation)."""
    invoice = new_invoice(client, "999999999999998", "JPY")
    ok(pay(client, invoice["id"], "authorize", {"source": new_card(client)}))
    tr = ok(pay(client, invoice["id"], "increment_authorization", {"amount": "1"}))["transaction"]
    assert tr["authorized_amount"] == "999999999999999"
    response = pay(client, invoice["id"], "increment_authorization", {"amount": "1"})
    refused(response, 400, "transaction.amount-too-high", "amount")
    unchanged(client, invoice["id"], tr)
    tr = ok(pay(client, invoice["id"], "capture"))["transaction"]
    assert tr["captured_amount"] == "999999999999999"
    refund = client.post(f"/invoices/{invoice['id']}/refunds", json={"amount": "999999999999999"})
    ok(refund)


def test_the_metadata_of_each_operation_is_kept_and_shown(client: httpx.Client) -> None:
    """capture (of an authorization), void, increment_authorization and refunds accepted
    metadata and dropped it. Each operation keeps its request's metadata, shown with it in
    the transaction's operations (and a refund's as its own, as the Refund object has it);
    a sale's goes on both its operations."""
    card = new_card(client)
    voided = new_invoice(client, "10.00")
    ok(pay(client, voided["id"], "authorize", {"source": card, "metadata": {"step": "auth"}}))
    body = {"amount": "1.00", "metadata": {"step": "increment"}}
    ok(pay(client, voided["id"], "increment_authorization", body))
    tr = ok(pay(client, voided["id"], "void", {"metadata": {"step": "void", "by": "ops"}}))
    got = [(op["type"], op["metadata"]) for op in tr["transaction"]["operations"]]
    assert got == [
        ("authorization", {"step": "auth"}),
        ("increment_authorization", {"step": "increment"}),
        ("void", {"step": "void", "by": "ops"}),
    ]
    assert transaction_of(client, voided["id"])["operations"] == tr["transaction"]["operations"]

    paid = new_invoice(client, "10.00")
    ok(pay(client, paid["id"], "authorize", {"source": card}))
    ok(pay(client, paid["id"], "capture", {"capture_amount": "6.00", "metadata": {"c": "1"}}))
    tid = transaction_of(client, paid["id"])["id"]
    first = {"amount": "1.00", "metadata": {"ticket": "T-1", "note": "ø"}}
    by_invoice = ok(client.post(f"/invoices/{paid['id']}/refunds", json=first))["refund"]
    assert by_invoice["metadata"] == first["metadata"]
    second = {"amount": "2.00", "metadata": {"ticket": "T-2"}}
    by_transaction = ok(client.post(f"/transactions/{tid}/refunds", json=second))["refund"]
    assert by_transaction["metadata"] == second["metadata"]
    plain = ok(client.post(f"/transactions/{tid}/refunds", json={"amount": "0.50"}))["refund"]
    assert plain["metadata"] == {}
    found = ok(client.get(f"/transactions/{tid}/refunds/{by_invoice['id']}"))["refund"]
    assert found == by_invoice
    listed = ok(client.get(f"/transactions/{tid}/refunds"))["refunds"]
    assert [r["metadata"] for r in listed] == [first["metadata"], second["metadata"], {}]
    tr = transaction_of(client, paid["id"])
    assert [r["metadata"] for r in tr["refunds"]] == [r["metadata"] for r in listed]
    assert [(op["type"], op["metadata"]) for op in tr["operations"]] == [
        ("authorization", {}),
        ("capture", {"c": "1"}),
        ("refund", first["metadata"]),
        ("refund", second["metadata"]),
        ("refund", {}),
    ]

    sold = new_invoice(client, "3.00")
    body = {"source": card, "metadata": {"order": "7"}}
    tr = ok(pay(client, sold["id"], "capture", body))["transaction"]
    assert [op["metadata"] for op in tr["operations"]] == [{"order": "7"}, {"order": "7"}]


def test_operation_metadata_has_the_bounds_of_all_metadata(client: httpx.Client) -> None:
    """As an invoice's (schemas.Metadata): up to 100 keys of 255 characters, values strings
    of up to 4096, kept whole; past them a 400 naming the field, and nothing done."""
    card = new_card(client)
    invoice = new_invoice(client, "10.00")
    state = ok(pay(client, invoice["id"], "authorize", {"source": card}))["transaction"]
    tid = state["id"]
    routes: tuple[tuple[str, dict[str, str]], ...] = (
        (f"/invoices/{invoice['id']}/increment_authorization", {"amount": "1.00"}),
        (f"/invoices/{invoice['id']}/capture", {}),
        (f"/invoices/{invoice['id']}/refunds", {"amount": "1.00"}),
        (f"/transactions/{tid}/refunds", {"amount": "1.00"}),
    )
    for metadata, field in (
        ({f"k{i}": "v" for i in range(101)}, "metadata:"),
        ({"k" * 256: "v"}, "metadata[key]:"),
        ({"k": "v" * 4097}, "metadata[...]:"),
        ({"k": 5}, "metadata[...]:"),
        (["k"], "metadata:"),
    ):
        for path, body in (*routes, (f"/invoices/{invoice['id']}/void", {})):
            response = client.post(path, json={**body, "metadata": metadata})
            message = refused(response, 400, "request.validation.error")
            assert message.startswith(field), message
    unchanged(client, invoice["id"], state)
    at_bounds = [
        {f"k{i}": "v" for i in range(100)},
        {"k" * 255: "ø" * 4096},
        {"a": ""},
        {"k" * 255: "v", "x": "y" * 4096},
    ]
    for (path, body), metadata in zip(routes, at_bounds, strict=True):
        ok(client.post(path, json={**body, "metadata": metadata}))
    tr = transaction_of(client, invoice["id"])
    assert [op["metadata"] for op in tr["operations"]] == [{}, *at_bounds]
    assert [r["metadata"] for r in tr["refunds"]] == at_bounds[2:]


# --- refunds -------------------------------------------------------------------------------


def test_refunds_partial_repeated_up_to_what_was_captured(client: httpx.Client) -> None:
    tr = sale(client, "10.00")
    invoice_id, tid = tr["invoice_id"], tr["id"]
    body = {"amount": "3.00", "reason": "customer request", "information": "first"}
    refund = ok(client.post(f"/invoices/{invoice_id}/refunds", json=body))["refund"]
    assert refund["id"].startswith("re_") and refund["transaction_id"] == tid
    assert (Decimal(refund["amount"]), refund["reason"], refund["information"]) == (
        Decimal(3),
        "customer request",
        "first",
    )
    assert (refund["status"], refund["has_failed"], refund["sandbox"]) == ("succeeded", False, True)
    tr = transaction_of(client, invoice_id)
    expect(
        tr,
        "partially-refunded",
        authorized_amount="10",
        captured_amount="10",
        refunded_amount="3",
        available_amount="7",
    )
    assert tr["refunded"] is True and tr["refunded_at"]

    second = ok(client.post(f"/transactions/{tid}/refunds", json={"amount": "2.00"}))["refund"]
    for amount in ("5.01", "0", "100"):
        response = client.post(f"/transactions/{tid}/refunds", json={"amount": amount})
        refused(response, 400, "transaction.amount-too-high", "amount")
    response = client.post(f"/invoices/{invoice_id}/refunds", json={"amount": "5.001"})
    refused(response, 400, "request.validation.invalid-amount")
    refused(
        client.post(f"/invoices/{invoice_id}/refunds", json={}),
        400,
        "request.validation.missing-amount",
    )
    tr = transaction_of(client, invoice_id)
    expect(
        tr,
        "partially-refunded",
        authorized_amount="10",
        captured_amount="10",
        refunded_amount="5",
        available_amount="5",
    )
    listed = ok(client.get(f"/transactions/{tid}/refunds"))["refunds"]
    assert [r["id"] for r in listed] == [refund["id"], second["id"]]
    assert [r["id"] for r in tr["refunds"]] == [refund["id"], second["id"]]
    assert ok(client.get(f"/transactions/{tid}/refunds/{second['id']}"))["refund"] == second
    refused(
        client.get(f"/transactions/{tid}/refunds/re_{'x' * 32}"), 404, "resource.refund.not-found"
    )

    ok(client.post(f"/invoices/{invoice_id}/refunds", json={"amount": "5.00"}))  # the rest
    tr = transaction_of(client, invoice_id)
    expect(tr, "refunded", authorized_amount="10", captured_amount="10", refunded_amount="10")
    response = client.post(f"/invoices/{invoice_id}/refunds", json={"amount": "0.01"})
    refused(response, 400, "transaction.amount-too-high")
    assert [op[:2] for op in ops(tr)] == [
        ("authorization", "succeeded"),
        ("capture", "succeeded"),
        ("refund", "succeeded"),
        ("refund", "succeeded"),
        ("refund", "succeeded"),
    ]
    unchanged(client, invoice_id, tr)


def test_a_refund_of_given_invoice_details_is_refused_and_writes_nothing(
    client: httpx.Client, server: RunningServer
) -> None:
    """Refunds by invoice line are not made: a non-empty invoice_detail_ids was ignored, and
    the amount refunded as if none was given. It is a 400 now, leaving no trace; null (what
    the official client sends) and [] ask for no lines and refund the amount."""
    invoice = new_invoice(client, "10.00", details=[{"name": "Shoes", "amount": "10.00"}])
    tr = ok(pay(client, invoice["id"], "capture", {"source": new_card(client)}))["transaction"]
    detail_id = invoice["details"][0]["id"]
    events = ok(client.get("/events", params={"limit": 100}))["events"]
    keys = operation_keys(server.database_url, tr["id"])
    for path in (f"/invoices/{invoice['id']}/refunds", f"/transactions/{tr['id']}/refunds"):
        for ids in ([detail_id], ["iv_det_unknown"], [detail_id, detail_id]):
            body: dict[str, Any] = {"amount": "3.00", "reason": "broken", "invoice_detail_ids": ids}
            message = refused(
                client.post(path, json=body), 400, "request.not-implemented", "invoice_detail_ids"
            )
            assert "not supported" in message
    unchanged(client, invoice["id"], tr)
    assert ok(client.get(f"/transactions/{tr['id']}/refunds"))["refunds"] == []
    assert operation_keys(server.database_url, tr["id"]) == keys
    assert ok(client.get("/events", params={"limit": 100}))["events"] == events
    nothing: list[list[str] | None] = [None, []]
    for absent in nothing:
        ok(
            client.post(
                f"/transactions/{tr['id']}/refunds",
                json={"amount": "1.00", "invoice_detail_ids": absent},
            )
        )
    expect(
        transaction_of(client, invoice["id"]),
        "partially-refunded",
        authorized_amount="10",
        captured_amount="10",
        refunded_amount="2",
        available_amount="8",
    )


def test_refunds_are_bounded_by_the_captured_amount_not_the_authorized(
    client: httpx.Client,
) -> None:
    invoice = new_invoice(client, "10.00")
    ok(pay(client, invoice["id"], "authorize", {"source": new_card(client)}))
    response = client.post(f"/invoices/{invoice['id']}/refunds", json={"amount": "1.00"})
    refused(response, 400, "transaction.illegal-operation")  # nothing captured yet
    ok(pay(client, invoice["id"], "capture", {"capture_amount": "4.00"}))
    response = client.post(f"/invoices/{invoice['id']}/refunds", json={"amount": "4.01"})
    refused(response, 400, "transaction.amount-too-high")
    ok(client.post(f"/invoices/{invoice['id']}/refunds", json={"amount": "4.00"}))
    tr = transaction_of(client, invoice["id"])
    expect(tr, "refunded", authorized_amount="10", captured_amount="4", refunded_amount="4")


def test_refund_errors_name_unknown_objects(client: httpx.Client) -> None:
    body = {"amount": "1.00"}
    response = client.post(f"/transactions/tr_{'x' * 32}/refunds", json=body)
    refused(response, 404, "resource.transaction.not-found")
    refused(
        client.post(f"/invoices/iv_{'x' * 32}/refunds", json=body),
        404,
        "resource.invoice.not-found",
    )
    refused(
        client.get(f"/transactions/tr_{'x' * 32}/refunds"), 404, "resource.transaction.not-found"
    )
    waiting = new_invoice(client)
    response = client.post(f"/transactions/{waiting['transaction_id']}/refunds", json=body)
    refused(response, 400, "transaction.illegal-operation")
    assert ok(client.get(f"/transactions/{waiting['transaction_id']}/refunds"))["refunds"] == []


def test_money_follows_the_currency_exponent(client: httpx.Client) -> None:
    card = new_card(client)
    jpy = new_invoice(client, "1000", "JPY")
    response = pay(client, jpy["id"], "capture", {"source": card, "capture_amount": "999.5"})
    refused(response, 400, "request.validation.invalid-amount")
    tr = ok(pay(client, jpy["id"], "capture", {"source": card, "capture_amount": "999"}))[
        "transaction"
    ]
    assert (tr["captured_amount"], tr["currency"]) == ("999", "JPY")
    kwd = new_invoice(client, "1.235", "KWD")
    tr = ok(pay(client, kwd["id"], "capture", {"source": card}))["transaction"]
    ok(client.post(f"/transactions/{tr['id']}/refunds", json={"amount": "0.001"}))
    tr = transaction_of(client, kwd["id"])
    assert (tr["refunded_amount"], tr["available_amount"]) == ("0.001", "1.234")
    for name in AMOUNTS:
        assert isinstance(tr[name], str)


# --- reads ---------------------------------------------------------------------------------


def test_transaction_reads(client: httpx.Client) -> None:
    jane, john = new_customer(client), new_customer(client, "john@example.com")
    card = new_card(client)
    paid = new_invoice(client, "3.00", customer_id=jane)
    tr = ok(pay(client, paid["id"], "capture", {"source": card}))["transaction"]
    other = new_invoice(client, "4.00", customer_id=john)
    waiting = new_invoice(client, "5.00", customer_id=jane)

    assert ok(client.get(f"/transactions/{tr['id']}"))["transaction"] == tr
    assert transaction_of(client, paid["id"]) == tr
    listed = ok(client.get("/transactions"))
    ids = [t["id"] for t in listed["transactions"]]
    assert ids == [waiting["transaction_id"], other["transaction_id"], tr["id"]]
    assert listed["has_more"] is False
    assert listed["transactions"][2] == tr  # with its operations
    page = ok(client.get("/transactions", params={"limit": 2, "order": "asc"}))
    assert [t["id"] for t in page["transactions"]] == [tr["id"], other["transaction_id"]]
    assert page["has_more"] is True
    mine = ok(client.get(f"/customers/{jane}/transactions"))["transactions"]
    assert [t["id"] for t in mine] == [waiting["transaction_id"], tr["id"]]
    theirs = ok(client.get(f"/customers/{john}/transactions"))["transactions"]
    assert [t["id"] for t in theirs] == [other["transaction_id"]]
    assert theirs[0]["status"] == "waiting" and theirs[0]["operations"] == []
    expanded = ok(client.get(f"/invoices/{paid['id']}", params={"expand": "transaction"}))
    assert expanded["invoice"]["transaction"] == tr

    unknown = "tr_" + "u" * 32
    refused(client.get(f"/transactions/{unknown}"), 404, "resource.transaction.not-found")
    refused(client.get(f"/invoices/iv_{'u' * 32}/transactions"), 404, "resource.invoice.not-found")
    response = client.get(f"/customers/cust_{'u' * 32}/transactions")
    refused(response, 404, "resource.customer.not-found")


def test_another_projects_payments_are_invisible(
    client: httpx.Client, server: RunningServer
) -> None:
    tr = sale(client)
    card = tr["card_id"]
    keys = server.create_project("other")
    with httpx.Client(
        base_url=server.url, auth=(keys.processout_username, keys.processout_password)
    ) as other:
        refused(other.get(f"/transactions/{tr['id']}"), 404, "resource.transaction.not-found")
        refused(other.get(f"/cards/{card}"), 404, "resource.card.not-found")
        assert ok(other.get("/transactions"))["transactions"] == []
        assert ok(other.get("/cards"))["cards"] == []
        invoice = new_invoice(other)
        response = pay(other, invoice["id"], "authorize", {"source": card})
        refused(response, 404, "resource.card.not-found")
        response = other.post(f"/transactions/{tr['id']}/refunds", json={"amount": "1.00"})
        refused(response, 404, "resource.transaction.not-found")
    expect(
        transaction_of(client, tr["invoice_id"]),
        "completed",
        authorized_amount="10",
        captured_amount="10",
        available_amount="10",
    )


# --- the invoice once a payment was attempted ----------------------------------------------


@pytest.mark.parametrize("attempt", ["declined", "authorized", "captured", "voided"])
def test_an_invoice_cannot_change_once_a_payment_was_attempted(
    client: httpx.Client, attempt: str
) -> None:
    invoice = new_invoice(client, "10.00", details=[{"name": "a", "amount": "10.00"}])
    good, bad = new_card(client), new_card(client, "4000000000000002")
    if attempt == "declined":
        tr = ok(pay(client, invoice["id"], "authorize", {"source": bad}))["transaction"]
        assert tr["status"] == "failed"
    else:
        action = "capture" if attempt == "captured" else "authorize"
        ok(pay(client, invoice["id"], action, {"source": good}))
        if attempt == "voided":
            ok(pay(client, invoice["id"], "void"))
    before_invoice = ok(client.get(f"/invoices/{invoice['id']}"))["invoice"]
    before = transaction_of(client, invoice["id"])
    customer = new_customer(client)
    for response in (
        client.put(f"/invoices/{invoice['id']}", json={"amount": "5.00"}),
        client.delete(f"/invoices/{invoice['id']}"),
        client.post(f"/invoices/{invoice['id']}/customers", json={"customer_id": customer}),
    ):
        refused(response, 400, "invoice.already-used")
    assert ok(client.get(f"/invoices/{invoice['id']}"))["invoice"] == before_invoice
    unchanged(client, invoice["id"], before)


def test_a_declined_invoice_can_be_paid_with_another_card(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    bad = new_card(client, "4000000000000002")
    tr = ok(pay(client, invoice["id"], "capture", {"source": bad}))["transaction"]
    assert (tr["status"], tr["error_code"]) == ("failed", "card.declined")
    tr = ok(pay(client, invoice["id"], "capture", {"source": new_card(client)}))["transaction"]
    expect(tr, "completed", authorized_amount="10", captured_amount="10", available_amount="10")
    assert tr["error_code"] is None
    assert [op[:2] for op in ops(tr)] == [
        ("authorization", "failed"),
        ("authorization", "succeeded"),
        ("capture", "succeeded"),
    ]
    assert tr["operations"][0]["has_failed"] is True and tr["operations"][0]["is_attempt"] is True


def test_a_zero_or_deleted_invoice_cannot_be_paid(client: httpx.Client) -> None:
    card = new_card(client)
    zero = new_invoice(client, "0")
    refused(pay(client, zero["id"], "authorize", {"source": card}), 400, "invoice.not-payable")
    gone = new_invoice(client)
    ok(client.delete(f"/invoices/{gone['id']}"))
    refused(
        pay(client, gone["id"], "authorize", {"source": card}), 404, "resource.invoice.not-found"
    )
    refused(pay(client, gone["id"], "capture", {"source": card}), 404, "resource.invoice.not-found")


# --- the sandbox's test cards --------------------------------------------------------------

# What a sale (capture with a card source) of 10.00 gives with each test card.
OK = ("completed", None, "passed", "passed", None)
SALES: dict[str, tuple[str, str | None, str | None, str | None, str | None]] = {
    # behaviour -> status, error_code, cvc_check, avs_check, three_d_s_status
    "succeed": OK,
    "decline": ("failed", "card.declined", None, None, None),
    "decline_capture": ("failed", "gateway.declined", "passed", "passed", None),
    "fail_cvc": ("completed", None, "failed", "passed", None),
    "fail_avs": ("completed", None, "passed", "failed", None),
    "fail_cvc_avs": ("completed", None, "failed", "failed", None),
    "chargeback": ("disputed", None, "passed", "passed", None),
    "no_three_d_s": ("completed", None, "passed", "passed", "unsupported"),
    "three_d_s": ("pending", None, None, None, "pending"),
}


@pytest.mark.parametrize("number", sorted(TEST_CARDS), ids=lambda n: f"{n[:2]}..{n[-4:]}")
def test_every_sandbox_test_card(client: httpx.Client, number: str) -> None:
    behaviour = TEST_CARDS[number].behaviour
    status, error, cvc, avs, three_d_s = SALES[behaviour]
    card = ok(client.post("/cards", json={"number": number, "exp_month": 1, "exp_year": 2040}))[
        "card"
    ]
    assert card["scheme"] == TEST_CARDS[number].scheme
    invoice = new_invoice(client, "10.00")
    body = ok(pay(client, invoice["id"], "capture", {"source": card["id"]}))
    tr = body["transaction"]
    assert (tr["status"], tr["error_code"]) == (status, error), tr
    assert (tr["cvc_check"], tr["avs_check"], tr["three_d_s_status"]) == (cvc, avs, three_d_s)
    assert transaction_of(client, invoice["id"]) == tr
    kinds = [op[:2] for op in ops(tr)]
    if behaviour == "three_d_s":
        action = body["customer_action"]
        assert action["type"] == "redirect" and "/3ds/" in action["value"]
        assert kinds == [("authorization", "pending")]
        assert tr["operations"][0]["is_attempt"] is True
        # The operation waits for the payer: nothing else may run on it meanwhile.
        for again in ("capture", "void"):
            refused(pay(client, invoice["id"], again), 400, "transaction.operation-in-progress")
        refused(
            client.put(f"/invoices/{invoice['id']}", json={"amount": "1.00"}),
            400,
            "invoice.already-used",
        )
        unchanged(client, invoice["id"], tr)
        return
    assert body["customer_action"] is None
    if behaviour == "decline":
        expect(tr, "failed")
        assert kinds == [("authorization", "failed")]
        assert tr["error_message"]
        return
    if behaviour == "decline_capture":
        expect(tr, "failed", authorized_amount="10")
        assert kinds == [("authorization", "succeeded"), ("capture", "failed")]
        assert tr["operations"][1]["error_code"] == "gateway.declined"
        return
    if behaviour == "chargeback":
        expect(tr, "disputed", authorized_amount="10", captured_amount="10", available_amount="10")
        assert tr["chargedback"] is True and tr["chargedback_at"]
        assert kinds[-1] == ("chargeback", "succeeded")
        response = client.post(f"/transactions/{tr['id']}/refunds", json={"amount": "1.00"})
        refused(response, 400, "transaction.illegal-operation")
        unchanged(client, invoice["id"], tr)
        return
    expect(tr, "completed", authorized_amount="10", captured_amount="10", available_amount="10")
    assert kinds == [("authorization", "succeeded"), ("capture", "succeeded")]
    # The card keeps what the gateway said of its checks.
    found = ok(client.get(f"/cards/{card['id']}"))["card"]
    assert (found["cvc_check"], found["avs_check"]) == (cvc, avs)


def test_capture_fails_after_a_good_authorization_with_the_0010_card(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client, "4000000000000010")
    tr = ok(pay(client, invoice["id"], "authorize", {"source": card}))["transaction"]
    expect(tr, "authorized", authorized_amount="10")
    tr = ok(pay(client, invoice["id"], "capture"))["transaction"]
    expect(tr, "failed", authorized_amount="10")
    assert tr["error_code"] == "gateway.declined"
    # The authorization is still there to void.
    tr = ok(pay(client, invoice["id"], "void"))["transaction"]
    expect(tr, "voided", authorized_amount="10", voided_amount="10")


def test_a_number_outside_the_table_is_declined(client: httpx.Client) -> None:
    card = new_card(client, "4111111111111111")
    invoice = new_invoice(client)
    tr = ok(pay(client, invoice["id"], "authorize", {"source": card}))["transaction"]
    assert (tr["status"], tr["error_code"]) == ("failed", "card.declined")


# --- Idempotency-Key -----------------------------------------------------------------------


def keyed(client: httpx.Client, path: str, body: dict[str, Any], key: str) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": key})


@pytest.mark.parametrize("action", ["authorize", "capture", "refund"])
def test_a_keyed_retry_replays_the_answer_without_a_second_gateway_call(
    client: httpx.Client, server: RunningServer, action: str
) -> None:
    card = new_card(client)
    if action == "refund":
        tr = sale(client)
        path, body = f"/transactions/{tr['id']}/refunds", {"amount": "2.50"}
        invoice_id = tr["invoice_id"]
    else:
        invoice_id = new_invoice(client)["id"]
        path, body = f"/invoices/{invoice_id}/{action}", {"source": card}
    tid = transaction_of(client, invoice_id)["id"]
    calls_before = len(gateway_calls(server.database_url, tid))
    first = keyed(client, path, body, f"{action}-1")
    ok(first)
    assert "idempotent-replayed" not in first.headers
    state = transaction_of(client, invoice_id)
    for _ in range(2):
        again = keyed(client, path, body, f"{action}-1")
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
    unchanged(client, invoice_id, state)
    calls = gateway_calls(server.database_url, tid)
    made = {"authorize": 1, "capture": 2, "refund": 1}[action]
    assert len(calls) - calls_before == made
    assert len({key for key, _ in calls}) == len(calls)
    # The key for another request: refused, nothing done.
    other = {**body, "metadata": {"x": "y"}} if action != "refund" else {"amount": "1.00"}
    refused(keyed(client, path, other, f"{action}-1"), 400, "request.idempotency-key.reused")
    unchanged(client, invoice_id, state)
    assert len(gateway_calls(server.database_url, tid)) == len(calls)


def test_a_failed_keyed_payment_is_not_recorded(client: httpx.Client) -> None:
    invoice = new_invoice(client, "10.00")
    card = new_card(client)
    path = f"/invoices/{invoice['id']}/capture"
    response = keyed(client, path, {"capture_amount": "1.00"}, "k-fail")
    refused(response, 400, "transaction.illegal-operation")  # nothing authorized yet
    ok(pay(client, invoice["id"], "authorize", {"source": card}))
    retried = keyed(client, path, {"capture_amount": "1.00"}, "k-fail")  # now it can
    expect(
        ok(retried)["transaction"],
        "completed",
        authorized_amount="10",
        captured_amount="1",
        available_amount="1",
    )


@pytest.mark.parametrize("action", ["authorize", "capture", "refund"])
def test_concurrent_keyed_retries_make_one_gateway_operation(
    client: httpx.Client, server: RunningServer, action: str
) -> None:
    copies = 8
    card = new_card(client)
    if action == "refund":
        tr = sale(client)
        path, body = f"/invoices/{tr['invoice_id']}/refunds", {"amount": "2.50"}
        invoice_id = tr["invoice_id"]
    else:
        invoice_id = new_invoice(client)["id"]
        path, body = f"/invoices/{invoice_id}/{action}", {"source": card}
    tid = transaction_of(client, invoice_id)["id"]
    ops_before = len(operation_keys(server.database_url, tid))
    answers: list[httpx.Response] = []
    gate = threading.Barrier(copies)
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=str(client.base_url), auth=client.auth, timeout=30) as own:
            gate.wait()
            response = keyed(own, path, body, f"together-{action}")
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = [r for r in answers if r.status_code == 200 and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1, [(r.status_code, r.headers.get("idempotent-replayed")) for r in answers]
    for r in answers:
        if r.status_code == 200:
            assert r.content == fresh[0].content
        else:
            refused(r, 400, "request.idempotency-key.in-progress")
    # Once done, a retry replays the one answer.
    late = keyed(client, path, body, f"together-{action}")
    assert late.content == fresh[0].content and late.headers["idempotent-replayed"] == "true"
    made = {"authorize": 1, "capture": 2, "refund": 1}[action]
    log = operation_keys(server.database_url, tid)
    assert len(log) - ops_before == made and all(s == "succeeded" for _, _, s in log)
    calls = gateway_calls(server.database_url, tid)
    assert sorted(k for k, _ in calls) == sorted(k for k, _, _ in log)


def test_a_keyed_card_retry_is_vaulted_at_the_gateway_once(
    client: httpx.Client, server: RunningServer
) -> None:
    def vaulted() -> int:
        return int(query(server.database_url, "SELECT count(*) FROM sandbox_vault")[0][0])

    body = {"number": NUMBER, "exp_month": 12, "exp_year": 2031, "cvc2": "123"}
    before = vaulted()
    first = keyed(client, "/cards", body, "card-once")
    again = keyed(client, "/cards", body, "card-once")
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(ok(client.get("/cards"))["cards"]) == 1
    assert vaulted() - before == 1  # the replay stored no second card at the gateway
