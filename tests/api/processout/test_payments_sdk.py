"""The official ProcessOut client (processout==10.0.1), unmodified, drives the full payment flow
against a live server: create an invoice, create a card, authorize, capture, refund part,
find the transaction; and the decline, capture-fails, 3-D Secure and chargeback test cards.

Notes on the client: ``CardCreateRequest.create`` answers an object without the new card's id
(the class has no ``id``): the id is taken from ``Card.all()`` (newest first).
``Invoice.authorize`` and ``Invoice.capture`` return a 1-tuple ``(transaction,)``, with
``transaction.customer_action`` set when the server sent one; ``Refund.create_for_invoice``
returns True. A 400 raises ``ValidationError`` carrying the server's ``error_type`` as ``code``.

3-D Secure: the payer completes the challenge on the hosted page ``/3ds/{key}`` (an HTML form,
which no API client drives). If the application serves that page, the test posts its form
over HTTP as a browser would and checks the payment completes; otherwise that part is left to
the browser tests.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from processout.errors.validationerror import ValidationError
from starlette.routing import Mount

from settle.app import app_routes, create_app
from tests.conftest import RunningServer

Client = Any  # processout.ProcessOut: the client ships no type hints


def new_card(sdk: Client, number: str) -> str:
    """A card made through the client; its id read back from the card list (newest first)."""
    sdk.new_card_create_request().create(
        {"number": number, "exp_month": 12, "exp_year": 2031, "cvc2": "123", "name": "Jane Doe"}
    )
    card = sdk.new_card().all()[0]
    assert card.last_4_digits == number[-4:] and card.name == "Jane Doe"
    card_id: str = card.id
    return card_id


def new_invoice(sdk: Client, amount: str = "10.00", **more: Any) -> Any:
    return sdk.new_invoice().create(
        {"name": "Amazing item", "amount": amount, "currency": "EUR", **more}
    )


def money(value: str | None) -> Decimal:
    assert value is not None
    return Decimal(value)


def test_the_full_flow(sdk: Client) -> None:
    customer = sdk.new_customer().create({"email": "jane@example.com", "first_name": "Jane"})
    invoice = new_invoice(sdk, customer_id=customer.id)
    card_id = new_card(sdk, "4242424242424242")
    assert sdk.new_card().find(card_id).scheme == "visa"

    (tr,) = invoice.authorize(card_id)
    assert tr.status == "authorized" and money(tr.authorized_amount) == 10
    assert getattr(tr, "customer_action", None) is None
    assert tr.card_id == card_id and tr.cvc_check == "passed"

    (tr,) = invoice.capture("", {"capture_amount": "6.00"})
    assert tr.status == "completed" and money(tr.captured_amount) == 6
    (tr,) = invoice.capture("")  # the rest
    assert money(tr.captured_amount) == 10 and money(tr.available_amount) == 10
    assert [op.type for op in tr.operations] == ["authorization", "capture", "capture"]

    refund = sdk.new_refund()
    body = {"amount": "2.50", "reason": "customer request", "information": "late"}
    assert refund.create_for_invoice(invoice.id, body) is True

    found = sdk.new_transaction().find(tr.id)
    assert found.status == "partially-refunded"
    assert (money(found.refunded_amount), money(found.available_amount)) == (
        Decimal("2.5"),
        Decimal("7.5"),
    )
    assert found.invoice_id == invoice.id and found.customer_id == customer.id
    refunds = found.fetch_refunds()
    assert [(money(r.amount), r.reason) for r in refunds] == [(Decimal("2.5"), "customer request")]
    assert found.find_refund(refunds[0].id).information == "late"
    assert invoice.fetch_transaction().id == tr.id
    assert [t.id for t in customer.fetch_transactions()] == [tr.id]
    assert tr.id in [t.id for t in sdk.new_transaction().all()]

    # More than is left to refund: the client raises the server's 400.
    with pytest.raises(ValidationError) as refused:
        sdk.new_refund().create_for_invoice(invoice.id, {"amount": "7.51"})
    assert refused.value.code == "transaction.amount-too-high"
    assert money(sdk.new_transaction().find(tr.id).refunded_amount) == Decimal("2.5")


def test_a_refund_of_given_invoice_details_is_refused(sdk: Client) -> None:
    """The client sends invoice_detail_ids as given (null by default): given, it was ignored
    and the amount refunded; now the client raises the server's 400 and nothing is refunded."""
    invoice = new_invoice(sdk, details=[{"name": "Shoes", "amount": "10.00"}])
    invoice.capture(new_card(sdk, "4242424242424242"))
    detail_id = sdk.new_invoice().find(invoice.id).details[0].id
    refund = sdk.new_refund()
    with pytest.raises(ValidationError) as refused:
        refund.create_for_invoice(invoice.id, {"amount": "1.00", "invoice_detail_ids": [detail_id]})
    assert refused.value.code == "request.not-implemented"
    tr = invoice.fetch_transaction()
    assert tr.status == "completed" and tr.fetch_refunds() == []
    assert sdk.new_refund().create_for_invoice(invoice.id, {"amount": "1.00"}) is True


def test_the_metadata_of_void_increment_capture_and_refunds_is_kept(sdk: Client) -> None:
    """The client sends ``metadata`` from its options for each of these (dropped before):
    the operations show it, and a refund found again shows its own."""
    card_id = new_card(sdk, "4242424242424242")
    voided = new_invoice(sdk)
    voided.authorize(card_id)
    tr = voided.increment_authorization("1.00", {"metadata": {"step": "increment"}})
    assert money(tr.authorized_amount) == 11
    tr = voided.void({"metadata": {"step": "void"}})
    assert [(op.type, op.metadata) for op in tr.operations] == [
        ("authorization", {}),
        ("increment_authorization", {"step": "increment"}),
        ("void", {"step": "void"}),
    ]

    paid = new_invoice(sdk)
    paid.authorize(card_id)
    (tr,) = paid.capture("", {"metadata": {"step": "capture"}})
    assert tr.operations[-1].metadata == {"step": "capture"}
    body = {"amount": "1.00", "reason": "broken", "metadata": {"ticket": "T-1"}}
    assert sdk.new_refund().create_for_invoice(paid.id, body) is True
    refund = sdk.new_refund()
    refund.transaction_id = tr.id
    assert refund.create({"amount": "2.00", "metadata": {"ticket": "T-2"}}) is True
    found = sdk.new_transaction().find(tr.id)
    refunds = found.fetch_refunds()
    assert [(money(r.amount), r.metadata) for r in refunds] == [
        (Decimal(1), {"ticket": "T-1"}),
        (Decimal(2), {"ticket": "T-2"}),
    ]
    assert found.find_refund(refunds[0].id).metadata == {"ticket": "T-1"}


def test_a_token_and_a_keyed_sale(sdk: Client) -> None:
    customer = sdk.new_customer().create({"email": "tok@example.com"})
    card_id = new_card(sdk, "5555555555554444")
    (token,) = sdk.new_token().create(
        {"customer_id": customer.id, "source": card_id, "set_default": True}
    )
    assert token.id.startswith("tok_") and token.is_default is True
    assert sdk.new_customer().find(customer.id).default_token_id == token.id
    assert [t.id for t in customer.fetch_tokens()] == [token.id]

    invoice = new_invoice(sdk, "4.99", customer_id=customer.id)
    (tr,) = invoice.capture(token.id, {"idempotency_key": f"sale-{invoice.id}"})
    assert tr.status == "completed" and tr.token_id == token.id
    (again,) = invoice.capture(token.id, {"idempotency_key": f"sale-{invoice.id}"})
    assert again.id == tr.id and len(again.operations) == 2  # replayed, not captured twice
    assert len(sdk.new_transaction().find(tr.id).operations) == 2

    # Another customer's invoice refuses the token.
    other = sdk.new_customer().create({"email": "other@example.com"})
    with pytest.raises(ValidationError) as refused:
        new_invoice(sdk, customer_id=other.id).authorize(token.id)
    assert refused.value.code == "token.not-usable"


def test_a_declined_card(sdk: Client) -> None:
    invoice = new_invoice(sdk)
    (tr,) = invoice.authorize(new_card(sdk, "4000000000000002"))
    assert (tr.status, tr.error_code) == ("failed", "card.declined")
    assert money(tr.authorized_amount) == 0
    assert [(op.type, op.has_failed) for op in tr.operations] == [("authorization", True)]
    # A declined invoice may be paid with another card.
    (tr,) = invoice.capture(new_card(sdk, "4242424242424242"))
    assert tr.status == "completed" and tr.error_code is None


def test_a_card_whose_capture_fails(sdk: Client) -> None:
    invoice = new_invoice(sdk)
    (tr,) = invoice.capture(new_card(sdk, "4000000000000010"))
    assert (tr.status, tr.error_code) == ("failed", "gateway.declined")
    assert money(tr.authorized_amount) == 10 and money(tr.captured_amount) == 0
    tr = invoice.void()  # one object, not a tuple
    assert tr.status == "voided" and money(tr.voided_amount) == 10


def test_a_chargeback(sdk: Client) -> None:
    invoice = new_invoice(sdk)
    (tr,) = invoice.capture(new_card(sdk, "4000000000000069"))
    assert tr.status == "disputed" and tr.chargedback_at is not None
    found = sdk.new_transaction().find(tr.id)
    assert [op.type for op in found.operations] == ["authorization", "capture", "chargeback"]
    with pytest.raises(ValidationError) as refused:
        sdk.new_refund().create_for_invoice(invoice.id, {"amount": "1.00"})
    assert refused.value.code == "transaction.illegal-operation"


def three_d_s_page_served(server: RunningServer) -> bool:
    """Whether the application has the challenge page (a route, or a mount of its own)."""
    app = create_app(server.settings)
    if any(route.path.startswith("/3ds/") for route in app_routes(app)):
        return True
    return any(isinstance(route, Mount) and route.path == "/3ds" for route in app.routes)


def answer_challenge(url: str, decision: str) -> httpx.Response:
    """As a browser: open the challenge page (its cookie and form token), post the answer."""
    with httpx.Client(timeout=30) as browser:
        page = browser.get(url)
        if page.status_code != 200:
            return page  # answered already (a redirect to the checkout), or no such page
        token = re.search(r'name="csrf_token"\s+value="([^"]+)"', page.text)
        if token is None:
            token = re.search(r'value="([^"]+)"\s+name="csrf_token"', page.text)
        assert token is not None, page.text
        return browser.post(url, data={"csrf_token": token.group(1), "decision": decision})


@pytest.mark.parametrize("decision", ["approve", "refuse"])
def test_three_d_s(sdk: Client, server: RunningServer, decision: str) -> None:
    invoice = new_invoice(sdk)
    (tr,) = invoice.capture(new_card(sdk, "4000000000000101"))
    action = tr.customer_action
    assert action.type == "redirect"
    assert action.value.startswith(f"{server.url}/3ds/opk_")
    assert tr.status == "pending"
    # The client's operations know no status: pending is an attempt that has not failed.
    assert [(op.type, op.is_attempt, op.has_failed) for op in tr.operations] == [
        ("authorization", True, False)
    ]
    with pytest.raises(ValidationError) as busy:
        invoice.void()
    assert busy.value.code == "transaction.operation-in-progress"
    if not three_d_s_page_served(server):
        return  # the challenge is the browser tests' to complete
    answered = answer_challenge(action.value, decision)
    assert answered.status_code in (200, 303), answered.text
    found = sdk.new_transaction().find(tr.id)
    if decision == "approve":
        assert found.status == "completed" and found.three_d_s_status == "success"
        assert money(found.captured_amount) == 10
        assert [(op.type, op.is_accountable) for op in found.operations] == [
            ("authorization", True),
            ("capture", True),
        ]
    else:
        assert (found.status, found.error_code) == ("failed", "card.failed-three-d-s")
        assert found.three_d_s_status == "failed" and money(found.captured_amount) == 0
    # The page is answered once: a second answer changes nothing.
    again = answer_challenge(action.value, "refuse" if decision == "approve" else "approve")
    assert again.status_code in (200, 303, 404)
    assert sdk.new_transaction().find(tr.id).status == found.status
