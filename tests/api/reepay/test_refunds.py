"""POST /v1/refund and GET /v1/refund/{id}: settled invoices only, up to the settled amount,
a credit note per refund, the ``key`` replaying a refund; on invoices paid through the
ProcessOut face (one ledger), which sees the refunds too. Every answer is checked against the
vendor's schema and the server's own document (``reepay`` fixture)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.api.reepay.support import assert_error, new_customer, new_invoice, reepay
from tests.conftest import RunningServer
from tests.dbcheck import query

__all__ = ["reepay"]  # a fixture

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc2": "123"}


def settled(
    reepay: httpx.Client, client: httpx.Client, handle: str, *, capture: str | None = None
) -> dict[str, Any]:
    """A Reepay invoice of 100.00 EUR (one line, 25 % VAT included), captured through the
    ProcessOut face (all of it, or ``capture``)."""
    new_customer(reepay, f"{handle}-c")
    invoice = new_invoice(reepay, f"{handle}-c", handle, currency="EUR")
    card = client.post("/cards", json=CARD).json()["card"]["id"]
    body: dict[str, Any] = {"source": card}
    if capture is not None:
        body["capture_amount"] = capture
    paid = client.post(f"/invoices/{invoice['id']}/capture", json=body)
    assert paid.status_code == 200, paid.text
    return invoice


def transaction_of(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/invoices/{invoice_id}/transactions").json()["transaction"]
    return found


def test_a_partial_then_the_rest(reepay: httpx.Client, client: httpx.Client) -> None:
    invoice = settled(reepay, client, "iv-r1")
    first = reepay.post("/refund", json={"invoice": "iv-r1", "amount": 2500, "text": "shoes"})
    assert first.status_code == 200, first.text
    one = first.json()
    assert (one["state"], one["amount"], one["currency"]) == ("refunded", 2500, "EUR")
    assert one["invoice"] == invoice["id"] and one["type"] == "card"
    assert one["id"].startswith("re_") and one["credit_note_id"] == "cn_" + one["id"][3:]
    # No amount: all that is left; by the invoice's id this time.
    rest = reepay.post("/refund", json={"invoice": invoice["id"]}).json()
    assert rest["amount"] == 7500 and rest["credit_note_id"] != one["credit_note_id"]
    shown = reepay.get("/invoice/iv-r1").json()
    assert (shown["state"], shown["settled_amount"], shown["refunded_amount"]) == (
        "settled",
        10000,
        10000,
    )
    # The ProcessOut face sees the same refunds on the same transaction.
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "refunded" and transaction["refunded_amount"] == "100"
    assert {r["id"] for r in transaction["refunds"]} == {one["id"], rest["id"]}
    assert reepay.get(f"/refund/{one['id']}").json() == one
    # Nothing left: code 65.
    assert_error(reepay.post("/refund", json={"invoice": "iv-r1", "amount": 1}), 400, 65)


def test_at_most_what_was_settled(reepay: httpx.Client, client: httpx.Client) -> None:
    """A partial capture settles part of the invoice: that part is what can be refunded."""
    settled(reepay, client, "iv-r2", capture="40")
    assert_error(reepay.post("/refund", json={"invoice": "iv-r2", "amount": 4001}), 400, 65)
    assert reepay.get("/invoice/iv-r2").json()["refunded_amount"] == 0
    done = reepay.post("/refund", json={"invoice": "iv-r2"}).json()
    assert done["amount"] == 4000


def test_only_settled_invoices(reepay: httpx.Client, client: httpx.Client) -> None:
    new_customer(reepay, "c-r3")
    invoice = new_invoice(reepay, "c-r3", "iv-r3", currency="EUR")
    assert_error(reepay.post("/refund", json={"invoice": "iv-r3", "amount": 1}), 400, 64)
    card = client.post("/cards", json=CARD).json()["card"]["id"]
    authorized = client.post(f"/invoices/{invoice['id']}/authorize", json={"source": card})
    assert authorized.status_code == 200, authorized.text
    assert_error(reepay.post("/refund", json={"invoice": "iv-r3"}), 400, 64)
    assert transaction_of(client, invoice["id"])["refunded_amount"] == "0"


def test_unknown_invoices_and_refunds(reepay: httpx.Client) -> None:
    assert_error(reepay.post("/refund", json={"invoice": "nope"}), 404, 31)
    assert_error(reepay.post("/refund", json={"invoice": "no pe"}), 404, 31)
    assert_error(reepay.get("/refund/re_" + "0" * 32), 404, 107)
    assert_error(reepay.get("/refund/iv-r1"), 404, 107)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "invoice"),
        ({"invoice": ""}, "invoice"),
        ({"invoice": "x", "amount": 0}, "amount"),
        ({"invoice": "x", "amount": -5}, "amount"),
        ({"invoice": "x", "amount": "5"}, "amount"),
        ({"invoice": "x", "key": "with space"}, "key"),
        ({"invoice": "x", "amount": 1, "vat": 2}, "vat"),
        (
            {
                "invoice": "x",
                "amount": 1,
                "note_lines": [{"amount": 1, "text": "a", "quantity": 1}],
            },
            "amount",
        ),
        ({"invoice": "x", "note_lines": []}, "note_lines"),
        ({"invoice": "x", "note_lines": [{"amount": 0, "text": "a", "quantity": 1}]}, "note_lines"),
    ],
)
def test_invalid_bodies_are_4xx_naming_the_field(
    reepay: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = reepay.post("/refund", json=body)
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] == 1
    assert response.json()["message"].startswith(field), response.text


def test_a_card_settled_invoice_has_no_manual_refund(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    settled(reepay, client, "iv-r4")
    body = {"invoice": "iv-r4", "manual_transfer": {"method": "cash", "payment_date": "2024-01-01"}}
    assert_error(reepay.post("/refund", json=body), 400, 109)
    assert reepay.get("/invoice/iv-r4").json()["refunded_amount"] == 0
    # Not settled comes first.
    new_customer(reepay, "c-r4b")
    new_invoice(reepay, "c-r4b", "iv-r4b", currency="EUR")
    assert_error(reepay.post("/refund", json={**body, "invoice": "iv-r4b"}), 400, 64)


def test_amounts_excluding_vat_and_note_lines(reepay: httpx.Client, client: httpx.Client) -> None:
    settled(reepay, client, "iv-r5")
    # 1000 excluding VAT at 25 %: 1250 refunded.
    ex = reepay.post(
        "/refund",
        json={"invoice": "iv-r5", "amount": 1000, "vat": 0.25, "amount_incl_vat": False},
    ).json()
    assert ex["amount"] == 1250
    lines = [
        {"amount": 333, "text": "a", "quantity": 3, "vat": 0.25},
        {"amount": 101, "text": "b", "quantity": 1, "vat": "0.25", "amount_incl_vat": False},
    ]
    noted = reepay.post("/refund", json={"invoice": "iv-r5", "note_lines": lines}).json()
    # 3 x 333 including VAT, and 101 + round_half_even(25.25) = 126.
    assert noted["amount"] == 999 + 126
    shown = reepay.get("/invoice/iv-r5").json()
    assert shown["refunded_amount"] == 1250 + 1125
    # The lines are the second note's, each with its figures by the order lines' rule; the
    # note's VAT is theirs: 3 x round_half_even(66.6) = 201, plus 25.
    plain, lined = shown["credit_notes"]
    assert len(plain["credit_note_lines"]) == 1
    assert lined["id"] == noted["credit_note_id"]
    assert (lined["amount"], lined["amount_vat"], lined["amount_ex_vat"]) == (1125, 226, 899)
    a, b = lined["credit_note_lines"]
    assert (a["text"], a["quantity"], a["vat"], a["origin"]) == ("a", 3, 0.25, "ondemand")
    assert (a["amount"], a["unit_amount"], a["unit_amount_vat"], a["unit_amount_ex_vat"]) == (
        999,
        333,
        67,
        266,
    )
    assert (a["amount_incl_vat"], a["amount_ex_vat"], a["amount_incl_vat_defined"]) == (
        999,
        798,
        True,
    )
    assert (b["amount"], b["unit_amount_vat"], b["amount_ex_vat"]) == (126, 25, 101)
    assert b["amount_incl_vat_defined"] is False
    assert sum(line["amount"] for line in lined["credit_note_lines"]) == lined["amount"]


def test_note_lines_are_kept_on_manual_refunds_and_name_order_lines(
    reepay: httpx.Client,
) -> None:
    """A manual refund's lines are kept likewise; ``order_line_id`` must name one of the
    invoice's order lines and ``origin`` be one of the vendor's words (else code 1, nothing
    refunded)."""
    new_customer(reepay, "c-nl")
    lines = [
        {"ordertext": "Shoes", "amount": 4000, "quantity": 2, "vat": 0.25},
        {"ordertext": "Socks", "amount": 500, "vat": 0.25},
    ]
    made = reepay.post(
        "/customer/c-nl/invoice",
        json={
            "handle": "iv-nl",
            "order_lines": lines,
            "manual_transfer": {"method": "cash", "payment_date": "2026-01-02"},
        },
    )
    assert made.status_code == 200, made.text
    shoes = made.json()["order_lines"][0]["id"]
    back = {"method": "bank_transfer", "payment_date": "2026-01-05"}

    def refund(*note_lines: dict[str, Any]) -> httpx.Response:
        body = {"invoice": "iv-nl", "note_lines": list(note_lines), "manual_transfer": back}
        return reepay.post("/refund", json=body)

    for bad, field in (
        ({"order_line_id": "ol_nope"}, "note_lines[0].order_line_id"),
        ({"origin": "nope"}, "note_lines[0].origin"),
        ({"text": " "}, "note_lines[0].text"),
    ):
        line = {"amount": 4000, "text": "One shoe back", "quantity": 1, **bad}
        error = assert_error(refund(line), 422, 1)
        assert error["message"].startswith(field), error
    assert reepay.get("/invoice/iv-nl").json()["refunded_amount"] == 0
    answer = refund(
        {
            "amount": 4000,
            "text": "One shoe back",
            "quantity": 1,
            "vat": 0.25,
            "order_line_id": shoes,
        },
        {"amount": 100, "text": "Postage", "quantity": 1, "origin": "additional_cost"},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["amount"], answer.json()["type"]) == (4100, "manual")
    (note,) = reepay.get("/invoice/iv-nl").json()["credit_notes"]
    shoe, postage = note["credit_note_lines"]
    assert (shoe["order_line_id"], shoe["amount"], shoe["unit_amount_vat"]) == (shoes, 4000, 800)
    assert (postage["origin"], postage["vat"], postage["unit_amount_vat"]) == (
        "additional_cost",
        0,
        0,
    )
    assert "order_line_id" not in postage
    assert (note["amount"], note["amount_vat"]) == (4100, 800)
    # More than is left to refund: refused (65), nothing kept.
    too_much = refund({"amount": 10000, "text": "All", "quantity": 1})
    assert_error(too_much, 400, 65)
    assert len(reepay.get("/invoice/iv-nl").json()["credit_notes"]) == 1


def test_the_key_replays_a_refund(reepay: httpx.Client, client: httpx.Client) -> None:
    invoice = settled(reepay, client, "iv-r6")
    body = {"invoice": "iv-r6", "amount": 1000, "key": "refund-once"}
    first = reepay.post("/refund", json=body)
    again = reepay.post("/refund", json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert transaction_of(client, invoice["id"])["refunded_amount"] == "10"
    # The same key for another refund is refused, and refunds nothing.
    other = reepay.post("/refund", json={**body, "amount": 2000})
    assert other.status_code == 400, other.text
    assert transaction_of(client, invoice["id"])["refunded_amount"] == "10"
    # Another key is another refund.
    third = reepay.post("/refund", json={**body, "key": "refund-twice"}).json()
    assert third["id"] != first.json()["id"]
    assert transaction_of(client, invoice["id"])["refunded_amount"] == "20"


def test_a_processout_refund_is_read_here(reepay: httpx.Client, client: httpx.Client) -> None:
    invoice = settled(reepay, client, "iv-r7")
    made = client.post(f"/invoices/{invoice['id']}/refunds", json={"amount": "12.34"})
    assert made.status_code == 200, made.text
    refund_id = made.json()["refund"]["id"]
    found = reepay.get(f"/refund/{refund_id}").json()
    assert (found["amount"], found["invoice"], found["state"]) == (1234, invoice["id"], "refunded")


def test_a_manually_settled_invoice_is_refunded_by_hand(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    """A manual refund of a manual settle: written at once, in part then the rest, never more
    than was settled; the key replays it; the ProcessOut face sees the refunds too."""
    new_customer(reepay, "c-r9")
    made = reepay.post(
        "/customer/c-r9/invoice",
        json={
            "handle": "iv-r9",
            "currency": "EUR",
            "order_lines": [{"ordertext": "a", "amount": 1000, "quantity": 1}],
            "manual_transfer": {"method": "bank_transfer", "payment_date": "2026-01-02"},
        },
    )
    assert made.status_code == 200 and made.json()["state"] == "settled", made.text
    back = {"method": "cash", "payment_date": "2026-01-03", "reference": "R-9"}
    # Without manual_transfer: not through a gateway (nothing was paid by card).
    assert_error(reepay.post("/refund", json={"invoice": "iv-r9", "amount": 100}), 400, 109)
    body = {"invoice": "iv-r9", "amount": 400, "key": "r9-a", "manual_transfer": back}
    first = reepay.post("/refund", json=body)
    assert first.status_code == 200, first.text
    refund = first.json()
    assert (refund["state"], refund["type"], refund["amount"]) == ("refunded", "manual", 400)
    assert refund["credit_note_id"].startswith("cn_")
    again = reepay.post("/refund", json=body)
    assert again.json() == refund and again.headers.get("idempotent-replayed") == "true"
    assert reepay.get(f"/refund/{refund['id']}").json() == refund
    # More than is left (600): code 65, nothing written; then all that is left.
    too_much = {"invoice": "iv-r9", "amount": 601, "manual_transfer": back}
    assert_error(reepay.post("/refund", json=too_much), 400, 65)
    rest = reepay.post("/refund", json={"invoice": "iv-r9", "manual_transfer": back})
    assert rest.status_code == 200 and rest.json()["amount"] == 600, rest.text
    assert reepay.get("/invoice/iv-r9").json()["refunded_amount"] == 1000
    invoice_id = made.json()["id"]
    tr = client.get(f"/invoices/{invoice_id}/transactions").json()["transaction"]
    assert (tr["status"], Decimal(tr["refunded_amount"])) == ("refunded", Decimal(10)), tr
    # A bad transfer names its field; nothing is written.
    bad = {"invoice": "iv-r9", "amount": 1, "manual_transfer": {"method": "gold"}}
    response = reepay.post("/refund", json=bad)
    assert response.status_code in (400, 422) and "manual_transfer" in response.text


def _paid(
    reepay: httpx.Client, client: httpx.Client, handle: str, currency: str, amount: int
) -> dict[str, Any]:
    """A Reepay invoice of one line of ``amount`` minor units, 25 % VAT included, captured in
    full through the ProcessOut face."""
    new_customer(reepay, f"{handle}-c")
    line = {"ordertext": "a", "amount": amount, "vat": 0.25, "quantity": 1}
    invoice = new_invoice(reepay, f"{handle}-c", handle, currency=currency, order_lines=[line])
    card = client.post("/cards", json=CARD).json()["card"]["id"]
    paid = client.post(f"/invoices/{invoice['id']}/capture", json={"source": card})
    assert paid.status_code == 200, paid.text
    return invoice


@pytest.mark.parametrize("currency", ["JPY", "EUR", "KWD"])
def test_each_refund_makes_a_credit_note_with_its_share_of_the_vat(
    reepay: httpx.Client, client: httpx.Client, currency: str
) -> None:
    """The rule of billing.refunds.credit_notes, in minor units whatever the exponent: 999
    including 25 % VAT carries round_half_even(199.8) = 200 of VAT; refunded in thirds, the
    notes carry the differences of the running shares 66.67 -> 67, 133.33 -> 133, 200."""
    handle = f"iv-cn-{currency.lower()}"
    invoice = _paid(reepay, client, handle, currency, 999)
    assert invoice["amount_vat"] == 200 and invoice["credit_notes"] == []
    made = []
    for text in ("one", None, "three"):
        body: dict[str, Any] = {"invoice": handle, "amount": 333}
        if text is not None:
            body["text"] = text
        response = reepay.post("/refund", json=body)
        assert response.status_code == 200, response.text
        made.append(response.json())
    shown = reepay.get(f"/invoice/{handle}").json()
    notes = shown["credit_notes"]
    assert [n["id"] for n in notes] == [r["credit_note_id"] for r in made]
    assert [n["transaction"] for n in notes] == [r["transaction"] for r in made]
    assert [n["amount_vat"] for n in notes] == [67, 66, 67]
    assert sum(n["amount_vat"] for n in notes) == shown["amount_vat"]
    for note in notes:
        assert (note["invoice"], note["customer"], note["currency"]) == (
            invoice["id"],
            f"{handle}-c",
            currency,
        )
        assert note["amount"] == 333 == note["amount_vat"] + note["amount_ex_vat"]
        (line,) = note["credit_note_lines"]
        assert (line["amount"], line["quantity"], line["amount_incl_vat"]) == (333, 1, 333)
        assert (line["unit_amount_vat"], line["amount_ex_vat"]) == (
            note["amount_vat"],
            note["amount_ex_vat"],
        )
    assert [n["credit_note_lines"][0]["text"] for n in notes] == ["one", "Refund", "three"]
    assert (shown["refunded_amount"], shown["credited_amount"], shown["credits"]) == (999, 0, [])
    # The same notes in the list and on the charge view of the invoice.
    listed = reepay.get("/list/invoice", params={"handle": handle}).json()["content"]
    assert [n["id"] for n in listed[0]["credit_notes"]] == [n["id"] for n in notes]


@pytest.mark.parametrize("currency", ["JPY", "EUR", "KWD"])
def test_a_credit_notes_vat_rounds_half_to_even(
    reepay: httpx.Client, client: httpx.Client, currency: str
) -> None:
    """4 including 25 % VAT carries round_half_even(0.8) = 1; half of it carries a share of
    0.5, rounded to 0 (half-up would give 1, then 0), and the rest the 1."""
    handle = f"iv-cnh-{currency.lower()}"
    _paid(reepay, client, handle, currency, 4)
    for _ in range(2):
        assert reepay.post("/refund", json={"invoice": handle, "amount": 2}).status_code == 200
    notes = reepay.get(f"/invoice/{handle}").json()["credit_notes"]
    assert [(n["amount_vat"], n["amount_ex_vat"]) for n in notes] == [(0, 2), (1, 1)]


def test_manual_refunds_make_credit_notes(reepay: httpx.Client) -> None:
    new_customer(reepay, "c-cnm")
    line = {"ordertext": "a", "amount": 1000, "quantity": 1, "vat": 0.2}
    made = reepay.post(
        "/customer/c-cnm/invoice",
        json={
            "handle": "iv-cnm",
            "currency": "EUR",
            "order_lines": [line],
            "manual_transfer": {"method": "cash", "payment_date": "2026-01-02"},
        },
    )
    assert made.status_code == 200, made.text
    back = {"method": "cash", "payment_date": "2026-01-03"}
    refund = reepay.post(
        "/refund", json={"invoice": "iv-cnm", "amount": 500, "manual_transfer": back}
    ).json()
    (note,) = reepay.get("/invoice/iv-cnm").json()["credit_notes"]
    # 1000 including 20 % carries round_half_even(166.67) = 167; half of it 83.5 -> 84.
    assert (note["id"], note["amount"], note["amount_vat"]) == (refund["credit_note_id"], 500, 84)
    assert note["transaction"] == refund["transaction"]


def test_the_processout_face_cannot_refund_a_manual_settle_through_the_gateway(
    server: RunningServer, reepay: httpx.Client, client: httpx.Client
) -> None:
    """The Reepay face refuses to refund a manually settled invoice through a gateway (code
    109: the money was paid outside it); the ProcessOut face sent such a refund to the
    gateway, which 'succeeded' in giving back money it never took."""
    new_customer(reepay, "c-r10")
    made = reepay.post(
        "/customer/c-r10/invoice",
        json={
            "handle": "iv-r10",
            "currency": "KWD",
            "order_lines": [{"ordertext": "a", "amount": 1500, "vat": 0.25}],
            "manual_transfer": {"method": "cash", "payment_date": "2026-01-02"},
        },
    )
    assert made.status_code == 200 and made.json()["state"] == "settled", made.text
    invoice_id = made.json()["id"]
    before = client.get(f"/invoices/{invoice_id}/transactions").json()["transaction"]
    for path in (f"/invoices/{invoice_id}/refunds", f"/transactions/{before['id']}/refunds"):
        refused = client.post(path, json={"amount": "0.5"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error_type"] == "transaction.illegal-operation", refused.text
    after = client.get(f"/invoices/{invoice_id}/transactions").json()["transaction"]
    assert after == before and Decimal(after["refunded_amount"]) == 0
    ((operations,),) = query(
        server.database_url,
        "SELECT count(*) FROM transaction_operations WHERE transaction_id = $1",
        before["id"],
    )
    assert operations == 1  # the manual settle only
    back = {"method": "cash", "payment_date": "2026-01-03"}
    by_hand = reepay.post("/refund", json={"invoice": "iv-r10", "manual_transfer": back})
    assert by_hand.status_code == 200 and by_hand.json()["amount"] == 1500, by_hand.text


def test_a_manual_settle_after_a_declined_card_is_refunded_by_hand(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    """'Settled by card' was read from the transaction's card, which a declined attempt leaves
    on it: an invoice paid in cash after a declined card could not be refunded by hand (109,
    "settled by card") and was refunded through the gateway by both faces instead."""
    new_customer(reepay, "c-r11")
    declined = reepay.post(
        "/customer/c-r11/payment_method",
        json={"number": "4000000000000002", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
    ).json()
    new_invoice(reepay, "c-r11", "iv-r11", currency="EUR")
    failed = reepay.post("/invoice/iv-r11/settle", json={"payment_method": declined["id"]})
    assert failed.status_code == 200 and failed.json()["state"] == "failed", failed.text
    assert reepay.post("/invoice/iv-r11/reactivate").status_code == 200
    cash = {"method": "cash", "payment_date": "2026-01-02"}
    settled = reepay.post("/invoice/iv-r11/manual_settle", json=cash)
    assert settled.status_code == 200 and settled.json()["state"] == "settled", settled.text
    invoice_id = settled.json()["id"]
    assert_error(reepay.post("/refund", json={"invoice": "iv-r11", "amount": 100}), 400, 109)
    refused = client.post(f"/invoices/{invoice_id}/refunds", json={"amount": "1.00"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_type"] == "transaction.illegal-operation"
    back = {"invoice": "iv-r11", "amount": 100, "manual_transfer": cash}
    by_hand = reepay.post("/refund", json=back)
    assert by_hand.status_code == 200 and by_hand.json()["type"] == "manual", by_hand.text
    assert reepay.get("/invoice/iv-r11").json()["refunded_amount"] == 100


def test_a_refund_with_a_rate_credits_the_vat_it_states(
    reepay: httpx.Client, client: httpx.Client
) -> None:
    """A refund's ``vat`` made its amount (1000 excluding VAT at 50 %: 1500) and was then
    dropped: its credit note showed a share of the invoice's 25 % (300 of VAT, 1200 excluding
    it), not the 500 and 1000 the refund was asked for."""
    settled(reepay, client, "iv-r12")
    body = {"invoice": "iv-r12", "amount": 1000, "vat": 0.5, "amount_incl_vat": False}
    made = reepay.post("/refund", json={**body, "text": "Broken strap"})
    assert made.status_code == 200 and made.json()["amount"] == 1500, made.text
    included = reepay.post("/refund", json={"invoice": "iv-r12", "amount": 1100, "vat": 0.1})
    assert included.status_code == 200, included.text
    first, second = reepay.get("/invoice/iv-r12").json()["credit_notes"]
    assert (first["amount"], first["amount_vat"], first["amount_ex_vat"]) == (1500, 500, 1000)
    (line,) = first["credit_note_lines"]
    assert (line["text"], line["vat"], line["unit_amount_ex_vat"]) == ("Broken strap", 0.5, 1000)
    assert line["amount_incl_vat_defined"] is False
    assert (second["amount"], second["amount_vat"], second["amount_ex_vat"]) == (1100, 100, 1000)
    (line,) = second["credit_note_lines"]
    assert (line["text"], line["vat"], line["amount_incl_vat_defined"]) == ("Refund", 0.1, True)
