"""Reepay charges over HTTP: POST /v1/charge, GET /v1/charge/{handle}, POST
/v1/charge/{handle}/settle and /cancel; every answer checked against the vendor's Charge
schema and the server's own document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from settle.projects.models import IssuedKeys
from tests.api.reepay.support import assert_error, new_customer, new_invoice, reepay
from tests.api.reepay.test_settling import (
    CAPTURE_DECLINED,
    DECLINED,
    THREE_D_S,
    add_card,
    answer_challenge,
)
from tests.conftest import RunningServer
from tests.dbcheck import query

__all__ = ["reepay"]


def _charge(reepay: httpx.Client, handle: str, source: str, **fields: Any) -> dict[str, Any]:
    body = {"handle": handle, "source": source, "customer_handle": "c1", **fields}
    response = reepay.post("/charge", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_settled_charge(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    charge = _charge(reepay, "ch-1", card["id"], amount=1250, currency="EUR", settle=True)
    assert (charge["state"], charge["amount"], charge["currency"]) == ("settled", 1250, "EUR")
    assert charge["customer"] == "c1"
    assert charge["source"]["type"] == "card"
    assert charge["source"]["card"] == card["id"]
    assert charge["source"]["masked_card"] == "424242XXXXXX4242"
    (line,) = charge["order_lines"]
    assert (line["ordertext"], line["amount"], line["quantity"]) == ("Charge", 1250, 1)
    assert charge["processing"] is False
    assert "settled" in charge and "error" not in charge
    assert reepay.get("/charge/ch-1").json() == charge
    # The charge is an invoice, seen by both faces.
    invoice = reepay.get("/invoice/ch-1").json()
    assert (invoice["state"], invoice["settled_amount"]) == ("settled", 1250)
    assert charge["transaction"] == invoice["transactions"][-1]["id"]
    po = client.get(f"/invoices/{invoice['id']}").json()["invoice"]
    assert (po["amount"], po["currency"]) == ("12.5", "EUR")


def test_an_authorized_charge_is_settled_later_in_part(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    lines = [
        {"ordertext": "Shoes", "amount": 10000, "vat": 0.25, "quantity": 2},
        {"ordertext": "Socks", "amount": 500},
    ]
    charge = _charge(reepay, "ch-2", card["id"], order_lines=lines)  # settle defaults to false
    assert (charge["state"], charge["amount"], charge["authorized_amount"]) == (
        "authorized",
        20500,
        20500,
    )
    assert "authorized" in charge and "settled" not in charge
    settled = reepay.post("/charge/ch-2/settle", json={"amount": 20000})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"
    assert reepay.get("/invoice/ch-2").json()["settled_amount"] == 20000
    # 79: settled already; 30: a settled charge cannot be cancelled.
    assert_error(reepay.post("/charge/ch-2/settle", json={}), 400, 79)
    assert_error(reepay.post("/charge/ch-2/cancel"), 400, 30)


def test_a_settle_of_0_is_refused_and_captures_nothing(reepay: httpx.Client) -> None:
    """``amount: 0`` was read as "no amount" (``body.amount if body.amount else None``) and
    captured the whole authorization: a client whose partial amount came out as 0 took all."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    _charge(reepay, "ch-0", card["id"], amount=2050, currency="JPY")
    error = assert_error(reepay.post("/charge/ch-0/settle", json={"amount": 0}), 422, 1)
    assert error["message"].startswith("amount:"), error
    invoice = reepay.get("/invoice/ch-0").json()
    assert (invoice["state"], invoice["settled_amount"]) == ("authorized", 0)
    settled = reepay.post("/charge/ch-0/settle", json={"amount": 2050})
    assert settled.status_code == 200, settled.text
    assert reepay.get("/invoice/ch-0").json()["settled_amount"] == 2050


def test_a_settle_above_the_authorization_is_code_102_naming_amount(
    reepay: httpx.Client,
) -> None:
    """It answered code 65 ("Refund amount too high") and named ``capture_amount``, the
    ProcessOut face's field: this face's client sent ``amount``."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    _charge(reepay, "ch-over", card["id"], amount=2050, currency="KWD")
    error = assert_error(reepay.post("/charge/ch-over/settle", json={"amount": 2051}), 400, 102)
    assert error["error"] == "Amount higher than authorized amount", error
    assert error["message"].startswith("amount:"), error
    assert "2050" in error["message"], error
    invoice = reepay.get("/invoice/ch-over").json()
    assert (invoice["state"], invoice["settled_amount"]) == ("authorized", 0)


def test_cancelling_an_authorized_charge_voids_it(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    _charge(reepay, "ch-3", card["id"], amount=700)
    cancelled = reepay.post("/charge/ch-3/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert "cancelled" in cancelled.json()
    invoice = reepay.get("/invoice/ch-3").json()
    (authorization,) = invoice["transactions"]
    assert (authorization["type"], authorization["state"]) == ("authorization", "cancelled")
    transaction = client.get(f"/invoices/{invoice['id']}/transactions").json()["transaction"]
    assert transaction["status"] == "voided"
    assert_error(reepay.post("/charge/ch-3/cancel"), 400, 29)
    # 106: only an authorized charge is settled by capture; 82: nor reactivated once voided.
    assert_error(reepay.post("/charge/ch-3/settle", json={}), 400, 82)
    assert_error(reepay.post(f"/invoice/{invoice['id']}/reactivate"), 400, 82)


def test_a_declined_charge_fails_and_can_be_cancelled(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", DECLINED)
    charge = _charge(reepay, "ch-4", card["id"], amount=100, settle=True)
    assert charge["state"] == "failed"
    assert (charge["error"], charge["error_state"]) == ("declined_by_acquirer", "hard_declined")
    assert_error(reepay.post("/charge/ch-4/settle", json={}), 400, 106)
    cancelled = reepay.post("/charge/ch-4/cancel")
    assert cancelled.json()["state"] == "cancelled"


def test_a_declined_capture_keeps_the_charge_authorized(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", CAPTURE_DECLINED)
    charge = _charge(reepay, "ch-5", card["id"], amount=100, settle=True)
    assert (charge["state"], charge["authorized_amount"]) == ("authorized", 100)


def test_a_charge_settled_by_hand(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", DECLINED)
    _charge(reepay, "ch-6", card["id"], amount=300, settle=True)
    transfer = {"method": "check", "payment_date": "2026-05-06", "reference": "CHK-1"}
    settled = reepay.post("/charge/ch-6/settle", json={"manual_settle": transfer})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled"
    assert settled.json()["source"] == {"type": "manual"}
    manual = reepay.get("/invoice/ch-6").json()["transactions"][-1]
    assert manual["manual_transaction"]["reference"] == "CHK-1"
    bad = {"manual_settle": {"method": "check"}}
    error = assert_error(reepay.post("/charge/ch-6/settle", json=bad), 422, 1)
    assert error["message"].startswith("manual_settle.payment_date")


def test_charge_errors_write_nothing(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    new_customer(reepay, "other")
    theirs = add_card(reepay, "other")
    card = add_card(reepay, "c1")

    def post(**body: Any) -> httpx.Response:
        return reepay.post("/charge", json={"handle": "x", "customer_handle": "c1", **body})

    assert_error(post(source="ct_token", amount=100), 400, 110)
    assert_error(post(source="ca_nope", amount=100), 404, 40)
    assert_error(post(source=theirs["id"], amount=100), 404, 40)
    assert_error(post(source=card["id"], amount=100, customer_handle="nope"), 404, 9)
    no_customer = {"handle": "x", "source": card["id"], "amount": 100}
    assert_error(reepay.post("/charge", json=no_customer), 400, 18)
    assert_error(post(source=card["id"]), 422, 1)  # neither amount nor order lines
    lines = [{"ordertext": "a", "amount": 1}]
    assert_error(post(source=card["id"], amount=1, order_lines=lines), 422, 1)
    assert_error(reepay.post("/charge", json={"handle": "x"}), 422, 1)  # no source
    # The vendor's options not acted on here are refused, never ignored (a false one is moot).
    options: list[dict[str, Any]] = [
        {"recurring": True},
        {"async": True},
        {"parameters": {}},
    ]
    for option in options:
        error = assert_error(post(source=card["id"], amount=100, **option), 501, 43)
        assert error["message"].startswith(next(iter(option))), error
    invoices = query(
        server.database_url,
        "SELECT COUNT(*) FROM invoices WHERE project_id = $1",
        project.project.id,
    )[0][0]
    assert invoices == 0
    # 11: a handle taken.
    new_invoice(reepay, "c1", "taken")
    assert_error(post(source=card["id"], amount=100, handle="taken"), 400, 11)
    assert_error(post(source=card["id"], amount=100, recurring=False, handle="taken"), 400, 11)
    # 31: an invoice nobody tried to pay is no charge; unknown handles neither.
    for handle in ("taken", "nope"):
        assert_error(reepay.get(f"/charge/{handle}"), 404, 31)
        assert_error(reepay.post(f"/charge/{handle}/cancel"), 404, 31)
    assert_error(reepay.post("/charge/nope/settle", json={}), 404, 31)
    settle_options: list[dict[str, Any]] = [{"ordertext": "x"}, {"order_lines": []}]
    for settle_option in settle_options:
        assert_error(reepay.post("/charge/nope/settle", json=settle_option), 501, 43)


def _count(server: RunningServer, project: IssuedKeys, table: str) -> int:
    rows = query(
        server.database_url,
        f"SELECT COUNT(*) FROM {table} WHERE project_id = $1",
        project.project.id,
    )
    return int(rows[0][0])


def test_auto_charges_the_newest_active_payment_method(reepay: httpx.Client) -> None:
    new_customer(reepay, "c1")
    add_card(reepay, "c1", DECLINED)
    good = add_card(reepay, "c1")
    charge = _charge(reepay, "ch-auto", "auto", amount=700, settle=True)
    assert (charge["state"], charge["source"]["card"]) == ("settled", good["id"])
    # Newest first: a card added later is the one charged (here, one that is declined).
    bad = add_card(reepay, "c1", DECLINED)
    failed = _charge(reepay, "ch-auto2", "auto", amount=700, settle=False)
    assert (failed["state"], failed["source"]["card"]) == ("failed", bad["id"])
    assert failed["error"] == "declined_by_acquirer"
    # A customer without any: 76.
    new_customer(reepay, "c2")
    assert_error(
        reepay.post(
            "/charge",
            json={"handle": "ch-auto3", "source": "auto", "customer_handle": "c2", "amount": 1},
        ),
        400,
        76,
    )


def test_the_customer_object_names_an_existing_customer(reepay: httpx.Client) -> None:
    """An existing handle: that customer is charged, its fields left as they were."""
    new_customer(reepay, "c1", email="c1@example.com")
    card = add_card(reepay, "c1")
    body = {
        "handle": "ch-obj",
        "source": card["id"],
        "customer": {"handle": "c1", "email": "someone@example.com", "first_name": "X"},
        "amount": 1000,
        "settle": False,
    }
    response = reepay.post("/charge", json=body)
    assert response.status_code == 200, response.text
    charge = response.json()
    assert (charge["state"], charge["customer"]) == ("authorized", "c1")
    shown = reepay.get("/customer/c1").json()
    assert shown["email"] == "c1@example.com" and "first_name" not in shown
    # customer_handle beside it: the same customer, or a 4xx.
    same = reepay.post("/charge", json={**body, "handle": "ch-obj2", "customer_handle": "c1"})
    assert same.status_code == 200, same.text
    other = reepay.post("/charge", json={**body, "handle": "ch-obj3", "customer_handle": "c2"})
    assert other.status_code in (400, 422) and other.json()["code"] == 1, other.text
    assert other.json()["message"].startswith("customer_handle")


def test_a_charge_of_a_new_customer_is_refused_and_creates_nothing(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    """A customer the charge would create has no payment method: 40 for a ca_ id (another
    customer's), 76 for auto; no customer, invoice or event is written."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    before = [_count(server, project, t) for t in ("customers", "invoices", "events")]
    new = {"handle": "brand-new", "email": "new@example.com"}

    def post(**fields: Any) -> httpx.Response:
        return reepay.post("/charge", json={"handle": "ch-new", "amount": 100, **fields})

    assert_error(post(source=card["id"], customer=new), 404, 40)
    assert_error(post(source="auto", customer=new), 400, 76)
    assert_error(post(source="auto", customer={"generate_handle": True}), 400, 76)
    assert_error(post(source="ct_abc", customer=new), 400, 110)
    assert_error(post(source="offline_cash", customer=new), 400, 110)
    # The customer object's own rules come first.
    for customer, field in (
        ({"email": "a@example.com"}, "customer.handle"),
        ({"handle": "a", "generate_handle": True}, "customer.handle"),
        ({"handle": "no pe"}, "customer.handle"),
        ({"handle": "x1", "email": "not-an-email"}, "email"),
    ):
        error = post(source="auto", customer=customer)
        assert error.status_code in (400, 422) and error.json()["code"] == 1, error.text
        assert error.json()["message"].startswith(field), error.text
    assert_error(reepay.get("/customer/brand-new"), 404, 9)
    after = [_count(server, project, t) for t in ("customers", "invoices", "events")]
    assert after == before
    # A deleted customer's handle: 71, as for customer_handle.
    new_customer(reepay, "gone")
    assert reepay.delete("/customer/gone").status_code == 200
    assert_error(post(source="auto", customer={"handle": "gone"}), 404, 71)


def test_the_key_replays_a_charge(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client
) -> None:
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1")
    body = {
        "handle": "ch-key",
        "source": card["id"],
        "customer_handle": "c1",
        "amount": 900,
        "settle": True,
        "key": "charge-once",
    }
    first = reepay.post("/charge", json=body)
    again = reepay.post("/charge", json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and first.json()["state"] == "settled"
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(server, project, "invoices") == 1
    # The same key for another charge: refused, nothing written; without it, a new attempt
    # to pay the settled charge (79).
    other = reepay.post("/charge", json={**body, "handle": "ch-key2"})
    assert other.status_code == 400, other.text
    assert _count(server, project, "invoices") == 1
    no_key = {k: v for k, v in body.items() if k != "key"}
    assert_error(reepay.post("/charge", json=no_key), 400, 79)  # a retry of a settled charge
    # A settle of an authorized charge is keyed too.
    authorized = _charge(reepay, "ch-key3", card["id"], amount=900)
    assert authorized["state"] == "authorized"
    settle = {"amount": 400, "key": "settle-once"}
    a = reepay.post("/charge/ch-key3/settle", json=settle)
    b = reepay.post("/charge/ch-key3/settle", json=settle)
    assert a.status_code == b.status_code == 200, b.text
    assert a.json() == b.json() and b.headers.get("idempotent-replayed") == "true"
    assert reepay.get("/invoice/ch-key3").json()["settled_amount"] == 400
    bad_key = reepay.post("/charge", json={**body, "key": "with space"})
    assert bad_key.status_code in (400, 422) and bad_key.json()["message"].startswith("key")


@pytest.mark.parametrize(
    ("settle", "decision", "ends"),
    [(True, "approve", "settled"), (False, "approve", "authorized"), (True, "refuse", "failed")],
)
def test_a_3ds_charge_sends_the_payer_to_its_challenge(
    server: RunningServer, reepay: httpx.Client, settle: bool, decision: str, ends: str
) -> None:
    """A charge on the 3-D Secure card answers ``pending`` with ``redirect_url``; the payer's
    answer on that page ends it (settled, or only authorized without ``settle``; failed when
    refused), as GET /v1/charge/{handle} and /v1/invoice/{handle} show."""
    new_customer(reepay, "c1")
    card = add_card(reepay, "c1", THREE_D_S)
    charge = _charge(reepay, "ch-3ds", card["id"], amount=4200, settle=settle)
    assert charge["state"] == "pending"
    assert charge["redirect_url"].startswith(server.url + "/3ds/")
    assert charge["processing"] is False  # waiting for the payer, not for the gateway
    assert reepay.get("/charge/ch-3ds").json() == charge
    transaction = reepay.get("/invoice/ch-3ds").json()["transactions"][-1]
    assert (transaction["id"], transaction["state"]) == (charge["transaction"], "pending")
    answer_challenge(server, charge["redirect_url"], decision)
    after = reepay.get("/charge/ch-3ds").json()
    assert after["state"] == ends and "redirect_url" not in after
    assert after["processing"] is False
    invoice = reepay.get("/invoice/ch-3ds").json()
    assert invoice["state"] == ends
    assert invoice["settled_amount"] == (4200 if ends == "settled" else 0)
    assert invoice["authorized_amount"] == (0 if ends == "failed" else 4200)


def test_a_declined_charge_is_retried_with_its_handle(
    server: RunningServer, project: IssuedKeys, reepay: httpx.Client, client: httpx.Client
) -> None:
    """POST /v1/charge with the handle of a charge that was declined: a new attempt on the
    same invoice (its declined transaction kept beside the new ones), not code 11. Only a
    charge nobody paid takes one: settled 79, authorized 105, cancelled 82, and a handle of
    another customer's or another content's invoice 11; these write nothing."""
    new_customer(reepay, "c1")
    bad = add_card(reepay, "c1", DECLINED)
    lines = [{"ordertext": "Shoes", "amount": 5000, "vat": 0.25, "quantity": 2}]
    failed = _charge(reepay, "ch-r", bad["id"], order_lines=lines, settle=True)
    assert failed["state"] == "failed"
    again = _charge(reepay, "ch-r", bad["id"], order_lines=lines, settle=True)
    assert again["state"] == "failed" and again["transaction"] != failed["transaction"]
    good = add_card(reepay, "c1")
    settled = _charge(reepay, "ch-r", good["id"], order_lines=lines, settle=True)
    assert (settled["state"], settled["source"]["card"]) == ("settled", good["id"])
    assert "error" not in settled
    invoice = reepay.get("/invoice/ch-r").json()
    assert (invoice["state"], invoice["settled_amount"]) == ("settled", 10000)
    assert invoice["transactions"][-1]["id"] == settled["transaction"]
    kinds = [(t["type"], t["state"]) for t in invoice["transactions"]]
    assert kinds == [
        ("settle", "failed"),
        ("settle", "failed"),
        ("authorization", "authorized"),
        ("settle", "settled"),
    ]
    assert _count(server, project, "invoices") == 1
    po = client.get(f"/invoices/{invoice['id']}/transactions").json()["transaction"]
    assert (po["status"], po["captured_amount"]) == ("completed", "100")

    def post(handle: str, **fields: Any) -> httpx.Response:
        body = {"handle": handle, "source": good["id"], "customer_handle": "c1", **fields}
        return reepay.post("/charge", json=body)

    operations = _count(server, project, "transaction_operations")
    assert_error(post("ch-r", order_lines=lines, settle=True), 400, 79)
    # Another content or customer under the handle: not this charge.
    assert_error(post("ch-r", amount=10000, settle=True), 400, 11)
    assert_error(post("ch-r", order_lines=lines, currency="EUR"), 400, 11)
    new_customer(reepay, "c2")
    add_card(reepay, "c2")
    other = {"handle": "ch-r", "source": "auto", "customer_handle": "c2", "order_lines": lines}
    assert_error(reepay.post("/charge", json=other), 400, 11)
    # Authorized (settle false), then cancelled.
    assert _charge(reepay, "ch-a", good["id"], amount=300)["state"] == "authorized"
    operations += 1
    assert_error(post("ch-a", amount=300), 400, 105)
    assert_error(post("ch-a", amount=300, settle=True), 400, 105)
    assert reepay.post("/charge/ch-a/cancel").json()["state"] == "cancelled"
    operations += 1
    assert_error(post("ch-a", amount=300), 400, 82)
    assert _count(server, project, "transaction_operations") == operations
    assert _count(server, project, "invoices") == 2
