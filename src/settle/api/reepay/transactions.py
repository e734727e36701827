"""An invoice's payment as Reepay transactions: the operations of its one domain transaction.

The domain keeps one transaction per invoice with a log of operations (``settle.payments``);
the vendor shows each attempt to move money as a transaction of its own. So each
authorization, capture and refund operation is one Reepay transaction, with the operation's
id: a capture is a ``settle``; a sale's authorization (one made to be captured at once) is
the ``settle`` attempt while it is pending or if it failed, and an ``authorization`` once it
succeeded (its capture is then the settle); a void cancels the authorization it voids. Money
recorded by hand (``settle.payments.ledger.MANUAL``) is a ``manual`` settle with its transfer.

A declined card operation carries the vendor's ``error`` word (``declined_by_acquirer``) and
``error_state`` in its ``card_transaction``.

A card operation waiting for the payer (3-D Secure: the gateway answered with a redirect) is
in the vendor's state ``pending`` (its Transaction and Charge enums have it; an operation sent
to the gateway and not answered yet is ``processing``), its ``card_transaction`` says
``strong_authentication_status: threed_secure``, and ``redirect_url`` is where to send the
payer: Settle's challenge page, whose answer settles or fails the invoice. The vendor's
document has no field for that address (its payer-facing flows go through a hosted checkout
that is not part of this API), so ``redirect_url`` is Settle's own, and the document served
at ``/v1/openapi.json`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from settle.api.reepay import payment_methods
from settle.api.reepay.base import find_invoice, json_response, path_ref, start
from settle.billing.states import manual_transfer_of
from settle.clock import rfc3339
from settle.db.database import Tx
from settle.errors import NotFoundError
from settle.payments import cards
from settle.payments import service as payments
from settle.payments.gateway import OperationType
from settle.payments.ledger import MANUAL
from settle.payments.models import Card, Operation, Transaction
from settle.payments.sandbox import CAPTURE_DECLINED, DECLINED
from settle.projects.models import Scope

T = OperationType
# Gateway error codes -> the vendor's transaction_error words.
TRANSACTION_ERRORS: Final[dict[str, str]] = {
    DECLINED: "declined_by_acquirer",
    CAPTURE_DECLINED: "declined_by_acquirer",
}
OTHER_ERROR: Final = "processing_error"


class Payment(msgspec.Struct, kw_only=True):
    """An invoice's domain transaction with its log and the cards the log used."""

    transaction: Transaction
    log: list[Operation]
    cards: dict[str, Card]


async def payments_of(tx: Tx, scope: Scope, transaction_ids: Iterable[str]) -> dict[str, Payment]:
    """The payments of these transactions, each kind loaded in one statement."""
    wanted = list(transaction_ids)
    trs = await payments.get_transactions(tx, scope, wanted)
    logs = await payments.operations_for(tx, trs)
    card_ids = {op.card_id for log in logs.values() for op in log if op.card_id}
    by_id = await cards.get_cards(tx, scope, card_ids) if card_ids else {}
    return {
        tid: Payment(transaction=tr, log=logs.get(tid, []), cards=by_id) for tid, tr in trs.items()
    }


def transaction_error(op: Operation) -> str | None:
    if op.status != "failed":
        return None
    return TRANSACTION_ERRORS.get(op.error_code or "", OTHER_ERROR)


def redirect_of(op: Operation) -> str | None:
    """Where the payer must go for ``op`` to go on (3-D Secure), while it waits for them."""
    action = op.customer_action
    if op.status != "pending" or action is None or action.get("type") != "redirect":
        return None
    return action.get("value")


def _kind_and_state(op: Operation, log: list[Operation]) -> tuple[str, str] | None:
    """The vendor's (type, state) for ``op``; None for an operation that is no transaction
    of its own (a void, an increment, a chargeback)."""
    kind = OperationType(op.type)
    if kind is T.AUTHORIZATION:
        settle_attempt = op.capture_after is not None and op.status != "succeeded"
        name = "settle" if settle_attempt else "authorization"
    elif kind is T.CAPTURE:
        name = "settle"
    elif kind is T.REFUND:
        name = "refund"
    else:
        return None
    if op.status == "pending":
        return name, "pending" if redirect_of(op) is not None else "processing"
    if op.status == "failed":
        return name, "failed"
    if name == "authorization":
        voided = any(o.type == T.VOID and o.status == "succeeded" for o in log)
        return name, "cancelled" if voided else "authorized"
    return name, "settled" if name == "settle" else "refunded"


def render(op: Operation, payment: Payment, invoice_id: str) -> dict[str, Any] | None:
    """The vendor's ``Transaction`` for ``op``, or None (see ``_kind_and_state``)."""
    found = _kind_and_state(op, payment.log)
    if found is None:
        return None
    kind, state = found
    manual = op.gateway_name == MANUAL
    out: dict[str, Any] = {
        "id": op.id,
        "state": state,
        "invoice": invoice_id,
        "type": kind,
        "amount": op.amount,
        "currency": op.currency,
        "created": rfc3339(op.created_at),
        "payment_type": "manual" if manual else "card",
    }
    done = op.completed_at or op.created_at
    stamp = {"settled": "settled", "authorized": "authorized", "failed": "failed"}.get(state)
    if state == "refunded":
        stamp = "refunded"
    if stamp is not None:
        out[stamp] = rfc3339(done)
    if op.token_id:
        out["payment_method"] = payment_methods.method_id(op.token_id)
    if manual:
        transfer = manual_transfer_of(op.metadata)
        manual_out: dict[str, Any] = {
            "method": transfer.method,
            # A date as the vendor's date-time: midnight UTC of the day the money came.
            "payment_date": f"{transfer.payment_date}T00:00:00Z",
        }
        for name in ("comment", "reference"):
            value = getattr(transfer, name)
            if value is not None:
                manual_out[name] = value
        out["manual_transaction"] = manual_out
        return out
    card = payment.cards.get(op.card_id or "")
    if card is not None:
        card_out = payment_methods.card_facts(card)
        card_out["provider"] = payment_methods.PROVIDER
        error = transaction_error(op)
        if error is not None:
            card_out["error"] = error
            card_out["error_state"] = (
                "hard_declined" if error != OTHER_ERROR else "processing_error"
            )
        out["card_transaction"] = card_out
    redirect = redirect_of(op)
    if redirect is not None:
        out["redirect_url"] = redirect
        if "card_transaction" in out:
            out["card_transaction"]["strong_authentication_status"] = "threed_secure"
    return out


def render_all(payment: Payment | None, invoice_id: str) -> list[dict[str, Any]]:
    if payment is None:
        return []
    found = (render(op, payment, invoice_id) for op in payment.log)
    return [t for t in found if t is not None]


def last_error(payment: Payment | None) -> str | None:
    """The vendor's transaction_error of the payment's last completed operation, if it
    failed (a later success or a retry in flight clears it)."""
    if payment is None:
        return None
    done = [op for op in payment.log if op.status != "pending"]
    return transaction_error(done[-1]) if done and not payment.transaction.captured_amount else None


async def get_transaction(request: Request) -> Response:
    """GET /v1/invoice/{id}/transaction/{transaction}."""
    call = await start(request)
    ref = path_ref(request, "id", "invoice")
    wanted = request.path_params["transaction"]
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
        found = await payments_of(tx, call.scope, [invoice.transaction_id])
    payment = found.get(invoice.transaction_id)
    for op in payment.log if payment else []:
        if op.id == wanted and payment is not None:
            rendered = render(op, payment, invoice.id)
            if rendered is not None:
                return json_response(rendered)
    raise NotFoundError("transaction", wanted[:60])
