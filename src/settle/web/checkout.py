"""The hosted checkout: the page at an invoice's ``url`` (settle.web.links.checkout_url).

The page is public (the payer has only the link): it finds the invoice by the project and the
invoice id in its address, scoped like every query, so a wrong pair is a plain 404 page. A
payment from its form goes as the API's would, in the three steps of settle.billing.payments:

1. the card is checked (``check_card``; errors shown beside their field, the form refilled
   with the name and expiry only: the number and the CVC are never sent back) and handed to
   the gateway's vault, outside any database transaction;
2. in one transaction: the card is kept (without its number or CVC) and the authorization
   written pending, with its capture to follow unless the invoice asks for backend capture
   (``require_backend_capture``: then only authorized);
3. ``billing.run``: the gateway is called outside any transaction and the outcome written.

The form carries the amount its button offers, and a payment is made for that amount only:
the merchant may change an open invoice's amount while its page is open, and the payer agreed
to the one shown (checked again under the invoice's lock, where the authorization is written).

Then the browser is sent on (303, so a reload never posts again): to the 3-D Secure challenge
when the gateway asks for one (settle.web.three_d_s); on success to this page, which says the
payment went through and sends the payer on to the invoice's ``return_url`` if any; after
a decline, back to this page, which tells why and offers the form again. A ``cancel_url`` is
a link on the page ("Cancel and return to ..."). Every state is read from the database, so
reloading the page, or coming back to the link later, shows where the invoice stands: already
paid, waiting for 3-D Secure, cancelled.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import runtime_of
from settle.billing import payments as billing
from settle.config import Settings
from settle.db.database import Tx
from settle.errors import ConflictError, NotFoundError, SettleError, ValidationError
from settle.ids import could_exist
from settle.invoices import service as invoices
from settle.payments import cards
from settle.payments import service as transactions
from settle.payments.gateway import CardData, GatewayUnavailable
from settle.projects import service as projects
from settle.projects.keys import processout_username
from settle.projects.models import Scope
from settle.unique import atomic
from settle.web import csrf, html
from settle.web.html import message_page, notice
from settle.web.pages import forbidden, html_page, not_found, origin_of, read_form, see_other
from settle.web.views import (
    AMOUNT_FIELD,
    Checkout,
    State,
    card_form,
    checkout_page,
    result_page,
)

MAX_ID_LENGTH: Final = 100
MAX_NAME_LENGTH: Final = 100


def scope_of(username: str) -> Scope | None:
    """The project and mode a link names: ``test-proj_...`` is the sandbox (as in the API's
    credentials, settle.projects.keys.processout_username), ``proj_...`` live."""
    sandbox = username.startswith("test-")
    project_id = username.removeprefix("test-")
    if not project_id or len(project_id) > MAX_ID_LENGTH or not could_exist(project_id):
        return None
    return Scope(project_id=project_id, sandbox=sandbox)


async def load(tx: Tx, scope: Scope, invoice_id: str) -> Checkout | None:
    """The checkout of ``invoice_id`` in ``scope``, or None if there is none."""
    if len(invoice_id) > MAX_ID_LENGTH:
        return None
    try:
        invoice = await invoices.get_invoice(tx, scope, invoice_id)
        transaction = await transactions.get_transaction(tx, scope, invoice.transaction_id)
        project = await projects.get_project(tx, scope.project_id)
    except NotFoundError:
        return None
    card = None
    if transaction.card_id is not None:
        card = await cards.get_card(tx, scope, transaction.card_id)
    challenge = None
    if transaction.status == "pending":
        for op in await transactions.operations_of(tx, transaction.id):
            if op.status == "pending" and op.customer_action:
                challenge = op.customer_action.get("value")
    return Checkout(
        scope=scope,
        username=processout_username(scope.project_id, scope.sandbox),
        merchant=project.name,
        invoice=invoice,
        transaction=transaction,
        card=card,
        challenge_url=challenge,
    )


async def _find(request: Request) -> Checkout | None:
    scope = scope_of(request.path_params["project"])
    if scope is None:
        return None
    async with runtime_of(request).db.read() as tx:
        return await load(tx, scope, request.path_params["invoice_id"])


def form_origins(settings: Settings) -> list[str | None]:
    """Where a form of the pages may end up after its redirects, besides the page's own
    origin: Settle's public address (the 3-D Secure page, when the payer reached Settle by
    another). Never the return URL: see ``after_success``."""
    return [origin_of(settings.base_url)]


def succeeded(done: billing.Done) -> bool:
    """Paid: captured, or authorized for the merchant to capture (``require_backend_capture``)."""
    iv = done.invoice
    return iv.is_paid or (iv.is_authorized and done.transaction.status != "failed")


def after_success(c: Checkout) -> Response:
    """To this page, which says the payment went through and sends the payer on to the
    return URL, if any (``result_page``). Not straight to the return URL: browsers check the
    page's ``form-action`` along every redirect of the form's POST, and a return URL that
    redirects in turn (to ``www.``, to another host's https, to a login) was blocked after
    the payment was made, leaving the payer on an error page (seen in Chromium). The page's
    refresh is a navigation of its own, which no form policy covers."""
    return see_other(c.path + "?result=paid")


# --- the card form ------------------------------------------------------------------------------

# check_card's fields -> the form's.
_FIELD_OF: Final = {
    "number": "number",
    "exp_month": "exp_month",
    "exp_year": "exp_year",
    "cvc2": "cvc",
}
_FRIENDLY: Final = {
    "must be 12 to 19 digits.": "Enter the card number: 12 to 19 digits.",
    "is not a valid card number.": "This card number is not valid: check it for typos.",
    "must be 1 to 12.": "Enter the expiry month as a number from 01 to 12.",
    "the card has expired.": "This expiry date is in the past: check it, or use another card.",
    "must be 3 or 4 digits.": "Enter the 3 or 4 digits of the security code.",
}


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def read_card(form: dict[str, str]) -> tuple[CardData | None, dict[str, str], dict[str, str]]:
    """The card the form describes, checked; or None and the errors by field. Also the values
    that may be shown again (never the number or the CVC)."""
    number = form.get("number", "").strip()
    month = form.get("exp_month", "").strip()
    year = form.get("exp_year", "").strip()
    cvc = form.get("cvc", "").strip()
    name = " ".join(form.get("name", "").split())
    values = {"exp_month": month, "exp_year": year, "name": name}
    errors: dict[str, str] = {}
    if not number:
        errors["number"] = "Enter the card number."
    if not (_digits(month) and len(month) <= 2):
        errors["exp_month"] = "Enter the expiry month as 2 digits, like 04."
    if not (_digits(year) and len(year) in (2, 4)):
        errors["exp_year"] = "Enter the expiry year as 2 digits, like 29."
    if not cvc:
        errors["cvc"] = "Enter the security code."
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"Enter at most {MAX_NAME_LENGTH} characters."
    elif not name.isprintable():
        errors["name"] = "Enter the name as printed on the card."
    if errors:
        return None, values, errors
    try:
        card = cards.check_card(
            CardData(
                number=number,
                exp_month=int(month),
                exp_year=int(year),
                cvc=cvc,
                name=name or None,
            )
        )
    except ValidationError as exc:
        field = _FIELD_OF.get(exc.field or "", "number")
        text = exc.message.split(": ", 1)[-1]
        errors[field] = _FRIENDLY.get(text, text[:1].upper() + text[1:])
        return None, values, errors
    return card, values, errors


# --- routes -------------------------------------------------------------------------------------


async def show(request: Request) -> Response:
    c = await _find(request)
    if c is None:
        return not_found()
    key, new = csrf.key_for(request)
    if request.query_params.get("result") == "paid" and c.state is State.PAID:
        content = result_page(c, just_paid=True)
    else:
        content = checkout_page(c, key)
    response = html_page(content, form_origins=form_origins(runtime_of(request).settings))
    if new:
        csrf.set_cookie(request, response, key)
    return response


async def pay(request: Request) -> Response:
    rt = runtime_of(request)
    c = await _find(request)
    if c is None:
        return not_found()
    form = await read_form(request)
    key = csrf.browser_key(request)
    if key is None or not csrf.valid(request, form.get(csrf.FIELD), c.purpose):
        return forbidden(c.path)
    if c.state is not State.OPEN:
        return see_other(c.path)  # paid, paying or closed meanwhile: the page says which
    origins = form_origins(rt.settings)
    card, values, errors = read_card(form)
    if card is None:
        return html_page(card_form(c, key, values=values, errors=errors), 400, form_origins=origins)
    shown = form.get(AMOUNT_FIELD)
    if shown != str(c.invoice.terms.amount):
        return amount_changed(c, key, values, rt.settings)
    try:
        vaulted = await rt.gateway.vault(card)
        async with atomic(rt.db) as tx:
            kept = cards.new_card(
                c.scope,
                card,
                gateway_name=rt.gateway.name,
                gateway_reference=vaulted.reference,
                metadata={},
            )
            await cards.insert_card(tx, kept)
            attempt = await billing.begin_authorize(
                tx,
                c.scope,
                c.invoice.id,
                kept.id,
                gateway_name=rt.gateway.name,
                capture=not c.invoice.terms.require_backend_capture,
            )
            if str(attempt.operation.amount) != shown:
                # Changed since this request read the invoice: checked again under the
                # invoice's lock, which a change of its amount takes too.
                raise _AmountChanged
    except _AmountChanged:
        fresh = await _find(request)
        if fresh is None or fresh.state is not State.OPEN:
            return see_other(c.path)
        return amount_changed(fresh, key, values, rt.settings)
    except ConflictError:
        return see_other(c.path)  # another payment of the invoice came first
    except GatewayUnavailable:
        banner = notice(
            "error",
            "The payment service is not answering",
            "Nothing was charged. Please try again in a moment.",
        )
        page = card_form(c, key, values=values, banner_html=banner)
        return html_page(page, 503, form_origins=origins)
    except SettleError as exc:
        banner = notice("error", "The payment could not be made", exc.message)
        page = card_form(c, key, values=values, banner_html=banner)
        return html_page(page, 400, form_origins=origins)
    done = await billing.run(rt.db, rt.gateway, attempt)
    action = done.customer_action
    if action is not None and action.type == "redirect":
        if origin_of(action.value) == origin_of(rt.settings.base_url):
            return see_other(action.value)
        # Elsewhere (a bank's own page): a link, since this page's policy lets its form
        # redirect only to the places it named.
        return html_page(
            message_page(
                "Confirm the payment with your bank",
                "Your bank asks you to confirm this payment (3-D Secure).",
                link=(action.value, "Continue to your bank"),
            )
        )
    if succeeded(done):
        return after_success(c)
    return see_other(c.path)  # declined (the page tells why), or still in flight


class _AmountChanged(Exception):
    """Rolls back a payment begun for another amount than the form offered."""


def amount_changed(c: Checkout, key: str, values: dict[str, str], settings: Settings) -> Response:
    """The form again, for the amount due now: the payer agreed to the one their page showed."""
    banner = notice(
        "error",
        "The amount to pay has changed",
        f"It is now {c.amount}. Nothing was charged: check the amount, then pay again.",
    )
    page = card_form(c, key, values=values, banner_html=banner)
    return html_page(page, 409, form_origins=form_origins(settings))


async def stylesheet(request: Request) -> Response:
    return Response(
        html.stylesheet(),
        media_type="text/css",
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )
