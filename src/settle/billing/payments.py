"""Paying invoices: authorize, capture, void, increment, refund, 3-D Secure, recovery.

A gateway is a network call, so an operation takes three steps, and never holds a database
transaction across the call (on SQLite that would hold the one write lock and stall every
other write):

1. ``begin_*`` (in a database transaction): lock the invoice and its transaction, check the
   operation against the ledger (settle.payments.ledger), write it ``pending`` to the log;
2. ``execute`` (no database transaction): call the gateway with the operation's own key;
3. ``finish`` (in a second database transaction): write the outcome, derive the transaction's
   amounts and status from the log, move the invoice's state; it may start the next
   operation (a sale: the capture after the authorization).

A pending operation blocks others on the same transaction (the ledger refuses them), so two
concurrent captures or refunds can never both run. If Settle dies between 2 and 3, the
operation stays pending; ``settle.billing.recovery`` asks the gateway by the operation's key and
finishes it.

Steps 1 and 3 run optimistically when run by ``transact`` (``optimistic=True``): they read
the invoice without its lock (step 3 reads nothing: it trusts what step 1 read and wrote) and
write only if the invoice's version is still the one they read (``Tx.guard``; every writer of
a payment bumps it). A concurrent writer makes the step fail with ``Stale``, writing nothing,
and ``transact`` runs it again under the lock. On PostgreSQL that makes step 1 its reads and
one statement (BEGIN, the locking read and COMMIT spared), and step 3 one statement instead
of five round trips: an authorization's 12 round trips became 6 (measured in bench/README.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import msgspec

from settle.clock import now_us, rfc3339
from settle.db.database import Database, Lock, Tx
from settle.db.queries import split_parts, union_of
from settle.errors import ConflictError, ErrorCode, NotFoundError, SettleError, ValidationError
from settle.events.payments import record_operations
from settle.ids import could_exist, new_id
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceState
from settle.payments import cards, ledger, tokens
from settle.payments import service as transactions
from settle.payments.gateway import (
    CustomerAction,
    Gateway,
    GatewayUnavailable,
    OperationRequest,
    OperationResult,
    OperationType,
    Outcome,
)
from settle.payments.models import Card, Operation, Transaction
from settle.projects.models import Scope
from settle.unique import atomic

T = OperationType
R = TypeVar("R")


class Stale(Exception):
    """What an optimistic step read without the invoice's lock was changed by a concurrent
    writer before the step wrote: nothing was written, and the step must run again under the
    lock (``transact``). Never reaches a client."""


async def transact(db: Database, work: Callable[[Tx, bool], Awaitable[R]]) -> R:
    """Run one step's database transaction: ``work(tx, True)`` first, reading optimistically;
    if a concurrent writer moved the invoice meanwhile (``Stale``: nothing was written), once
    more as ``work(tx, False)``, under the invoice's lock, which cannot be stale.

    A refusal (any ``SettleError``) is decided under the lock too: the optimistic reads are
    several statements, and one that a concurrent writer got between may refuse for a reason
    no serial order gives (found by tests/api/test_races.py: a sale racing the invoice's
    delete answered "transaction not found", read after the delete, of an invoice read before
    it; under the lock it is "invoice not found"), or refuse where waiting would have let it
    through (a sale arriving while an authorization's outcome is being written: busy at once,
    where under the lock it waits and captures the authorization). Refusals are rare; their
    second reading costs only them."""
    try:
        async with atomic(db) as tx:
            return await work(tx, True)
    except (Stale, SettleError):
        pass
    async with atomic(db) as tx:
        return await work(tx, False)


class Locked(msgspec.Struct, kw_only=True):
    """An invoice and its transaction, locked until the database transaction ends, with the
    transaction's operations log as read under the lock (kept current as this step writes,
    so it is read once per step)."""

    invoice: Invoice
    transaction: Transaction
    log: list[Operation]
    # The invoice's version was bumped in this database transaction (``_touch``).
    touched: bool = False
    # Read without the lock: the invoice's row is written only if its version is still
    # ``invoice.version`` (else ``Stale``).
    guarded: bool = False

    @property
    def state(self) -> ledger.Derived:
        return ledger.derive(self.log)


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """An operation written pending, and what to do once it succeeds."""

    scope: Scope
    invoice_id: str
    operation: Operation
    card_reference: str | None
    parent_reference: str | None = None
    return_url: str | None = None
    # The invoice, transaction and log as this operation's first step left them (None: not
    # known, e.g. for recovery). ``finish`` uses them instead of reading them again when the
    # invoice's version shows that nobody wrote since.
    seen: Locked | None = None


class Done(msgspec.Struct, frozen=True, kw_only=True):
    transaction: Transaction
    operation: Operation
    invoice: Invoice
    log: list[Operation]  # the transaction's whole operations log, as written
    customer_action: CustomerAction | None = None


# --- step 1 ---------------------------------------------------------------------------------


async def _locked(tx: Tx, scope: Scope, invoice_id: str, *, optimistic: bool = False) -> Locked:
    """The invoice's row lock guards its payment too: every writer of a transaction or its log
    takes it first (here, or ``billing.service`` for an unpaid invoice's terms), so the
    transaction and its log are read beside it without a lock of their own (one round trip
    less; a payment step made 19 round trips, bench/README.md). The invoice comes with its
    lines (they are in its row): a step's events show it whole.

    ``optimistic``: no lock; see ``_unlocked``."""
    if optimistic:
        locked, _ = await _unlocked(tx, scope, invoice_id)
        return locked
    invoice = await invoices.get_invoice(tx, scope, invoice_id, lock=Lock.UPDATE)
    transaction, log = await transactions.transaction_with_log(tx, scope, invoice.transaction_id)
    return Locked(invoice=invoice, transaction=transaction, log=log)


# What an optimistic step reads, in one statement (one snapshot, one round trip): the invoice
# (with its lines, in its row), its transaction with the log, and (for an
# authorization naming a card) the card. Three statements before: 2 round trips of a capture's
# 5 and of an authorization's 6 on PostgreSQL.
_INVOICE: Final = "i.id = $1 AND i.project_id = $2 AND i.sandbox = $3 AND i.deleted_at IS NULL"
_READ: Final = (
    invoices.invoice_part(_INVOICE),
    transactions.log_part(
        f"t.id = (SELECT i.transaction_id FROM invoices i WHERE {_INVOICE})"
        " AND t.project_id = $2 AND t.sandbox = $3"
    ),
)
_READ_WITH_CARD: Final = (
    *_READ,
    cards.card_part("c.id = $4 AND c.project_id = $2 AND c.sandbox = $3"),
)


async def _unlocked(
    tx: Tx, scope: Scope, invoice_id: str, card_id: str | None = None
) -> tuple[Locked, Card | None]:
    """The invoice, its transaction and log (and the card ``card_id``, if given and found),
    read without a lock, in one statement: the step's write is guarded by the invoice's
    version read here (``Locked.guarded``)."""
    if not could_exist(invoice_id):
        raise NotFoundError("invoice", invoice_id)
    parts = _READ if card_id is None else _READ_WITH_CARD
    args = (invoice_id, scope.project_id, scope.sandbox)
    rows = await tx.fetch(union_of(parts), *(args if card_id is None else (*args, card_id)))
    found = split_parts(rows, parts)
    invoice = invoices.from_part(found[0])
    if invoice is None:
        raise NotFoundError("invoice", invoice_id)
    paid_by = transactions.from_log(found[1])
    if paid_by is None:
        raise NotFoundError("transaction", invoice.transaction_id)
    transaction, log = paid_by
    card = cards.from_part(found[2]) if card_id is not None else None
    locked = Locked(invoice=invoice, transaction=transaction, log=log, guarded=True)
    return locked, card


def _conflict(locked: Locked) -> Exception | None:
    return Stale() if locked.guarded else None


async def _save(tx: Tx, locked: Locked, **source: str | None) -> None:
    """Write what the log now says of the transaction."""
    locked.transaction = await transactions.save_derived(
        tx, locked.transaction, locked.state, **source
    )


async def _touch(tx: Tx, locked: Locked) -> None:
    """Bump the invoice's version (once per database transaction): every writer of a payment
    does, so that ``finish`` can tell whether what step 1 read still holds."""
    if not locked.touched:
        locked.invoice = await invoices.touch(tx, locked.invoice, conflict=_conflict(locked))
        locked.touched = True


async def _append(tx: Tx, locked: Locked, op: Operation, **source: str | None) -> None:
    await transactions.insert_operation(tx, op)
    locked.log.append(op)
    await _save(tx, locked, **source)
    await _touch(tx, locked)


def _seen(locked: Locked) -> Locked:
    """What this step leaves, for the operation's ``finish`` (a copy: ``locked`` may change
    further in this step, and its database transaction may yet roll back)."""
    return Locked(
        invoice=locked.invoice,
        transaction=locked.transaction,
        log=list(locked.log),
    )


async def resolve_source(
    tx: Tx, scope: Scope, invoice: Invoice, source: str, *, card: Card | None = None
) -> tuple[Card, str | None]:
    """The card a ``source`` names (a card id, or a token of the invoice's customer), and
    the token's id if it was one. ``card``: the card ``source`` names, already read."""
    if source.startswith("tok_"):
        customer_id = invoice.terms.customer_id
        if customer_id is None:
            raise ValidationError(
                "source: a token can pay only an invoice of its own customer; this invoice has"
                " no customer.",
                code=ErrorCode.TOKEN_NOT_USABLE,
                field="source",
            )
        try:
            token = await tokens.get_token(tx, scope, customer_id, source)
        except NotFoundError:
            # Another customer's token (or none at all): the same answer, nothing revealed.
            raise ValidationError(
                "source: the token does not belong to the invoice's customer.",
                code=ErrorCode.TOKEN_NOT_USABLE,
                field="source",
            ) from None
        return _chargeable(await cards.get_card(tx, scope, token.card_id)), token.id
    if source.startswith("card_") and could_exist(source):
        if card is None or card.id != source:
            card = await cards.get_card(tx, scope, source)
        return _chargeable(card), None
    raise NotFoundError("card", source)


def _chargeable(card: Card) -> Card:
    if card.anonymized_at is not None or card.gateway_reference is None:
        raise ValidationError(
            "source: the card was anonymized and can no longer be charged.",
            code=ErrorCode.TOKEN_NOT_USABLE,
            field="source",
        )
    return card


def _not_payable(invoice: Invoice) -> ConflictError:
    return ConflictError(
        f"The invoice {invoice.id!r} cannot be paid: it is {invoice.state}.",
        code=ErrorCode.INVOICE_NOT_PAYABLE,
    )


async def begin_authorize(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    source: str,
    *,
    gateway_name: str,
    capture_amount: int | None = None,
    capture: bool = False,
    metadata: dict[str, str] | None = None,
    optimistic: bool = False,
) -> Attempt:
    """Authorize the invoice's amount on ``source`` (and capture ``capture_amount``, all of
    it by default, once authorized, when ``capture``). ``optimistic``: see ``transact``."""
    card = None
    if not optimistic:
        locked = await _locked(tx, scope, invoice_id)
    elif source.startswith("card_") and could_exist(source):
        locked, card = await _unlocked(tx, scope, invoice_id, source)  # the card in the same read
    else:
        locked, _ = await _unlocked(tx, scope, invoice_id)
    return await _authorize(
        tx,
        scope,
        locked,
        source,
        gateway_name=gateway_name,
        capture_amount=capture_amount,
        capture=capture,
        metadata=metadata,
        card=card,
    )


async def _authorize(
    tx: Tx,
    scope: Scope,
    locked: Locked,
    source: str,
    *,
    gateway_name: str,
    capture_amount: int | None,
    capture: bool,
    metadata: dict[str, str] | None,
    on_decline: str | None = None,
    card: Card | None = None,
) -> Attempt:
    invoice, transaction = locked.invoice, locked.transaction
    if invoice.state in (InvoiceState.CANCELLED, InvoiceState.SETTLED, InvoiceState.AUTHORIZED):
        raise _not_payable(invoice)
    ledger.check_authorize(locked.state)
    if invoice.expired(now_us()):
        raise ConflictError(
            f"The invoice {invoice.id!r} expired at {rfc3339(invoice.terms.expires_at or 0)}:"
            " it can no longer be paid.",
            code=ErrorCode.INVOICE_NOT_PAYABLE,
        )
    if invoice.terms.amount <= 0:
        raise ValidationError(
            "amount: an invoice of 0 cannot be paid by card.",
            code=ErrorCode.INVOICE_NOT_PAYABLE,
            field="amount",
        )
    if capture_amount is not None and not 0 < capture_amount <= invoice.terms.amount:
        raise ValidationError(
            "capture_amount: must be more than 0 and at most the invoice's amount.",
            code=ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
            field="capture_amount",
        )
    card, token_id = await resolve_source(tx, scope, invoice, source, card=card)
    op = transactions.new_operation(
        transaction,
        T.AUTHORIZATION,
        invoice.terms.amount,
        gateway_name=gateway_name,
        card_id=card.id,
        token_id=token_id,
        metadata=metadata,
        capture_after=(capture_amount or invoice.terms.amount) if capture else None,
        on_decline=on_decline,
    )
    await _append(
        tx,
        locked,
        op,
        card_id=card.id,
        token_id=token_id,
        gateway_name=gateway_name,
        card_reference=card.gateway_reference,
    )
    await record_operations(tx, scope, [op], locked.transaction, invoice)
    return Attempt(
        scope=scope,
        invoice_id=invoice.id,
        operation=op,
        card_reference=card.gateway_reference,
        return_url=invoice.terms.return_url,
        seen=_seen(locked),
    )


def authorization_reference(log: list[Operation]) -> str | None:
    """The gateway's reference of the log's successful authorization (what a capture, void,
    refund or increment names), if any."""
    for op in log:
        if op.type == T.AUTHORIZATION and op.status == "succeeded":
            return op.gateway_reference
    return None


async def _begin_follow_up(
    tx: Tx,
    scope: Scope,
    locked: Locked,
    kind: OperationType,
    amount: int,
    *,
    metadata: dict[str, str] | None = None,
    **details: str | None,
) -> Attempt:
    """``metadata``: the request's, kept on the operation (shown with it in the
    transaction's ``operations``, and as a refund's own)."""
    transaction = locked.transaction
    op = transactions.new_operation(
        transaction,
        kind,
        amount,
        gateway_name=transaction.gateway_name or "sandbox",
        refund_id=details.get("refund_id"),
        reason=details.get("reason"),
        information=details.get("information"),
        metadata=metadata,
    )
    await _append(tx, locked, op)
    return Attempt(
        scope=scope,
        invoice_id=locked.invoice.id,
        operation=op,
        card_reference=transaction.card_reference,
        parent_reference=authorization_reference(locked.log),
        seen=_seen(locked),
    )


async def begin_capture(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    amount: int | None,
    *,
    source: str | None = None,
    authorize_only: bool = False,
    gateway_name: str = "sandbox",
    metadata: dict[str, str] | None = None,
    on_decline: str | None = None,
    optimistic: bool = False,
) -> Attempt:
    """Capture ``amount`` of what is authorized (all of the rest when None). With a
    ``source`` on a transaction not authorized yet: a sale (authorize, then capture; only
    authorize with ``authorize_only``; ``on_decline``: the authorization's, see
    ``Operation.on_decline``). Decided under the lock: an authorization finishing
    meanwhile turns a sale into a capture of it, as it would in a serial order."""
    locked = await _locked(tx, scope, invoice_id, optimistic=optimistic)
    if source is not None and not locked.state.authorized_amount:
        return await _authorize(
            tx,
            scope,
            locked,
            source,
            gateway_name=gateway_name,
            capture_amount=amount,
            capture=not authorize_only,
            metadata=metadata,
            on_decline=on_decline,
        )
    state = locked.state
    wanted = state.capturable_amount if amount is None else amount
    ledger.check_capture(state, wanted, currency=locked.transaction.currency)
    return await _begin_follow_up(tx, scope, locked, T.CAPTURE, wanted, metadata=metadata)


async def begin_void(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    *,
    metadata: dict[str, str] | None = None,
    optimistic: bool = False,
) -> Attempt:
    locked = await _locked(tx, scope, invoice_id, optimistic=optimistic)
    state = locked.state
    ledger.check_void(state)
    return await _begin_follow_up(
        tx, scope, locked, T.VOID, state.capturable_amount, metadata=metadata
    )


async def begin_increment(
    tx: Tx,
    scope: Scope,
    invoice_id: str,
    amount: int,
    *,
    metadata: dict[str, str] | None = None,
    optimistic: bool = False,
) -> Attempt:
    locked = await _locked(tx, scope, invoice_id, optimistic=optimistic)
    ledger.check_increment(locked.state, amount, currency=locked.transaction.currency)
    return await _begin_follow_up(tx, scope, locked, T.INCREMENT, amount, metadata=metadata)


async def begin_refund(
    tx: Tx,
    scope: Scope,
    transaction_id: str,
    amount: int,
    *,
    reason: str | None,
    information: str | None,
    metadata: dict[str, str] | None = None,
    optimistic: bool = False,
) -> Attempt:
    transaction = await transactions.get_transaction(tx, scope, transaction_id)
    locked = await _locked(tx, scope, transaction.invoice_id, optimistic=optimistic)
    if ledger.paid_by_hand(locked.log):
        raise ConflictError(
            f"The transaction {transaction_id!r} was settled by a manual transfer, not through"
            " a gateway: it cannot be refunded through one (it is refunded by hand).",
            code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
        )
    ledger.check_refund(locked.state, amount, currency=locked.transaction.currency)
    return await _begin_follow_up(
        tx,
        scope,
        locked,
        T.REFUND,
        amount,
        refund_id=new_id("re_"),
        reason=reason,
        information=information,
        metadata=metadata,
    )


# --- step 2 ---------------------------------------------------------------------------------


def request_of(attempt: Attempt) -> OperationRequest:
    op = attempt.operation
    return OperationRequest(
        key=op.operation_key,
        type=OperationType(op.type),
        amount=op.amount,
        currency=op.currency,
        card_reference=attempt.card_reference,
        parent_reference=attempt.parent_reference,
        return_url=attempt.return_url,
    )


async def execute(gateway: Gateway, attempt: Attempt) -> OperationResult | None:
    """The gateway's answer; None if it did not answer (the operation stays pending)."""
    try:
        return await gateway.execute(request_of(attempt))
    except GatewayUnavailable:
        return None


# --- step 3 ---------------------------------------------------------------------------------


_INVOICE_STATES: Final[dict[str, InvoiceState]] = {
    "authorized": InvoiceState.AUTHORIZED,
    "completed": InvoiceState.SETTLED,
    "partially-refunded": InvoiceState.SETTLED,
    "refunded": InvoiceState.SETTLED,
    "disputed": InvoiceState.SETTLED,
    "voided": InvoiceState.CANCELLED,
}


async def _relocked(tx: Tx, attempt: Attempt, *, optimistic: bool) -> Locked:
    """The invoice locked again for step 3, with its transaction and log. When the invoice's
    version is the one step 1 left, nobody has written the payment since (every writer bumps
    it: ``_touch``, ``invoices.set_state``, and the invoice's own changes), so step 1's reading
    stands: one indexed lookup of the version instead of the invoice's row and the joined
    transaction and log (on PostgreSQL, one round trip less; measured in bench/README.md).
    Otherwise (a concurrent writer, or no reading kept) all is read again.

    ``optimistic``: step 1's reading is trusted without even that lookup, the step's write of
    the invoice guarded by the version step 1 left (``Stale`` if anyone wrote since)."""
    seen = attempt.seen
    if optimistic and seen is not None:
        return Locked(
            invoice=seen.invoice, transaction=seen.transaction, log=list(seen.log), guarded=True
        )
    if seen is not None:
        version = await invoices.lock_version(tx, attempt.scope, attempt.invoice_id)
        if version == seen.invoice.version:
            return Locked(invoice=seen.invoice, transaction=seen.transaction, log=list(seen.log))
    return await _locked(tx, attempt.scope, attempt.invoice_id)


async def finish(
    tx: Tx, attempt: Attempt, result: OperationResult | None, *, optimistic: bool = False
) -> Attempt | Done:
    """Write the gateway's answer (None: no answer yet, the operation stays pending).
    ``optimistic``: see ``transact``."""
    scope, op = attempt.scope, attempt.operation
    locked = await _relocked(tx, attempt, optimistic=optimistic)
    at = next((i for i, o in enumerate(locked.log) if o.operation_key == op.operation_key), None)
    if at is None:
        raise NotFoundError("transaction", op.transaction_id)
    current = locked.log[at]
    action = None
    source: dict[str, str | None] = {}
    # Whether this call completes the operation. Only then do its consequences follow (the
    # card's checks, a dispute, a sale's capture): an operation may be finished twice (its own
    # request and recovery, or two workers' recoveries), and the second must change nothing.
    moved = False
    if current.status == "pending" and result is not None:
        if result.outcome is Outcome.ACTION_REQUIRED and result.customer_action is not None:
            action = result.customer_action
            await transactions.note_customer_action(tx, op.id, msgspec.to_builtins(action))
            source = {"three_d_s_status": result.three_d_s_status}
        else:
            moved = True
            current = msgspec.structs.replace(
                current,
                status="succeeded" if result.outcome is Outcome.SUCCEEDED else "failed",
                gateway_reference=result.reference,
                error_code=result.error_code,
                error_message=result.error_message,
                completed_at=now_us(),
            )
            locked.log[at] = current
            await transactions.complete_operation(tx, current)
            if current.type == T.AUTHORIZATION:
                source = {
                    "cvc_check": result.cvc_check,
                    "avs_check": result.avs_check,
                    "three_d_s_status": result.three_d_s_status,
                }
                if locked.transaction.card_id is not None:
                    await cards.record_checks(
                        tx, locked.transaction.card_id, result.cvc_check, result.avs_check
                    )
    elif current.customer_action is not None and current.status == "pending":
        action = CustomerAction(**current.customer_action)
    await _save(tx, locked, **source)
    if moved and result is not None and result.dispute_follows and current.status == "succeeded":
        # The sandbox's chargeback card: the dispute arrives once the capture is written.
        dispute = transactions.new_operation(
            locked.transaction, T.CHARGEBACK, current.amount, gateway_name=current.gateway_name
        )
        dispute = msgspec.structs.replace(dispute, status="succeeded", completed_at=now_us())
        await _append(tx, locked, dispute)
    invoice = locked.invoice
    state_before = invoice.state
    new_state = _INVOICE_STATES.get(locked.transaction.status)
    if new_state is not None and new_state is not invoice.state:
        invoice = locked.invoice = await invoices.set_state(
            tx, invoice, new_state, conflict=_conflict(locked)
        )
        locked.touched = True  # set_state bumped the version too
    else:
        await _touch(tx, locked)
        invoice = locked.invoice
    if moved:  # the operation and any it brought (a dispute) are the log's last
        await record_operations(
            tx,
            scope,
            locked.log[at:],
            locked.transaction,
            invoice,
            state_before=state_before,
        )
    if (
        moved
        and current.capture_after is not None
        and current.type == T.AUTHORIZATION
        and current.status == "succeeded"
    ):
        ledger.check_capture(
            locked.state, current.capture_after, currency=locked.transaction.currency
        )
        # A sale is one request: its metadata (on the authorization) goes on its capture too.
        return await _begin_follow_up(
            tx, scope, locked, T.CAPTURE, current.capture_after, metadata=current.metadata
        )
    return Done(
        transaction=locked.transaction,
        operation=current,
        invoice=invoice,
        log=list(locked.log),
        customer_action=action,
    )


async def run(db: Database, gateway: Gateway, attempt: Attempt) -> Done:
    """Steps 2 and 3 (and the next operation's, for a sale), outside any caller's
    transaction: for callers without an Idempotency-Key to record (recovery, the checkout)."""
    step: Attempt | Done = attempt
    while isinstance(step, Attempt):
        result = await execute(gateway, step)

        async def last(
            tx: Tx, optimistic: bool, step: Attempt = step, result: OperationResult | None = result
        ) -> Attempt | Done:
            return await finish(tx, step, result, optimistic=optimistic)

        step = await transact(db, last)
    return step


# --- for the invoice-level rules (settle.billing.states, settle.billing.refunds) --------------


async def lock_payment(tx: Tx, scope: Scope, invoice_id: str) -> Locked:
    """The invoice locked with its transaction and operations log (``_locked``): what a rule
    of an invoice's payment outside this module checks before it writes."""
    return await _locked(tx, scope, invoice_id)


async def append_operation(tx: Tx, locked: Locked, op: Operation) -> None:
    """Write ``op`` (one no gateway sees: a manual capture or refund, already completed) to
    the locked payment's log, and what the log now says of the transaction (``_append``)."""
    await _append(tx, locked, op)
