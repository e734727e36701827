"""A transaction's amounts and status, derived from its operations log: one pure function, so
they can never disagree with the log (the transaction row keeps the result only to be read
cheaply, written in the same database transaction as every operation that changes it).

Exact integer minor units throughout; what an operation may move is checked here too (before
anything is written: "capture more than authorized" is refused, not clipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from settle.errors import ConflictError, ErrorCode, invalid
from settle.money import MAX_MINOR, format_amount
from settle.payments.gateway import OperationType
from settle.payments.models import Operation, TransactionStatus

T = OperationType


class Derived(msgspec.Struct, frozen=True, kw_only=True):
    status: TransactionStatus
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    voided_amount: int
    error_code: str | None
    error_message: str | None
    authorized_at: int | None
    captured_at: int | None
    voided_at: int | None
    refunded_at: int | None
    chargedback_at: int | None
    pending: bool

    @property
    def available_amount(self) -> int:
        return self.captured_amount - self.refunded_amount

    @property
    def capturable_amount(self) -> int:
        """Authorized and neither captured nor voided yet."""
        return self.authorized_amount - self.captured_amount - self.voided_amount


_AUTHORIZING: Final = (T.AUTHORIZATION, T.INCREMENT)


def derive(operations: Sequence[Operation]) -> Derived:
    """The transaction that ``operations`` (in log order) make."""
    sums = dict.fromkeys(OperationType, 0)
    first: dict[OperationType, int] = {}
    pending = False
    last_done: Operation | None = None
    for op in operations:
        if op.status == "pending":
            pending = True
            continue
        last_done = op
        if op.status != "succeeded":
            continue
        kind = OperationType(op.type)
        sums[kind] += op.amount
        when = op.completed_at or op.created_at
        first.setdefault(kind, when)
    authorized = sums[T.AUTHORIZATION] + sums[T.INCREMENT]
    captured, refunded, voided = sums[T.CAPTURE], sums[T.REFUND], sums[T.VOID]
    failed_last = last_done is not None and last_done.status == "failed"
    status: TransactionStatus
    if T.CHARGEBACK in first:
        status = "disputed"
    elif pending:
        status = "pending"
    elif voided:
        status = "voided"
    elif refunded:
        status = "refunded" if refunded == captured else "partially-refunded"
    elif captured:
        status = "completed"
    elif failed_last:
        status = "failed"
    elif authorized:
        status = "authorized"
    else:
        status = "waiting"
    authorized_at = min((first[k] for k in _AUTHORIZING if k in first), default=None)
    return Derived(
        status=status,
        authorized_amount=authorized,
        captured_amount=captured,
        refunded_amount=refunded,
        voided_amount=voided,
        # The error describes the status: a failed transaction's last failure, nothing else
        # (a retry under way, or a later success, clears it).
        error_code=last_done.error_code if status == "failed" and last_done else None,
        error_message=last_done.error_message if status == "failed" and last_done else None,
        authorized_at=authorized_at,
        captured_at=first.get(T.CAPTURE),
        voided_at=first.get(T.VOID),
        refunded_at=first.get(T.REFUND),
        chargedback_at=first.get(T.CHARGEBACK),
        pending=pending,
    )


# The gateway name of an operation no gateway saw: money paid outside Settle (cash, a bank
# transfer, ...) and recorded by hand (settle.billing.states). Its details are the operation's
# metadata.
MANUAL: Final = "manual"


def paid_by_hand(log: Sequence[Operation]) -> bool:
    """Whether the payment was captured by a manual transfer: money no gateway took, paid
    back by hand (``billing.refunds.refund_manually``), never through a gateway. Read from its
    log, not from its card: a card declined before the manual settle stays on the transaction,
    and made an invoice paid in cash look paid by card."""
    return any(
        op.type == OperationType.CAPTURE and op.gateway_name == MANUAL and op.status == "succeeded"
        for op in log
    )


def _busy() -> ConflictError:
    return ConflictError(
        "Another operation on this transaction is in progress; retry once it is done.",
        code=ErrorCode.TRANSACTION_BUSY,
    )


def _illegal(message: str) -> ConflictError:
    return ConflictError(message, code=ErrorCode.TRANSACTION_ILLEGAL_OPERATION)


def check_authorize(state: Derived) -> None:
    if state.pending:
        raise _busy()
    if state.authorized_amount or state.captured_amount:
        raise _illegal("The transaction is already authorized.")
    if state.status in ("voided", "disputed"):
        raise _illegal(f"A {state.status} transaction cannot be authorized again.")


def check_capture(state: Derived, amount: int, *, currency: str | None = None) -> None:
    """``amount``: what would be captured (the capturable rest when the request gave none)."""
    if state.pending:
        raise _busy()
    if state.voided_amount:
        raise _illegal("A voided transaction cannot be captured.")
    if state.status == "disputed":
        raise _illegal("A disputed transaction cannot be captured.")
    if state.capturable_amount <= 0:
        raise _illegal("Nothing is authorized that is not captured yet.")
    if not 0 < amount <= state.capturable_amount:
        raise invalid(
            "capture_amount",
            "must be more than 0 and at most the authorized rest"
            f" ({_amount(state.capturable_amount, currency)}).",
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )


def _amount(minor: int, currency: str | None) -> str:
    """An amount for an error message, in both the units a client may have sent it in:
    ProcessOut's decimal string and Reepay's minor units ("8.49 EUR, 849 minor units")."""
    if not currency:
        return f"{minor} minor units"
    return f"{format_amount(minor, currency)} {currency}, {minor} minor units"


def check_void(state: Derived) -> None:
    if state.pending:
        raise _busy()
    if state.captured_amount:
        raise _illegal("A captured payment cannot be voided; refund it instead.")
    if state.voided_amount:
        raise _illegal("The transaction is already voided.")
    if not state.authorized_amount:
        raise _illegal("Nothing is authorized to void.")


def check_increment(state: Derived, amount: int, *, currency: str | None = None) -> None:
    if state.pending:
        raise _busy()
    if not state.authorized_amount or state.captured_amount or state.voided_amount:
        raise _illegal("Only an authorization not yet captured or voided can be incremented.")
    if amount <= 0:
        raise invalid("amount", "must be more than 0.", ErrorCode.INVALID_AMOUNT)
    # Each increment is at most MAX_MINOR, their sum was not: it could pass what a request can
    # name (a refund of it all), then the 64-bit columns of the transaction.
    if state.authorized_amount + amount > MAX_MINOR:
        raise invalid(
            "amount",
            f"would authorize more than {MAX_MINOR} minor units in all (authorized: "
            f"{_amount(state.authorized_amount, currency)}).",
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )


def check_refund(state: Derived, amount: int, *, currency: str | None = None) -> None:
    if state.pending:
        raise _busy()
    if state.status == "disputed":
        raise _illegal("A disputed payment cannot be refunded.")
    if not state.captured_amount:
        raise _illegal("Nothing was captured to refund.")
    if not 0 < amount <= state.available_amount:
        raise invalid(
            "amount",
            "must be more than 0 and at most what is left to refund"
            f" ({_amount(state.available_amount, currency)}).",
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )
