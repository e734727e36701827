"""The checkout's pages as HTML: the invoice, the card form, what became of a payment, and the
sandbox's 3-D Secure challenge. Pure functions of what the handlers loaded (settle.web.checkout,
settle.web.three_d_s); every value is escaped by ``esc``.

Accessibility: every input has its label (``for``/``id``); the expiry month and year are one
``fieldset`` with a legend; errors are listed first in a summary that links to each field
(announced by screen readers, ``role="alert"``), and told again beside the field, tied to it by
``aria-describedby`` and marked ``aria-invalid``; the tab order is the reading order; the
submit is a real button. The card inputs carry the standard ``autocomplete`` tokens
(``cc-number``, ``cc-exp-month``, ``cc-exp-year``, ``cc-csc``, ``cc-name``), so browsers and
password managers fill them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from settle.clock import now_us
from settle.invoices import vat
from settle.invoices.models import Invoice
from settle.payments.models import Card, Transaction
from settle.projects.models import Scope
from settle.web import csrf
from settle.web.html import esc, message_page, money, notice, page
from settle.web.pages import origin_of


class State(enum.Enum):
    """Where a checkout stands, as the payer sees it."""

    OPEN = "open"  # the card form (after a decline too)
    CHALLENGE = "challenge"  # a 3-D Secure challenge waits for the payer
    PROCESSING = "processing"  # a payment is in flight
    PAID = "paid"  # captured, or authorized for the merchant to capture
    CAPTURE_FAILED = "capture-failed"  # authorized, but the capture was declined
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # past the invoice's expires_at, with no payment under way
    CLOSED = "closed"  # failed for good, or nothing to pay


@dataclass(frozen=True, slots=True)
class Checkout:
    """One invoice's checkout, as loaded for a page."""

    scope: Scope
    username: str  # the project as the link names it ("test-proj_...")
    merchant: str
    invoice: Invoice
    transaction: Transaction
    card: Card | None
    challenge_url: str | None  # where the payer answers a pending 3-D Secure challenge

    @property
    def path(self) -> str:
        return f"/checkout/{self.username}/{self.invoice.id}"

    @property
    def purpose(self) -> str:
        """What the card form's CSRF token is good for."""
        return f"checkout:{self.invoice.id}"

    @property
    def amount(self) -> str:
        return money(self.invoice.terms.amount, self.invoice.terms.currency)

    @property
    def title(self) -> str:
        return self.invoice.terms.name or f"Payment to {self.merchant}"

    @property
    def state(self) -> State:
        iv, status = self.invoice, self.transaction.status
        if iv.is_cancelled:
            return State.CANCELLED
        if iv.is_paid:
            return State.PAID
        if iv.is_authorized:
            return State.CAPTURE_FAILED if status == "failed" else State.PAID
        if iv.is_failed or iv.terms.amount <= 0:
            return State.CLOSED
        if status == "pending":
            return State.CHALLENGE if self.challenge_url else State.PROCESSING
        if iv.expired(now_us()):
            return State.EXPIRED
        return State.OPEN

    @property
    def return_url(self) -> str | None:
        url = self.invoice.terms.return_url
        return url if origin_of(url) else None

    @property
    def cancel_url(self) -> str | None:
        url = self.invoice.terms.cancel_url
        return url if origin_of(url) else None


# The gateway's error codes, as a payer should read them.
DECLINES: Final = {
    "card.declined": "Your card was declined. Try another card, or ask your bank why.",
    "card.failed-three-d-s": (
        "The payment was not confirmed with 3-D Secure, so it did not go through."
        " You can try again, or use another card."
    ),
    "gateway.declined": "The bank declined the payment after approving it.",
}
DEFAULT_DECLINE: Final = "The payment did not go through. Try another card, or ask your bank."


def decline_text(error_code: str | None) -> str:
    return DECLINES.get(error_code or "", DEFAULT_DECLINE)


# --- the invoice ------------------------------------------------------------------------------


def _card_label(card: Card) -> str:
    return f"{card.scheme.title()} ending in {card.last_4_digits}"


def summary(c: Checkout) -> str:
    """The merchant, the invoice's name, its lines and its total."""
    terms = c.invoice.terms
    currency = terms.currency
    sandbox = (
        '<p class="tag" title="No real money moves: pay with a test card.">Sandbox</p>'
        if c.scope.sandbox
        else ""
    )
    rows = []
    for line in c.invoice.lines:
        name = line.name or line.description or "Item"
        quantity = f"{line.quantity} \N{MULTIPLICATION SIGN} " if line.quantity != 1 else ""
        # Per unit including VAT, as the total is: a line may be defined excluding it.
        unit = vat.of_line(line).unit_amount
        rows.append(
            f'<tr><th scope="row">{esc(name)}</th>'
            f'<td class="num">{esc(quantity)}{esc(money(unit, currency))}</td></tr>'
        )
    if terms.shipping_amount:
        rows.append(
            '<tr><th scope="row">Shipping</th>'
            f'<td class="num">{esc(money(terms.shipping_amount, currency))}</td></tr>'
        )
    lines = ""
    if rows:
        lines = (
            '<table class="lines"><caption class="visually-hidden">Details</caption>'
            '<thead class="visually-hidden"><tr><th scope="col">Item</th>'
            '<th scope="col">Amount</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return f"""<header class="merchant">
<p class="merchant-name">{esc(c.merchant)}</p>{sandbox}
</header>
<h1 id="page-title">{esc(c.title)}</h1>
{lines}
<p class="total"><span>Total</span> <strong class="amount">{esc(c.amount)}</strong></p>"""


# --- the card form ------------------------------------------------------------------------------

# The amount the form's button offers to pay, in minor units: the payment is made only if it
# is still the invoice's (the merchant may change an open invoice's amount while its page is
# open, and the payer agreed to the one shown).
AMOUNT_FIELD: Final = "amount"

# The form's fields: name -> (label, autocomplete, inputmode, maxlength)
FIELDS: Final = {
    "number": ("Card number", "cc-number", "numeric", 23),
    "exp_month": ("Month (MM)", "cc-exp-month", "numeric", 2),
    "exp_year": ("Year (YY)", "cc-exp-year", "numeric", 4),
    "cvc": ("Security code (CVC)", "cc-csc", "numeric", 4),
    "name": ("Name on card", "cc-name", "text", 100),
}


def _input(name: str, value: str, error: str | None, *, hint: str = "", focus: bool = False) -> str:
    label, autocomplete, inputmode, maxlength = FIELDS[name]
    described = []
    hint_html = ""
    if hint:
        hint_html = f'<p class="hint" id="f-{name}-hint">{esc(hint)}</p>'
        described.append(f"f-{name}-hint")
    error_html = ""
    if error:
        error_html = f'<p class="field-error" id="f-{name}-error">{esc(error)}</p>'
        described.append(f"f-{name}-error")
    attrs = [
        'type="text"',
        f'id="f-{name}"',
        f'name="{name}"',
        f'autocomplete="{autocomplete}"',
        f'inputmode="{inputmode}"',
        f'maxlength="{maxlength}"',
        'spellcheck="false"',
        f'value="{esc(value)}"',
    ]
    if name != "name":
        attrs.append("required")
    if described:
        attrs.append(f'aria-describedby="{" ".join(described)}"')
    if error:
        attrs.append('aria-invalid="true"')
    if focus:
        attrs.append("autofocus")
    css = "field field-invalid" if error else "field"
    return f"""<div class="{css} field-{name}">
<label for="f-{name}">{esc(label)}</label>
{hint_html}{error_html}<input {" ".join(attrs)}>
</div>"""


def card_form(
    c: Checkout,
    key: str,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    banner_html: str = "",
) -> str:
    """The checkout page with its card form. ``values`` refills the fields a payer may see
    again (name and expiry: never the number or the CVC); ``errors`` are by field name."""
    values, errors = values or {}, errors or {}
    summary_html = ""
    if errors:
        items = "".join(
            f'<li><a href="#f-{esc(name)}">{esc(text)}</a></li>'
            for name, text in errors.items()
            if name in FIELDS
        )
        summary_html = f"""<div class="notice notice-error" role="alert" tabindex="-1">
<p class="notice-title">Check the card details</p>
<ul class="error-list">{items}</ul>
</div>"""
    expiry_error = errors.get("exp_month") or errors.get("exp_year")
    # The first field to correct takes the focus, its label and error read out with it.
    first = next((name for name in FIELDS if name in errors), None)

    def field(name: str, value: str = "", hint: str = "") -> str:
        return _input(name, value, errors.get(name), hint=hint, focus=name == first)

    cancel = ""
    if c.cancel_url:
        cancel = (
            f'<p class="cancel"><a href="{esc(c.cancel_url)}">'
            f"Cancel and return to {esc(c.merchant)}</a></p>"
        )
    test_cards = ""
    if c.scope.sandbox:
        test_cards = (
            '<p class="hint sandbox-hint">Sandbox: pay with the test card 4242 4242 4242 4242,'
            " any future expiry and any CVC.</p>"
        )
    body = f"""{summary(c)}
{banner_html}{summary_html}
<form class="pay" method="post" action="{esc(c.path)}">
<input type="hidden" name="{csrf.FIELD}" value="{esc(csrf.token(key, c.purpose))}">
<input type="hidden" name="{AMOUNT_FIELD}" value="{esc(c.invoice.terms.amount)}">
{field("number")}
<fieldset class="expiry{" field-invalid" if expiry_error else ""}">
<legend>Expiry date</legend>
<div class="expiry-fields">
{field("exp_month", values.get("exp_month", ""))}
{field("exp_year", values.get("exp_year", ""))}
</div>
</fieldset>
{field("cvc", hint="3 digits on the back, or 4 on the front")}
{field("name", values.get("name", ""))}
<button class="button" type="submit">Pay {esc(c.amount)}</button>
</form>
{cancel}{test_cards}"""
    return page(f"Pay {c.amount} to {c.merchant}", body)


def checkout_page(c: Checkout, key: str) -> str:
    """The page the invoice's link shows, whatever its state."""
    state = c.state
    if state is State.OPEN:
        banner = ""
        if c.transaction.status == "failed":
            banner = notice("error", "Payment declined", decline_text(c.transaction.error_code))
        return card_form(c, key, banner_html=banner)
    return result_page(c, just_paid=False)


def result_page(c: Checkout, *, just_paid: bool) -> str:
    """What became of the invoice: paid, waiting, cancelled, closed."""
    state = c.state
    onwards = ""
    if state is State.PAID:
        paid_with = f" with your {_card_label(c.card)}" if c.card is not None else ""
        if just_paid:
            title = "Payment successful"
            text = f"Thank you. Your payment of {c.amount} to {c.merchant} went through{paid_with}."
        else:
            title = "This invoice is already paid"
            text = f"{c.merchant} has received the payment of {c.amount}{paid_with}."
        if c.invoice.is_authorized:
            text += f" {c.merchant} will collect it."
        box = notice("success", title, text)
        if c.return_url:
            onwards = _link(c.return_url, f"Continue to {c.merchant}")
    elif state is State.CHALLENGE:
        title = "Confirm the payment with your bank"
        box = notice("info", title, "Your bank asks you to confirm this payment (3-D Secure).")
        onwards = _link(c.challenge_url or c.path, "Continue to your bank")
    elif state is State.PROCESSING:
        title = "Your payment is being processed"
        box = notice(
            "info", title, "This takes a moment. Reload this page to see whether it went through."
        )
        onwards = _link(c.path, "Reload")
    elif state is State.CAPTURE_FAILED:
        title = "The payment could not be completed"
        box = notice("error", title, decline_text(c.transaction.error_code))
    elif state is State.CANCELLED:
        title = "This invoice was cancelled"
        box = notice("info", title, f"It can no longer be paid. Contact {c.merchant} if needed.")
    elif state is State.EXPIRED:
        title = "This payment link has expired"
        box = notice(
            "info", title, f"It can no longer be paid. Ask {c.merchant} for a new one if needed."
        )
    else:
        title = "This invoice cannot be paid"
        box = notice(
            "info", title, f"There is nothing to pay here. Contact {c.merchant} if needed."
        )
    if not onwards and c.cancel_url and state is not State.PAID:
        onwards = _link(c.cancel_url, f"Return to {c.merchant}", secondary=True)
    # Just paid: on to the merchant at once (settle.web.checkout.after_success says why from
    # here, and not straight from the form's POST).
    refresh = c.return_url if just_paid and state is State.PAID else None
    return page(title, f"{summary(c)}\n{box}\n{onwards}", refresh=refresh)


def _link(href: str, label: str, *, secondary: bool = False) -> str:
    css = "button button-secondary" if secondary else "button"
    return f'<p><a class="{css}" href="{esc(href)}">{esc(label)}</a></p>'


# --- 3-D Secure ---------------------------------------------------------------------------------


def challenge_page(c: Checkout, action: str, token: str) -> str:
    """The sandbox's stand-in for the payer's bank: approve or refuse the payment."""
    card = ""
    if c.card is not None:
        card = f"<dt>Card</dt><dd>{esc(_card_label(c.card))}</dd>"
    body = f"""<header class="merchant"><p class="merchant-name">Sandbox bank</p>
<p class="tag">3-D Secure</p></header>
<h1 id="page-title">Confirm this payment</h1>
<dl class="facts">
<dt>Merchant</dt><dd>{esc(c.merchant)}</dd>
<dt>Amount</dt><dd>{esc(c.amount)}</dd>
{card}
</dl>
<p>This page stands in for your bank's 3-D Secure check in the sandbox: no bank is asked.
Approve to pass the check, refuse to fail it.</p>
<form class="decide" method="post" action="{esc(action)}">
<input type="hidden" name="{csrf.FIELD}" value="{esc(token)}">
<button class="button" type="submit" name="decision" value="approve">Approve</button>
<button class="button button-secondary" type="submit" name="decision" value="refuse">Refuse</button>
</form>"""
    return page(f"Confirm the payment of {c.amount}", body)


def unusable_challenge_page(back: str) -> str:
    return message_page(
        "This check cannot be answered here",
        "The payment no longer waits for this check.",
        link=(back, "Back to the payment page"),
    )
