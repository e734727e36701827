"""Settling Reepay invoices over HTTP: ``settle`` and ``manual_transfer`` on create, and
POST /v1/invoice/{id}/settle, /manual_settle, /cancel, /fail, /reactivate, /settle/cancel,
GET /v1/invoice/{id}/transaction/{transaction}; every answer checked against the vendor's
schema and the server's own document (``support.reepay_client``), and the one ledger seen
through the ProcessOut face."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.processout.test_payments import assert_nowhere_in_database
from tests.api.reepay.support import (
    assert_error,
    invoice_body,
    new_customer,
    new_invoice,
    reepay,
    reepay_client,
)
from tests.conftest import RunningServer
from tests.dbcheck import query
from tests.web.support import browser, page_path, token_of

__all__ = ["reepay"]

GOOD = "4242424242424242"
DECLINED = "4000000000000002"
CAPTURE_DECLINED = "4000000000000010"
THREE_D_S = "4000000000000101"


def add_card(reepay: httpx.Client, customer: str, number: str = GOOD) -> dict[str, Any]:
    response = reepay.post(
        f"/customer/{customer}/payment_method",
        json={"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
    )
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()
    return card


def _counts(server: RunningServer, project: IssuedKeys) -> tuple[int, int]:
    scope = (project.project.id, True)
    invoices = query(
        server.database_url,
        "SELECT COUNT(*) FROM invoices WHERE project_id = $1 AND sandbox = $2",
        *scope,
    )[0][0]
    operations = query(
        server.database_url,
        "SELECT COUNT(*) FROM transaction_operations WHERE project_id = $1 AND sandbox = $2",
        *scope,
    )[0][0]
    return int(invoices), int(operations)


def _processout_transaction(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    response = client.get(f"/invoices/{invoice_id}/transactions")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["transaction"]
    return found


# --- settle on create ---------------------------------------------------------------------------


def test_create_with_settle_by_a_payment_method_settles_it(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-1", settle={"payment_method": card["id"]})
    assert invoice["state"] == "settled"
    assert invoice["settled_amount"] == invoice["amount"] == 10000
    assert "settled" in invoice
    kinds = [(t["type"], t["state"]) for t in invoice["transactions"]]
    assert kinds == [("authorization", "authorized"), ("settle", "settled")]
    settle = invoice["transactions"][1]
    assert settle["payment_type"] == "card"
    assert settle["payment_method"] == card["id"]
    assert settle["invoice"] == invoice["id"]
    assert settle["card_transaction"]["masked_card"] == "424242XXXXXX4242"
    assert settle["card_transaction"]["card_type"] == "visa"
    assert reepay.get(f"/invoice/{invoice['handle']}").json() == invoice
    # One ledger: the ProcessOut face sees the capture.
    transaction = _processout_transaction(client, invoice["id"])
    assert (transaction["status"], transaction["captured_amount"]) == ("completed", "100")


def test_create_with_settle_auto_uses_the_newest_active_payment_method(
    reepay: httpx.Client,
) -> None:
    new_customer(reepay, "c1")
    add_card(reepay, "c1", DECLINED)
    newest = add_card(reepay, "c1", "5555555555554444")
    invoice = new_invoice(reepay, "c1", "inv-auto", settle={"payment_method": "auto"})
    assert invoice["state"] == "settled"
    assert invoice["transactions"][-1]["payment_method"] == newest["id"]
    assert invoice["transactions"][-1]["card_transaction"]["card_type"] == "mc"


def test_a_declined_settle_fails_the_invoice_then_another_card_settles_it(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    bad = add_card(reepay, "c1", DECLINED)
    invoice = new_invoice(reepay, "c1", "inv-d", settle={"payment_method": bad["id"]})
    assert invoice["state"] == "failed"  # HTTP 200 all the same
    assert "failed" in invoice
    assert invoice["settled_amount"] == 0
    (attempt,) = invoice["transactions"]
    assert (attempt["type"], attempt["state"]) == ("settle", "failed")
    assert attempt["card_transaction"]["error"] == "declined_by_acquirer"
    assert attempt["card_transaction"]["error_state"] == "hard_declined"
    got = reepay.get(f"/invoice/{invoice['id']}/transaction/{attempt['id']}")
    assert got.json() == attempt
    assert _processout_transaction(client, invoice["id"])["status"] == "failed"
    # A failed invoice can be settled: pending, dunning or failed -> settled.
    good = add_card(reepay, "c1")
    settled = reepay.post(f"/invoice/{invoice['id']}/settle", json={"payment_method": "auto"})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"
    assert settled.json()["transactions"][-1]["payment_method"] == good["id"]


@pytest.mark.parametrize("decision", ["refuse", "approve"])
def test_a_settle_the_payer_answers_with_3ds_ends_as_a_settle_would(
    server: RunningServer, reepay: httpx.Client, client: httpx.Client, decision: str
) -> None:
    """A settle by a card that asks for 3-D Secure waits (transaction ``pending``) for
    the payer's answer on Settle's challenge page, reached from the invoice's checkout page.
    Refused, the invoice fails as at a decline; approved, it is settled."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", THREE_D_S)
    invoice = new_invoice(reepay, "c1", "inv-3ds", settle={"payment_method": card["id"]})
    assert invoice["state"] == "pending"
    assert invoice["transactions"][-1]["state"] == "pending"
    # What the settle's decline will do is Settle's own record, not the merchant's metadata.
    operations = _processout_transaction(client, invoice["id"])["operations"]
    assert [op["metadata"] for op in operations] == [{}]
    url = client.get(f"/invoices/{invoice['id']}").json()["invoice"]["url"]
    with browser(server) as b:
        waiting = b.get(page_path({"url": url}))
        assert "Confirm the payment with your bank" in waiting.text
        found = re.search(
            r'href="' + re.escape(server.url) + r'(/3ds/opk_[A-Za-z0-9]+)"', waiting.text
        )
        assert found, waiting.text
        challenge = found.group(1)
        token = token_of(b.get(challenge))
        answered = b.post(challenge, data={"csrf_token": token, "decision": decision})
        assert answered.status_code == 303
    after = reepay.get(f"/invoice/{invoice['id']}").json()
    if decision == "refuse":
        assert after["state"] == "failed"
        assert after["transactions"][-1]["state"] == "failed"
    else:
        assert after["state"] == "settled" and after["settled_amount"] == invoice["amount"]


def answer_challenge(server: RunningServer, redirect_url: str, decision: str) -> None:
    """The payer at the 3-D Secure page a Reepay answer sent them to: its form read, then
    posted with ``decision`` (approve or refuse)."""
    assert redirect_url.startswith(server.url + "/3ds/opk_"), redirect_url
    path = redirect_url.removeprefix(server.url)
    with browser(server) as b:
        page = b.get(path)
        assert page.status_code == 200, page.text
        answered = b.post(path, data={"csrf_token": token_of(page), "decision": decision})
        assert answered.status_code == 303, answered.text


@pytest.mark.parametrize("decision", ["refuse", "approve"])
def test_a_3ds_settle_answers_pending_with_the_payers_page(
    server: RunningServer, reepay: httpx.Client, decision: str
) -> None:
    """Through the Reepay face alone: the settle on create answers the invoice ``pending``,
    its settle transaction ``pending`` with ``redirect_url`` (Settle's challenge page); the
    payer's answer there settles the invoice or fails it, as GET /v1/invoice/{handle} shows,
    and the address is gone once answered."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", THREE_D_S)
    invoice = new_invoice(reepay, "c1", "inv-3ds-r", settle={"payment_method": card["id"]})
    assert invoice["state"] == "pending"
    (waiting,) = invoice["transactions"]
    assert (waiting["type"], waiting["state"]) == ("settle", "pending")
    assert waiting["card_transaction"]["strong_authentication_status"] == "threed_secure"
    url = waiting["redirect_url"]
    # The same while it waits, by handle, and the transaction read alone.
    assert reepay.get("/invoice/inv-3ds-r").json() == invoice
    alone = reepay.get(f"/invoice/inv-3ds-r/transaction/{waiting['id']}").json()
    assert alone == waiting
    # Busy until the payer answers: another settle is refused as in progress (80).
    assert_error(reepay.post("/invoice/inv-3ds-r/settle", json={"payment_method": "auto"}), 400, 80)
    answer_challenge(server, url, decision)
    after = reepay.get("/invoice/inv-3ds-r").json()
    assert all("redirect_url" not in t for t in after["transactions"])
    if decision == "refuse":
        assert after["state"] == "failed" and after["settled_amount"] == 0
        assert after["transactions"][-1]["state"] == "failed"
    else:
        assert after["state"] == "settled" and after["settled_amount"] == invoice["amount"]
        kinds = [(t["type"], t["state"]) for t in after["transactions"]]
        assert kinds == [("authorization", "authorized"), ("settle", "settled")]


def test_a_3ds_settle_of_an_existing_invoice(server: RunningServer, reepay: httpx.Client) -> None:
    """POST /v1/invoice/{id}/settle with the 3-D Secure card: the same round trip."""
    new_customer(reepay, "c1")
    add_card(reepay, "c1", THREE_D_S)
    invoice = new_invoice(reepay, "c1", "inv-3ds-s")
    answer = reepay.post(f"/invoice/{invoice['id']}/settle", json={"payment_method": "auto"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "pending"
    answer_challenge(server, answer.json()["transactions"][-1]["redirect_url"], "approve")
    assert reepay.get("/invoice/inv-3ds-s").json()["state"] == "settled"


def test_a_declined_capture_leaves_the_money_authorized(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", CAPTURE_DECLINED)
    invoice = new_invoice(reepay, "c1", "inv-cd", settle={"payment_method": card["id"]})
    assert invoice["state"] == "authorized"
    assert invoice["authorized_amount"] == 10000
    capture = invoice["transactions"][-1]
    assert (capture["type"], capture["state"]) == ("settle", "failed")
    assert capture["card_transaction"]["error"] == "declined_by_acquirer"


def test_settle_on_create_errors_write_nothing(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    new_customer(reepay, "other")
    theirs = add_card(reepay, "other")
    post = reepay.post
    # 9: no such customer (before anything about the payment method).
    assert_error(post("/customer/nope/invoice", json=invoice_body("x", settle={})), 404, 9)
    # 76: no payment method given, or none for "auto".
    for settle in ({}, {"payment_method": ""}, {"payment_method": "auto"}):
        body = invoice_body("x", settle=settle)
        error = assert_error(post("/customer/c1/invoice", json=body), 400, 76)
        assert error["message"].startswith("settle.payment_method"), error
    # 40: not one of the customer's payment methods.
    for method in ("ca_nope", "tok_nope", "x", theirs["id"]):
        body = invoice_body("x", settle={"payment_method": method})
        assert_error(post("/customer/c1/invoice", json=body), 404, 40)
    # 43: a settle later is not supported (refused, not ignored).
    body = invoice_body("x", settle={"payment_method": "auto", "due": "2030-01-01"})
    assert_error(post("/customer/c1/invoice", json=body), 501, 43)
    assert _counts(server, project) == (0, 0)
    # 11: a handle taken, settle or not.
    mine = add_card(reepay, "c1")
    new_invoice(reepay, "c1", "taken")
    body = invoice_body("taken", settle={"payment_method": mine["id"]})
    assert_error(post("/customer/c1/invoice", json=body), 400, 11)
    assert _counts(server, project) == (1, 0)


def test_a_keyed_create_with_settle_pays_once(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    body = invoice_body("keyed", settle={"payment_method": card["id"]})
    first = reepay.post("/customer/c1/invoice", json=body, headers={"Idempotency-Key": "k1"})
    again = reepay.post("/customer/c1/invoice", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _counts(server, project) == (1, 2)  # one authorization, one capture


# --- manual transfers ---------------------------------------------------------------------------


def test_create_with_a_manual_transfer_settles_it_and_shows_the_transfer(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    transfer = {
        "method": "bank_transfer",
        "payment_date": "2026-01-02",
        "reference": "REF-9",
        "comment": "paid at the counter",
    }
    invoice = new_invoice(reepay, "c1", "inv-m", manual_transfer=transfer)
    assert invoice["state"] == "settled"
    assert invoice["settled_amount"] == 10000
    (settle,) = invoice["transactions"]
    assert (settle["type"], settle["state"], settle["payment_type"]) == (
        "settle",
        "settled",
        "manual",
    )
    assert settle["manual_transaction"] == {
        "method": "bank_transfer",
        "payment_date": "2026-01-02T00:00:00Z",
        "reference": "REF-9",
        "comment": "paid at the counter",
    }
    assert "card_transaction" not in settle
    transaction = _processout_transaction(client, invoice["id"])
    assert (transaction["status"], transaction["captured_amount"]) == ("completed", "100")


def test_bad_manual_transfers_are_refused_and_write_nothing(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    cases = [
        ({"payment_date": "2026-01-02"}, "manual_transfer.method"),
        ({"method": "gold", "payment_date": "2026-01-02"}, "manual_transfer.method"),
        ({"method": "cash"}, "manual_transfer.payment_date"),
        ({"method": "cash", "payment_date": "2026-02-30"}, "manual_transfer.payment_date"),
        ({"method": "cash", "payment_date": "02-01-2026"}, "manual_transfer.payment_date"),
    ]
    for transfer, field in cases:
        body = invoice_body("x", manual_transfer=transfer)
        error = assert_error(reepay.post("/customer/c1/invoice", json=body), 422, 1)
        assert error["message"].startswith(field), error
    both = invoice_body(
        "x",
        manual_transfer={"method": "cash", "payment_date": "2026-01-02"},
        settle={"payment_method": "auto"},
    )
    assert_error(reepay.post("/customer/c1/invoice", json=both), 422, 1)
    assert _counts(server, project) == (0, 0)


def test_manual_settle(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-ms")
    transfer = {"method": "cash", "payment_date": "2026-03-04"}
    settled = reepay.post(f"/invoice/{invoice['handle']}/manual_settle", json=transfer)
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"
    assert settled.json()["transactions"][0]["manual_transaction"]["method"] == "cash"
    # 79: already settled, by hand or by card.
    assert_error(reepay.post(f"/invoice/{invoice['id']}/manual_settle", json=transfer), 400, 79)
    assert_error(reepay.post(f"/invoice/{invoice['id']}/settle", json={}), 400, 79)
    # 31: no such invoice; 422: a bad transfer.
    assert_error(reepay.post("/invoice/nope/manual_settle", json=transfer), 404, 31)
    other = new_invoice(reepay, "c1", "inv-ms2")
    error = assert_error(
        reepay.post(f"/invoice/{other['id']}/manual_settle", json={"method": "cash"}), 422, 1
    )
    assert error["message"].startswith("payment_date")
    # A cancelled invoice can be settled by hand ("any unsettled").
    reepay.post(f"/invoice/{other['id']}/cancel")
    again = reepay.post(f"/invoice/{other['id']}/manual_settle", json=transfer)
    assert again.json()["state"] == "settled"


# --- settle, cancel, fail, reactivate -----------------------------------------------------------


def test_settle_an_invoice_and_its_errors(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-s")
    url = f"/invoice/{invoice['id']}/settle"
    assert_error(reepay.post(url, json={}), 400, 76)
    assert_error(reepay.post(url, json={"payment_method": "auto"}), 400, 76)
    assert_error(reepay.post(url, json={"payment_method": "ca_unknown"}), 404, 40)
    assert_error(reepay.post("/invoice/nope/settle", json={}), 404, 31)
    card = add_card(reepay, "c1")
    settled = reepay.post(url, json={"payment_method": card["id"]})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"
    assert_error(reepay.post(url, json={"payment_method": card["id"]}), 400, 79)
    # 82: a cancelled invoice is reactivated before it is settled.
    other = new_invoice(reepay, "c1", "inv-s2")
    reepay.post(f"/invoice/{other['id']}/cancel")
    assert_error(
        reepay.post(f"/invoice/{other['id']}/settle", json={"payment_method": "auto"}), 400, 82
    )


def test_an_invoice_of_0_is_code_145_not_already_settled(reepay: httpx.Client) -> None:
    """A card settle of an invoice of 0 answered code 79, "Invoice already settled", of an
    invoice nobody settled; Reepay's code is 145, "Invoice has zero amount"."""
    new_customer(reepay, "c1")
    line = {"ordertext": "Free sample", "amount": 0}
    made = reepay.post("/customer/c1/invoice", json={"handle": "zero", "order_lines": [line]})
    assert made.status_code == 200, made.text
    card = add_card(reepay, "c1")
    settle = reepay.post("/invoice/zero/settle", json={"payment_method": card["id"]})
    error = assert_error(settle, 400, 145)
    assert error["error"] == "Invoice has zero amount", error
    assert reepay.get("/invoice/zero").json()["state"] == "pending"


def test_cancel_and_reactivate_are_seen_by_both_faces(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-c")
    iid = invoice["id"]
    cancelled = reepay.post(f"/invoice/{iid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert "cancelled" in cancelled.json()
    assert_error(reepay.post(f"/invoice/{iid}/cancel"), 400, 29)
    # The ProcessOut face refuses to pay (or change) a cancelled invoice.
    card_id = client.post(
        "/cards", json={"number": GOOD, "exp_month": 12, "exp_year": 2040, "cvc2": "123"}
    ).json()["card"]["id"]
    refused = client.post(f"/invoices/{iid}/capture", json={"source": card_id})
    assert refused.status_code == 400
    assert refused.json()["error_type"] == "invoice.not-payable"
    assert client.put(f"/invoices/{iid}", json={"amount": "3.00"}).status_code == 400
    # Reactivated: pending, and payable through ProcessOut; Reepay sees it settled.
    reactivated = reepay.post(f"/invoice/{iid}/reactivate")
    assert reactivated.json()["state"] == "pending"
    assert_error(reepay.post(f"/invoice/{iid}/reactivate"), 400, 82)
    paid = client.post(f"/invoices/{iid}/capture", json={"source": card_id})
    assert paid.status_code == 200, paid.text
    seen = reepay.get(f"/invoice/{iid}").json()
    assert (seen["state"], seen["settled_amount"]) == ("settled", 10000)
    # 30: a settled invoice has an active transaction; it cannot be cancelled or failed.
    assert_error(reepay.post(f"/invoice/{iid}/cancel"), 400, 30)
    assert_error(reepay.post(f"/invoice/{iid}/fail"), 400, 82)
    assert_error(reepay.post("/invoice/nope/cancel"), 404, 31)


def test_cancel_refuses_an_authorized_invoice(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-a")
    card_id = client.post(
        "/cards", json={"number": GOOD, "exp_month": 12, "exp_year": 2040, "cvc2": "123"}
    ).json()["card"]["id"]
    assert client.post(f"/invoices/{invoice['id']}/authorize", json={"source": card_id}).is_success
    assert_error(reepay.post(f"/invoice/{invoice['id']}/cancel"), 400, 30)
    # 105: an authorized invoice is settled by capturing it, not by hand.
    transfer = {"method": "cash", "payment_date": "2026-01-02"}
    assert_error(reepay.post(f"/invoice/{invoice['id']}/manual_settle", json=transfer), 400, 105)
    # Its settle captures the authorization (no payment method needed).
    settled = reepay.post(f"/invoice/{invoice['id']}/settle", json={})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"


def test_fail_and_reactivate(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-f")
    iid = invoice["id"]
    assert_error(reepay.post(f"/invoice/{iid}/reactivate"), 400, 82)  # pending
    failed = reepay.post(f"/invoice/{iid}/fail")
    assert failed.status_code == 200, failed.text
    assert failed.json()["state"] == "failed"
    assert_error(reepay.post(f"/invoice/{iid}/fail"), 400, 82)
    # ProcessOut: a failed invoice is no longer open for changes.
    assert client.put(f"/invoices/{iid}", json={"amount": "3.00"}).status_code == 400
    # A failed invoice can be cancelled; both come back to pending.
    assert reepay.post(f"/invoice/{iid}/cancel").json()["state"] == "cancelled"
    assert reepay.post(f"/invoice/{iid}/reactivate").json()["state"] == "pending"
    assert reepay.post(f"/invoice/{iid}/fail").json()["state"] == "failed"
    assert reepay.post(f"/invoice/{iid}/reactivate").json()["state"] == "pending"
    assert_error(reepay.post("/invoice/nope/fail"), 404, 31)
    assert_error(reepay.post("/invoice/nope/reactivate"), 404, 31)


def test_settle_cancel_answers_the_invoice_as_it_is(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-sc")
    answer = reepay.post(f"/invoice/{invoice['id']}/settle/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json() == invoice
    assert_error(reepay.post("/invoice/nope/settle/cancel"), 404, 31)


def test_transactions_are_found_by_invoice_and_id_only(
    server: RunningServer, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    invoice = new_invoice(reepay, "c1", "inv-t", settle={"payment_method": card["id"]})
    other = new_invoice(reepay, "c1", "inv-t2")
    for transaction in invoice["transactions"]:
        got = reepay.get(f"/invoice/{invoice['handle']}/transaction/{transaction['id']}")
        assert got.json() == transaction
        # Under another invoice: not found (70).
        assert_error(reepay.get(f"/invoice/{other['id']}/transaction/{transaction['id']}"), 404, 70)
    assert_error(reepay.get(f"/invoice/{invoice['id']}/transaction/nope"), 404, 70)
    assert_error(reepay.get("/invoice/nope/transaction/nope"), 404, 31)
    # Another project's key finds neither.
    stranger = server.create_project("stranger")
    with reepay_client(server, stranger.reepay_private_key) as theirs:
        tid = invoice["transactions"][0]["id"]
        assert_error(theirs.get(f"/invoice/{invoice['id']}/transaction/{tid}"), 404, 31)


def test_payment_methods_are_the_customers_tokens_and_keep_no_card_number(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    number, cvc = "4111111111111111", "987"
    new_customer(reepay, "c1", email="c1@example.com")
    response = reepay.post(
        "/customer/c1/payment_method",
        json={"number": number, "exp_month": 12, "exp_year": 2040, "cvc": cvc},
    )
    card = response.json()
    assert card["id"].startswith("ca_")
    assert (card["state"], card["customer"], card["card_type"]) == ("active", "c1", "visa")
    assert card["masked_card"] == "411111XXXXXX1111"
    assert card["exp_date"] == "12-40"
    listed = reepay.get("/customer/c1/payment_method")
    assert listed.json() == {"cards": [card]}
    for answer in (response, listed):
        assert number not in answer.text
    # The payment method is the customer's token, under its other name (either pays).
    (token_id,) = query(
        server.database_url, "SELECT id FROM tokens WHERE project_id = $1", project.project.id
    )[0]
    assert card["id"] == "ca_" + token_id.removeprefix("tok_")
    by_token = new_invoice(reepay, "c1", "inv-tok", settle={"payment_method": token_id})
    assert by_token["transactions"][-1]["payment_method"] == card["id"]
    # Declined (not a test card of the sandbox), and nowhere in the database.
    invoice = new_invoice(reepay, "c1", "inv-n", settle={"payment_method": card["id"]})
    assert invoice["state"] == "failed"
    assert number not in str(invoice)
    assert_nowhere_in_database(
        server.database_url,
        [number],
        cvc,
        {"id": card["gw_ref"], "fingerprint": card["fingerprint"]},
    )


def test_payment_method_errors(server: RunningServer, reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    bad = {"number": "4242424242424241", "exp_month": 12, "exp_year": 2040}
    error = assert_error(reepay.post("/customer/c1/payment_method", json=bad), 400, 34)
    assert "4242424242424241" not in error["message"]
    expired = {"number": GOOD, "exp_month": 1, "exp_year": 2001}
    assert_error(reepay.post("/customer/c1/payment_method", json=expired), 400, 34)
    card = {"number": GOOD, "exp_month": 12, "exp_year": 2040}
    assert_error(reepay.post("/customer/nope/payment_method", json=card), 404, 9)
    assert_error(reepay.get("/customer/nope/payment_method"), 404, 9)
    assert reepay.get("/customer/c1/payment_method").json() == {"cards": []}
    live = server.create_project("live", sandbox=False)
    with reepay_client(server, live.reepay_private_key) as theirs:
        new_customer(theirs, "c1")
        assert_error(theirs.post("/customer/c1/payment_method", json=card), 400, 1)
