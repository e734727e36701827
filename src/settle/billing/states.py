"""An invoice's state changes other than a gateway's answer: settling it (by card, begun here
and finished by ``settle.billing.payments``; or by a manual transfer), cancelling, failing and
reactivating it. Never commits.

Every change locks the invoice and its transaction first, then checks the rules against what
it holds, then writes: two changes of one invoice run one after the other and the second
sees the first's result, so a settle and a cancel (or two settles) can never both succeed.
A settle by card leaves a pending operation behind its first transaction, which refuses
every other change until the gateway's answer is written.

The rules (the Reepay reference's, in domain words; each dialect names them its own way):

==============  ==========================================  ===================================
change          from                                        refused
==============  ==========================================  ===================================
settle (card)   pending, created, failed: a sale;           settled (already settled),
                authorized: its capture                     cancelled (wrong state), busy
manual settle   any state but settled or authorized         settled, authorized, busy
cancel          pending, created, failed, without money     cancelled (already cancelled),
                authorized, captured or in flight           money moved (already used), busy
fail            pending, created                            any other (wrong state), busy
reactivate      failed, cancelled (not voided)              any other (wrong state)
==============  ==========================================  ===================================

These functions are where an invoice's state moves outside the gateway's answers: the place
for an outbox of events to hook in.
"""

from __future__ import annotations

from typing import Final

import msgspec

from settle.billing import payments
from settle.billing.payments import Attempt, Done, Locked, append_operation, lock_payment
from settle.clock import now_us
from settle.db.database import Tx
from settle.errors import ConflictError, ErrorCode, ValidationError
from settle.events import outbox
from settle.events.payments import record_operations
from settle.events.types import EventType
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceState
from settle.listing import PageQuery
from settle.payments import cards, tokens
from settle.payments import service as transactions
from settle.payments.gateway import OperationType
from settle.payments.ledger import MANUAL
from settle.payments.models import Token
from settle.projects.models import Scope

S = InvoiceState
MANUAL_METHODS: Final = ("cash", "bank_transfer", "check", "other")
# What a settle by card (``begin_settle``) marks its authorization with: a decline fails the
# invoice (``settle_finished``). Kept on the operation (``Operation.on_decline``), so that
# recovery after a crash and the payer's 3-D Secure answer apply the rule too
# (``recovered``); an authorization asked otherwise (ProcessOut's) leaves its invoice payable
# after a decline.
FAIL_INVOICE: Final = "fail_invoice"
# How many of a customer's newest tokens "the newest chargeable one" looks through.
_NEWEST_TOKENS: Final = 100


class ManualTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """Money received outside the gateway. ``payment_date`` is an ISO date (YYYY-MM-DD)."""

    method: str
    payment_date: str
    reference: str | None = None
    comment: str | None = None

    def as_metadata(self) -> dict[str, str]:
        found = msgspec.structs.asdict(self)
        return {k: v for k, v in found.items() if v is not None}


def manual_transfer_of(metadata: dict[str, str]) -> ManualTransfer:
    """The transfer a manual operation's metadata records."""
    return ManualTransfer(
        method=metadata.get("method", "other"),
        payment_date=metadata.get("payment_date", ""),
        reference=metadata.get("reference"),
        comment=metadata.get("comment"),
    )


def _conflict(invoice: Invoice, what: str, code: ErrorCode) -> ConflictError:
    return ConflictError(f"The invoice {invoice.id!r} {what}.", code=code)


def _busy(invoice: Invoice) -> ConflictError:
    return _conflict(
        invoice, "has a payment in progress; retry once it is done", ErrorCode.TRANSACTION_BUSY
    )


# The event each move of this module records (a reactivated invoice is pending again).
_STATE_EVENTS: Final[dict[InvoiceState, EventType]] = {
    S.SETTLED: EventType.INVOICE_SETTLED,
    S.FAILED: EventType.INVOICE_FAILED,
    S.CANCELLED: EventType.INVOICE_CANCELLED,
    S.PENDING: EventType.INVOICE_REACTIVATED,
}


async def _set_state(tx: Tx, scope: Scope, invoice: Invoice, state: InvoiceState) -> Invoice:
    """Move ``invoice`` (locked, read without its lines) to ``state`` and record the event in
    the same transaction; the invoice as it now is, lines included, for the caller to show."""
    await invoices.set_state(tx, invoice, state)
    moved = await invoices.get_invoice(tx, scope, invoice.id)
    await outbox.record(tx, scope, _STATE_EVENTS[state], of=moved)
    return moved


def _money_moved(locked: Locked) -> bool:
    state = locked.state
    return bool(state.authorized_amount or state.captured_amount)


# --- payment methods --------------------------------------------------------------------------


async def newest_chargeable_token(tx: Tx, scope: Scope, customer_id: str) -> Token | None:
    """The customer's newest saved card that can still be charged (not anonymized)."""
    found, _ = await tokens.list_tokens(tx, scope, customer_id, PageQuery(limit=_NEWEST_TOKENS))
    for token in found:
        card = await cards.get_card(tx, scope, token.card_id)
        if card.anonymized_at is None and card.gateway_reference is not None:
            return token
    return None


async def payment_token(
    tx: Tx,
    scope: Scope,
    customer_id: str | None,
    token_id: str | None,
    *,
    field: str = "payment_method",
) -> str:
    """The token a settle charges: ``token_id`` (a token of ``customer_id``), or the customer's
    newest chargeable one when None. Refused with ``payment-method-missing`` when there is
    none, ``resource.token.not-found`` when ``token_id`` is not the customer's."""
    missing = ValidationError(
        f"{field}: the customer has no active payment method.",
        code=ErrorCode.PAYMENT_METHOD_MISSING,
        field=field,
    )
    if customer_id is None:
        raise missing
    if token_id is None:
        token = await newest_chargeable_token(tx, scope, customer_id)
        if token is None:
            raise missing
        return token.id
    return (await tokens.get_token(tx, scope, customer_id, token_id)).id


# --- settle -----------------------------------------------------------------------------------


def _check_settle(locked: Locked) -> None:
    invoice = locked.invoice
    if locked.state.pending:
        raise _busy(invoice)
    if invoice.state is S.SETTLED or locked.state.captured_amount:
        raise _conflict(invoice, "is already settled", ErrorCode.INVOICE_ALREADY_SETTLED)
    if invoice.state is S.CANCELLED:
        raise _conflict(invoice, "is cancelled: reactivate it first", ErrorCode.INVOICE_WRONG_STATE)


async def begin_settle(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    *,
    token_id: str | None,
    auto: bool,
    gateway_name: str,
    capture: bool = True,
    field: str = "payment_method",
    capture_authorized: bool = True,
) -> Attempt:
    """Step 1 of settling by card (``settle.billing.payments``): an authorized invoice's
    capture; else a sale on ``token_id`` (or, with ``auto``, the customer's newest chargeable
    token), only its authorization unless ``capture``. Checked under the invoice's lock,
    before anything is written; ``field`` names the payment method in errors. Without
    ``capture_authorized`` an authorized invoice is refused (``already-authorized``) rather
    than captured: for a new attempt to pay, which only an unpaid invoice can take."""
    locked = await lock_payment(tx, scope, invoice_id)
    _check_settle(locked)
    if locked.state.capturable_amount > 0:
        if not capture_authorized:
            raise _conflict(
                locked.invoice, "is already authorized", ErrorCode.INVOICE_ALREADY_AUTHORIZED
            )
        return await payments.begin_capture(tx, scope, invoice_id, None)
    if token_id is None and not auto:
        raise ValidationError(
            f"{field}: is required to settle the invoice.",
            code=ErrorCode.PAYMENT_METHOD_MISSING,
            field=field,
        )
    source = await payment_token(tx, scope, locked.invoice.terms.customer_id, token_id, field=field)
    return await payments.begin_capture(
        tx,
        scope,
        invoice_id,
        None,
        source=source,
        authorize_only=not capture,
        gateway_name=gateway_name,
        on_decline=FAIL_INVOICE,
    )


async def begin_capture(tx: Tx, scope: Scope, invoice_id: str, amount: int | None) -> Attempt:
    """Step 1 of settling an authorized invoice: capture ``amount`` of the authorization
    (all of it when None). Refused unless it is authorized (``not-authorized``)."""
    locked = await lock_payment(tx, scope, invoice_id)
    _check_settle(locked)
    if locked.state.capturable_amount <= 0:
        raise _conflict(
            locked.invoice, "must be authorized to be settled", ErrorCode.INVOICE_NOT_AUTHORIZED
        )
    return await payments.begin_capture(tx, scope, invoice_id, amount)


async def begin_void(tx: Tx, scope: Scope, invoice_id: str) -> Attempt:
    """Step 1 of cancelling an authorized invoice: void its authorization (the gateway's
    answer then cancels the invoice)."""
    locked = await lock_payment(tx, scope, invoice_id)
    if locked.invoice.state is S.CANCELLED:
        raise _conflict(locked.invoice, "is already cancelled", ErrorCode.INVOICE_ALREADY_CANCELLED)
    if locked.state.pending:
        raise _busy(locked.invoice)
    if locked.invoice.state is S.SETTLED or locked.state.captured_amount:
        raise _conflict(
            locked.invoice,
            "cannot be cancelled: it is settled (refund it instead)",
            ErrorCode.INVOICE_ALREADY_USED,
        )
    return await payments.begin_void(tx, scope, invoice_id)


def invoice_scope(invoice: Invoice) -> Scope:
    return Scope(project_id=invoice.project_id, sandbox=invoice.sandbox)


async def settle_finished(tx: Tx, done: Done) -> Invoice:
    """After a settle's last step (in its transaction): a declined sale fails the invoice,
    as the gateway's answer alone does not (a ProcessOut invoice stays payable after a
    decline); a declined capture leaves it authorized, its money still held. The invoice as
    it now is, lines included."""
    invoice = done.invoice
    if _declined(done) and invoice.state in (S.PENDING, S.CREATED):
        return await _set_state(tx, invoice_scope(invoice), invoice, S.FAILED)
    return await invoices.get_invoice(tx, invoice_scope(invoice), invoice.id)


def _declined(done: Done) -> bool:
    return done.operation.status == "failed" and not done.transaction.authorized_amount


async def recovered(tx: Tx, done: Done) -> None:
    """The hook of ``recovery.recover`` and ``recovery.resume`` (``after``): a payment whose
    request is gone (a crash took it, or it answered before the payer's 3-D Secure answer)
    ends where that request would have left it. A settle by card (its
    authorization marked ``FAIL_INVOICE``) that was declined fails its invoice, as
    ``settle_finished`` does for the request; every other outcome is the gateway's answer's
    alone (a success settles or authorizes the invoice in ``payments.finish``; a declined
    capture leaves it authorized, as ``settle_finished`` would)."""
    op = done.operation
    if op.type == OperationType.AUTHORIZATION and op.on_decline == FAIL_INVOICE and _declined(done):
        await settle_finished(tx, done)


async def settle_manually(
    tx: Tx, scope: Scope, invoice_id: str, transfer: ManualTransfer
) -> Invoice:
    """Settle by money received outside the gateway: a capture no gateway saw, succeeded as
    it is written, with the transfer's details as its metadata (one ledger: the transaction
    shows the amount captured to either dialect)."""
    locked = await lock_payment(tx, scope, invoice_id)
    invoice = locked.invoice
    _check_settle_manually(locked)
    op = transactions.new_operation(
        locked.transaction,
        OperationType.CAPTURE,
        invoice.terms.amount,
        gateway_name=MANUAL,
        metadata=transfer.as_metadata(),
    )
    # No card or token paid it, whatever an earlier attempt used.
    op = msgspec.structs.replace(
        op, card_id=None, token_id=None, status="succeeded", completed_at=now_us()
    )
    await append_operation(tx, locked, op)
    await record_operations(tx, scope, [op], locked.transaction, invoice)  # captured
    return await _set_state(tx, scope, invoice, S.SETTLED)


def _check_settle_manually(locked: Locked) -> None:
    invoice = locked.invoice
    if locked.state.pending:
        raise _busy(invoice)
    if invoice.state is S.SETTLED or locked.state.captured_amount:
        raise _conflict(invoice, "is already settled", ErrorCode.INVOICE_ALREADY_SETTLED)
    if invoice.state is S.AUTHORIZED or locked.state.capturable_amount > 0:
        raise _conflict(
            invoice,
            "is authorized: settle (capture) the authorization instead",
            ErrorCode.INVOICE_ALREADY_AUTHORIZED,
        )


async def cancel_settle_later(tx: Tx, scope: Scope, invoice_id: str) -> Invoice:
    """Cancel a settle scheduled for later. None is ever scheduled (a settle runs at once), so
    nothing changes; but while a settle is in flight the invoice is refused as busy, as every
    other change is, rather than shown half-settled."""
    locked = await lock_payment(tx, scope, invoice_id)
    if locked.state.pending:
        raise _busy(locked.invoice)
    return await invoices.get_invoice(tx, scope, invoice_id)


# --- cancel, fail, reactivate -----------------------------------------------------------------


async def cancel(tx: Tx, scope: Scope, invoice_id: str) -> Invoice:
    """Cancel an invoice nobody paid: no money authorized, captured or in flight."""
    locked = await lock_payment(tx, scope, invoice_id)
    invoice = locked.invoice
    if invoice.state is S.CANCELLED:
        raise _conflict(invoice, "is already cancelled", ErrorCode.INVOICE_ALREADY_CANCELLED)
    if locked.state.pending:
        raise _busy(invoice)
    if invoice.state in (S.SETTLED, S.AUTHORIZED) or _money_moved(locked):
        raise _conflict(
            invoice,
            f"cannot be cancelled: it is {invoice.state} (it has an active transaction)",
            ErrorCode.INVOICE_ALREADY_USED,
        )
    return await _set_state(tx, scope, invoice, S.CANCELLED)


async def fail(tx: Tx, scope: Scope, invoice_id: str) -> Invoice:
    """Give up on collecting a pending invoice."""
    locked = await lock_payment(tx, scope, invoice_id)
    invoice = locked.invoice
    if locked.state.pending:
        raise _busy(invoice)
    if invoice.state not in (S.PENDING, S.CREATED):
        raise _conflict(
            invoice, f"cannot fail: it is {invoice.state}", ErrorCode.INVOICE_WRONG_STATE
        )
    return await _set_state(tx, scope, invoice, S.FAILED)


async def reactivate(tx: Tx, scope: Scope, invoice_id: str) -> Invoice:
    """A failed or cancelled invoice is pending again (payable)."""
    locked = await lock_payment(tx, scope, invoice_id)
    invoice = locked.invoice
    if invoice.state not in (S.FAILED, S.CANCELLED):
        raise _conflict(
            invoice,
            f"cannot be reactivated: it is {invoice.state}",
            ErrorCode.INVOICE_WRONG_STATE,
        )
    if locked.state.voided_amount:
        raise _conflict(
            invoice,
            "cannot be reactivated: its authorization was voided",
            ErrorCode.INVOICE_WRONG_STATE,
        )
    return await _set_state(tx, scope, invoice, S.PENDING)
