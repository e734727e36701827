"""The hosted checkout over HTTP (no browser): what each page shows, the payments its forms
make, CSRF refusals, 404s, and that a card number never comes back, nor is stored or logged.
On every backend. The same flows in a real browser: test_checkout_browser.py."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import msgspec
import pytest

from settle.billing import payments as billing
from settle.clock import now_us
from settle.ids import new_id
from settle.projects.models import IssuedKeys
from tests.conftest import RunningServer
from tests.dbcheck import execute, query
from tests.web.support import (
    DECLINED_CARD,
    SUCCESS_CARD,
    THREE_D_S_CARD,
    assert_page,
    browser,
    card_form,
    hidden_fields,
    new_invoice,
    page_path,
    pay,
    stored_text,
    token_of,
    transaction_of,
)

DETAILS = [
    {"name": "Widget", "amount": "5.00", "quantity": 2},
    {"name": "Gift wrap", "amount": "2.50"},
]


def cards_of(server: RunningServer, project: IssuedKeys) -> list[tuple[Any, ...]]:
    return query(
        server.database_url, "SELECT id FROM cards WHERE project_id = $1", project.project.id
    )


# --- the page -----------------------------------------------------------------------------------


def test_the_page_shows_the_invoice_and_a_card_form(
    server: RunningServer, client: httpx.Client
) -> None:
    invoice = new_invoice(client, amount="12.50", currency="EUR", details=DETAILS)
    with browser(server) as b:
        response = b.get(page_path(invoice))
    text = assert_page(response, 200)
    assert '<html lang="en">' in text
    assert "<h1" in text and "Amazing item" in text
    assert "EUR 12.50" in text
    assert "Widget" in text and "2 \N{MULTIPLICATION SIGN} EUR 5.00" in text
    assert "Gift wrap" in text and "EUR 2.50" in text
    assert "Sandbox" in text
    # The standard autocomplete tokens, each input with its own label.
    for token in ("cc-number", "cc-exp-month", "cc-exp-year", "cc-csc", "cc-name"):
        assert f'autocomplete="{token}"' in text, token
    inputs = re.findall(r'<input type="text" id="([^"]+)"', text)
    assert len(inputs) == 5
    for input_id in inputs:
        assert f'<label for="{input_id}">' in text, input_id
    assert '<button class="button" type="submit">Pay EUR 12.50</button>' in text
    # Everything from Settle itself: no address leaves the page's own origin.
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', text):
        assert url.startswith(("/", "#")), url
    assert "<script" not in text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("settle_csrf=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_lines_defined_excluding_vat_show_their_price_including_it(
    server: RunningServer, project: IssuedKeys, client: httpx.Client
) -> None:
    """The page showed each line's stored ``amount``, which for a Reepay line with
    ``amount_incl_vat: false`` is its price *excluding* VAT: "2 x EUR 80.00" above a total
    of EUR 200.00 that the payer could not add up."""
    line = {"ordertext": "Shoes", "amount": 8000, "vat": 0.25, "quantity": 2}
    body = {
        "handle": "ex-vat",
        "currency": "EUR",
        "order_lines": [{**line, "amount_incl_vat": False}],
    }
    with httpx.Client(
        base_url=f"{server.url}/v1", auth=(project.reepay_private_key, ""), timeout=30
    ) as reepay:
        assert reepay.post("/customer", json={"handle": "payer"}).status_code == 200
        made = reepay.post("/customer/payer/invoice", json=body)
    assert made.status_code == 200, made.text
    invoice = client.get(f"/invoices/{made.json()['id']}").json()["invoice"]
    with browser(server) as b:
        text = assert_page(b.get(page_path(invoice)), 200)
    assert "Shoes" in text and "2 \N{MULTIPLICATION SIGN} EUR 100.00" in text
    assert "EUR 80.00" not in text
    assert '<button class="button" type="submit">Pay EUR 200.00</button>' in text


def test_every_value_is_escaped(server: RunningServer, client: httpx.Client) -> None:
    evil = "<script>alert(1)</script>"
    invoice = new_invoice(
        client,
        name=evil,
        details=[{"name": '"><img src=x onerror=alert(1)>', "amount": "10"}],
        cancel_url="https://shop.example/cancel?a=1&b=\"'><x>",
    )
    with browser(server) as b:
        text = assert_page(b.get(page_path(invoice)), 200)
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img" not in text and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<x>" not in text


def test_the_stylesheet_is_served_by_settle(server: RunningServer) -> None:
    with browser(server) as b:
        css = b.get("/checkout/static/checkout.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert ":focus-visible" in css.text and "@import" not in css.text and "url(" not in css.text


def test_unknown_and_foreign_addresses_are_plain_404_pages(
    server: RunningServer, client: httpx.Client, project: IssuedKeys
) -> None:
    invoice = new_invoice(client)
    other = server.create_project("other")
    mine = project.processout_username
    live = project.project.id  # the same project's live mode
    paths = [
        f"/checkout/{mine}/{new_id('iv_')}",
        f"/checkout/{other.processout_username}/{invoice['id']}",
        f"/checkout/{live}/{invoice['id']}",
        f"/checkout/nobody/{invoice['id']}",
        f"/checkout/test-/{invoice['id']}",
        f"/checkout/{mine}/%00",
        f"/checkout/%00/{invoice['id']}",
        f"/checkout/{mine}/{'x' * 5000}",
        f"/checkout/{mine}/<script>",
        f"/checkout/{mine}",
        f"/checkout/{mine}/{invoice['id']}/more",
        "/checkout/static/other.css",
        f"/3ds/{new_id('opk_')}",
        "/3ds/%00",
        f"/3ds/{'x' * 5000}",
    ]
    with browser(server) as b:
        for path in paths:
            text = assert_page(b.get(path), 404)
            assert "Page not found" in text, path
            assert invoice["id"] not in text
        # A form posted to a foreign pair is a 404 too, not a CSRF refusal.
        foreign = f"/checkout/{other.processout_username}/{invoice['id']}"
        assert_page(b.post(foreign, data=card_form(SUCCESS_CARD)), 404)
    assert transaction_of(client, invoice["id"])["status"] == "waiting"


def test_other_methods_and_bodies_get_pages(server: RunningServer, client: httpx.Client) -> None:
    path = page_path(new_invoice(client))
    with browser(server) as b:
        token = token_of(b.get(path))
        assert_page(b.put(path, data={"csrf_token": token}), 405)
        assert_page(b.post(path, json={"csrf_token": token}), 400)
        assert_page(b.post(path, content=b"a=" + b"x" * 20_000, headers=_FORM), 413)
        assert_page(b.post(path, content=b"csrf_token=%ff%fe", headers=_FORM), 400)
        many = "&".join(f"f{i}=1" for i in range(50)).encode()
        assert_page(b.post(path, content=many, headers=_FORM), 400)


_FORM = {"content-type": "application/x-www-form-urlencoded"}


# --- CSRF ---------------------------------------------------------------------------------------


def test_a_form_without_its_token_is_refused(
    server: RunningServer, client: httpx.Client, project: IssuedKeys
) -> None:
    invoice = new_invoice(client)
    other_invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        # No cookie, no token: a form posted from another site.
        text = assert_page(b.post(path, data=card_form(SUCCESS_CARD)), 403)
        assert "This form has expired" in text and f'href="{path}"' in text
        fields = hidden_fields(b.get(path))  # now the browser has its cookie
        token = fields["csrf_token"]
        assert_page(b.post(path, data=card_form(SUCCESS_CARD)), 403)
        assert_page(b.post(path, data={"csrf_token": "", **card_form(SUCCESS_CARD)}), 403)
        # A token of another invoice's page, or of another browser's cookie.
        other = token_of(b.get(page_path(other_invoice)))
        assert_page(b.post(path, data={"csrf_token": other, **card_form(SUCCESS_CARD)}), 403)
        with browser(server) as stranger:
            stranger.get(path)
            refused = stranger.post(path, data={"csrf_token": token, **card_form(SUCCESS_CARD)})
            assert_page(refused, 403)
        # The browser's own token: accepted.
        paid = b.post(path, data={**fields, **card_form(SUCCESS_CARD)})
        assert paid.status_code == 303, paid.text
    assert transaction_of(client, invoice["id"])["status"] == "completed"
    assert transaction_of(client, other_invoice["id"])["status"] == "waiting"
    assert len(cards_of(server, project)) == 1


# --- the card form ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"number": "4111111111111112"}, {"number": "card number is not valid"}),
        ({"number": "4111 11"}, {"number": "12 to 19 digits"}),
        ({"exp_month": "13"}, {"exp_month": "from 01 to 12"}),
        ({"exp_year": "20"}, {"exp_year": "in the past"}),
        ({"cvc": "12"}, {"cvc": "3 or 4 digits"}),
        (
            {"number": "", "exp_month": "", "exp_year": "x", "cvc": ""},
            {"number": "Enter the card number", "exp_month": "2 digits", "cvc": "security code"},
        ),
        ({"name": "x" * 101}, {"name": "at most 100"}),
    ],
    ids=["luhn", "short", "month", "expired", "cvc", "missing", "name"],
)
def test_invalid_cards_are_told_beside_their_field_and_never_echoed(
    server: RunningServer,
    client: httpx.Client,
    project: IssuedKeys,
    fields: dict[str, str],
    errors: dict[str, str],
) -> None:
    invoice = new_invoice(client)
    path = page_path(invoice)
    form = {**card_form(SUCCESS_CARD, cvc="9731"), **fields}
    with browser(server) as b:
        text = assert_page(pay(b, path, form.pop("number"), **form), 400)
    assert "Check the card details" in text and 'role="alert"' in text
    for field, message in errors.items():
        error = re.search(f'<p class="field-error" id="f-{field}-error">([^<]*)</p>', text)
        assert error is not None and message in error.group(1), (field, text)
        assert f'href="#f-{field}"' in text  # the summary links to the field
        tag = re.search(f'<input [^>]*id="f-{field}"[^>]*>', text)
        assert tag is not None
        assert 'aria-invalid="true"' in tag.group(0)
        assert f"f-{field}-error" in tag.group(0)
    # The first field to correct takes the focus.
    assert text.count(" autofocus") == 1
    first = re.search(r'<input [^>]*id="(f-[a-z_]+)"[^>]*autofocus', text)
    assert first is not None and first.group(1) == f"f-{next(iter(errors))}"
    # The number and the CVC are never sent back; the name and expiry are refilled. (The
    # sandbox's page names one test card, 4242...: the numbers sent here are others.)
    number = fields.get("number", "")
    if number:
        assert number not in text and number.replace(" ", "") not in text
    assert "9731" not in text
    assert re.search(r'id="f-number"[^>]*value=""', text)
    assert re.search(r'id="f-cvc"[^>]*value=""', text)
    if "exp_month" not in fields:
        assert re.search(r'id="f-exp_month"[^>]*value="12"', text)
    if "name" not in fields:
        assert 'value="Jane Doe"' in text
    # Nothing was vaulted, stored or tried.
    assert transaction_of(client, invoice["id"])["status"] == "waiting"
    assert cards_of(server, project) == []


# --- payments -----------------------------------------------------------------------------------


def test_paying_with_the_success_card(
    server: RunningServer,
    client: httpx.Client,
    project: IssuedKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    invoice = new_invoice(client, amount="10.00", currency="EUR")
    path = page_path(invoice)
    with browser(server) as b:
        paid = pay(b, path, "4242 4242 4242 4242", cvc="9731")
        assert paid.status_code == 303, paid.text
        assert paid.headers["location"] == path + "?result=paid"
        text = assert_page(b.get(paid.headers["location"]), 200)
        assert "Payment successful" in text
        assert "Visa ending in 4242" in text and "EUR 10.00" in text
        assert "<form" not in text
        # Later, the link says it is paid; a second form posted changes nothing.
        again = assert_page(b.get(path), 200)
        assert "This invoice is already paid" in again
        token = token_of(
            b.get(f"/checkout/{project.processout_username}/{new_invoice(client)['id']}")
        )
        assert (
            b.post(path, data={"csrf_token": token, **card_form(SUCCESS_CARD)}).status_code == 403
        )
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "completed"
    assert transaction["captured_amount"] == "10"
    assert transaction["card_id"] is not None
    assert len(cards_of(server, project)) == 1
    # The number and the CVC: not stored, not logged.
    assert SUCCESS_CARD not in stored_text(server, project.project.id)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SUCCESS_CARD not in logged and "4242 4242" not in logged and "9731" not in logged


def test_an_amount_changed_while_the_page_was_open_is_not_charged(
    server: RunningServer, client: httpx.Client, project: IssuedKeys
) -> None:
    # The payer opened a page that said "Pay EUR 10.00"; the merchant then changed the
    # invoice's amount (PUT /invoices/{id}). The form posted from the open page must not
    # charge the new amount, which the payer never saw (found by a probe: it was charged
    # EUR 500.00).
    invoice = new_invoice(client, amount="10.00", currency="EUR")
    path = page_path(invoice)
    with browser(server) as b:
        page = b.get(path)
        assert "Pay EUR 10.00" in page.text
        changed = client.put(f"/invoices/{invoice['id']}", json={"amount": "500.00"})
        assert changed.status_code == 200, changed.text
        form = {**hidden_fields(page), **card_form(SUCCESS_CARD, cvc="9731")}
        again = b.post(path, data=form)
        text = assert_page(again, 409)
        assert "The amount to pay has changed" in text and "It is now EUR 500.00" in text
        assert "Pay EUR 500.00" in text  # the form again, for the amount now due
        assert SUCCESS_CARD not in text and "9731" not in text
        assert 'value="Jane Doe"' in text
        # A form without the amount (not from this page) is not taken either.
        del form["amount"]
        assert_page(b.post(path, data=form), 409)
        assert transaction_of(client, invoice["id"])["status"] == "waiting"
        assert cards_of(server, project) == []
        # Paid from the page that shows the new amount: charged what it showed.
        paid = b.post(path, data={**hidden_fields(again), **card_form(SUCCESS_CARD)})
        assert paid.status_code == 303, paid.text
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "completed" and transaction["captured_amount"] == "500"


def test_an_amount_changed_as_the_payment_begins_is_rolled_back(
    server: RunningServer,
    client: httpx.Client,
    project: IssuedKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The amount is checked again under the invoice's lock: a change landing between the
    # page's read and the lock. Stood in for by an authorization for another amount.
    begin = billing.begin_authorize

    async def begin_for_more(*args: Any, **kwargs: Any) -> billing.Attempt:
        attempt = await begin(*args, **kwargs)
        more = msgspec.structs.replace(attempt.operation, amount=attempt.operation.amount + 1)
        return msgspec.structs.replace(attempt, operation=more)

    invoice = new_invoice(client, amount="10.00", currency="EUR")
    path = page_path(invoice)
    with browser(server) as b:
        page = b.get(path)
        monkeypatch.setattr(billing, "begin_authorize", begin_for_more)
        posted = b.post(path, data={**hidden_fields(page), **card_form(SUCCESS_CARD)})
        text = assert_page(posted, 409)
        assert "The amount to pay has changed" in text
    assert transaction_of(client, invoice["id"])["status"] == "waiting"
    assert transaction_of(client, invoice["id"])["operations"] == []
    assert cards_of(server, project) == []


def test_backend_capture_only_authorizes(server: RunningServer, client: httpx.Client) -> None:
    invoice = new_invoice(client, require_backend_capture=True)
    with browser(server) as b:
        paid = pay(b, page_path(invoice), SUCCESS_CARD)
        assert paid.status_code == 303
        text = assert_page(b.get(paid.headers["location"]), 200)
    assert "Payment successful" in text and "will collect it" in text
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "authorized"
    assert transaction["authorized_amount"] == "10" and transaction["captured_amount"] == "0"


def test_a_declined_card_is_told_and_another_may_pay(
    server: RunningServer, client: httpx.Client
) -> None:
    invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        declined = pay(b, path, DECLINED_CARD)
        assert declined.status_code == 303 and declined.headers["location"] == path
        text = assert_page(b.get(path), 200)
        assert "Payment declined" in text and "Your card was declined" in text
        assert DECLINED_CARD not in text
        assert transaction_of(client, invoice["id"])["status"] == "failed"
        assert transaction_of(client, invoice["id"])["error_code"] == "card.declined"
        paid = pay(b, path, SUCCESS_CARD)
        assert paid.headers["location"] == path + "?result=paid"
    assert transaction_of(client, invoice["id"])["status"] == "completed"


def test_three_d_s_approved(server: RunningServer, client: httpx.Client) -> None:
    invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        challenged = pay(b, path, THREE_D_S_CARD)
        assert challenged.status_code == 303
        location = challenged.headers["location"]
        assert re.fullmatch(re.escape(server.url) + r"/3ds/opk_[A-Za-z0-9]+", location), location
        challenge = location.removeprefix(server.url)
        # Meanwhile, the checkout page sends the payer to the challenge.
        waiting = assert_page(b.get(path), 200)
        assert "Confirm the payment with your bank" in waiting and location in waiting
        text = assert_page(b.get(challenge), 200)
        assert "Approve" in text and "Refuse" in text and "EUR 10.00" in text
        assert "Visa ending in 0101" in text
        token = token_of(b.get(challenge))
        assert_page(b.post(challenge, data={"decision": "approve"}), 403)
        checkout_token = token_of(b.get(page_path(new_invoice(client))))
        assert_page(
            b.post(challenge, data={"csrf_token": checkout_token, "decision": "approve"}), 403
        )
        assert_page(b.post(challenge, data={"csrf_token": token, "decision": "maybe"}), 400)
        assert transaction_of(client, invoice["id"])["status"] == "pending"
        approved = b.post(challenge, data={"csrf_token": token, "decision": "approve"})
        assert approved.status_code == 303 and approved.headers["location"] == path + "?result=paid"
        assert "Payment successful" in assert_page(b.get(approved.headers["location"]), 200)
        # Answered: the challenge's address now leads back to the checkout.
        assert b.get(challenge).headers["location"] == path
        late = b.post(challenge, data={"csrf_token": token, "decision": "refuse"})
        assert late.status_code == 303 and late.headers["location"] == path
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "completed"
    assert transaction["three_d_s_status"] == "success"


def test_three_d_s_refused(server: RunningServer, client: httpx.Client) -> None:
    invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        challenge = pay(b, path, THREE_D_S_CARD).headers["location"].removeprefix(server.url)
        token = token_of(b.get(challenge))
        refused = b.post(challenge, data={"csrf_token": token, "decision": "refuse"})
        assert refused.status_code == 303 and refused.headers["location"] == path
        text = assert_page(b.get(path), 200)
        assert "not confirmed with 3-D Secure" in text and "<form" in text
    transaction = transaction_of(client, invoice["id"])
    assert transaction["status"] == "failed"
    assert transaction["error_code"] == "card.failed-three-d-s"


def test_return_and_cancel_urls(server: RunningServer, client: httpx.Client) -> None:
    return_url = "https://shop.example/return?order=7&x='1'"
    invoice = new_invoice(client, return_url=return_url, cancel_url="https://shop.example/cart")
    path = page_path(invoice)
    shown = return_url.replace("&", "&amp;").replace("'", "&#x27;")
    with browser(server) as b:
        page = b.get(path)
        text = assert_page(page, 200)
        assert 'href="https://shop.example/cart"' in text and "Cancel and return to" in text
        # The form ends at Settle (a browser checks form-action along the POST's redirects):
        # never at the return URL, which may redirect in turn (test_checkout_browser.py).
        csp = page.headers["content-security-policy"]
        assert f"form-action 'self' {server.url};" in csp and "shop.example" not in csp
        paid = b.post(path, data={**hidden_fields(page), **card_form(SUCCESS_CARD)})
        assert paid.status_code == 303 and paid.headers["location"] == path + "?result=paid"
        # That page sends the payer on at once, and links there too.
        done = assert_page(b.get(paid.headers["location"]), 200)
        assert "Payment successful" in done
        assert f'<meta http-equiv="refresh" content="0; url={shown}">' in done
        assert f'href="{shown}"' in done
        later = assert_page(b.get(path), 200)
        assert "already paid" in later and f'href="{shown}"' in later
        assert "refresh" not in later  # coming back later: no sending on


def test_a_cancelled_invoice_cannot_be_paid(server: RunningServer, client: httpx.Client) -> None:
    invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        token = token_of(b.get(path))
        execute(
            server.database_url,
            "UPDATE invoices SET state = 'cancelled' WHERE id = $1",
            invoice["id"],
        )
        text = assert_page(b.get(path), 200)
        assert "This invoice was cancelled" in text and "<form" not in text
        posted = b.post(path, data={"csrf_token": token, **card_form(SUCCESS_CARD)})
        assert posted.status_code == 303 and posted.headers["location"] == path
    assert transaction_of(client, invoice["id"])["status"] == "waiting"


def test_an_expired_invoice_cannot_be_paid(server: RunningServer, client: httpx.Client) -> None:
    # The page was opened before the invoice's expires_at; the form is posted after it.
    invoice = new_invoice(client)
    path = page_path(invoice)
    with browser(server) as b:
        page = b.get(path)
        execute(
            server.database_url,
            "UPDATE invoices SET expires_at = $1 WHERE id = $2",
            now_us() - 1,
            invoice["id"],
        )
        text = assert_page(b.get(path), 200)
        assert "This payment link has expired" in text and "<form" not in text
        posted = b.post(path, data={**hidden_fields(page), **card_form(SUCCESS_CARD)})
        assert posted.status_code == 303 and posted.headers["location"] == path
    assert transaction_of(client, invoice["id"])["status"] == "waiting"
    refused = client.post(f"/invoices/{invoice['id']}/authorize", data={"source": "card_x"})
    assert refused.status_code == 400 and "expired at" in refused.json()["message"]


def test_an_invoice_of_nothing_has_no_form(server: RunningServer, client: httpx.Client) -> None:
    invoice = new_invoice(client, amount="0")
    with browser(server) as b:
        text = assert_page(b.get(page_path(invoice)), 200)
    assert "This invoice cannot be paid" in text and "<form" not in text


def test_a_live_invoice_has_its_own_page(server: RunningServer) -> None:
    keys = server.create_project("Live shop", sandbox=False)
    auth = (keys.processout_username, keys.processout_password)
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as live:
        invoice = new_invoice(live)
        path = page_path(invoice)
        assert path.startswith(f"/checkout/{keys.project.id}/")
        with browser(server) as b:
            text = assert_page(b.get(path), 200)
            assert "Live shop" in text and "Sandbox" not in text and "test card" not in text
            sandbox_path = f"/checkout/test-{keys.project.id}/{invoice['id']}"
            assert_page(b.get(sandbox_path), 404)
            paid = pay(b, path, SUCCESS_CARD)
            assert paid.headers["location"] == path + "?result=paid"
        assert transaction_of(live, invoice["id"])["status"] == "completed"
