"""``settle.payments.ledger``: the money rules of a transaction, proven on its operations log.

Property tests drive random sequences of the operations a client could ask for (authorize,
increment, capture, void, refund; a chargeback as the gateway sends one) in every currency
exponent (JPY 0, EUR 2, KWD 3), each applied only when its ``check_*`` accepts it: written
``pending`` first, then completed ``succeeded`` or ``failed`` at random. After every step the
derived transaction must keep its bounds, equal the plain arithmetic of its log, and wear the
status its amounts call for; and each check must accept exactly what the rules allow (worked
out here from the log itself, not from ``derive``), a refusal changing nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from settle.errors import ConflictError, ErrorCode, SettleError, ValidationError
from settle.payments import ledger
from settle.payments.gateway import OperationType
from settle.payments.ledger import Derived, derive
from settle.payments.models import Operation, OperationStatus

T = OperationType
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# How the gateway answers: mostly accepted, so that runs get far enough to refund.
OUTCOMES: Final[tuple[OperationStatus, ...]] = ("succeeded", "succeeded", "succeeded", "failed")
# (currency, ISO 4217 exponent)
CURRENCIES: Final = [("JPY", 0), ("EUR", 2), ("KWD", 3)]
# Up to a million major units: 1,000,000 JPY, 1,000,000.00 EUR, 1,000,000.000 KWD.
MAJOR_UNITS: Final = 1_000_000
REQUESTED: Final = (T.AUTHORIZATION, T.INCREMENT, T.CAPTURE, T.VOID, T.REFUND)
# What the random sequences ask for: captures and refunds more often than a void (which ends
# the story), so that runs reach partial and whole refunds.
ASKED: Final = (*REQUESTED, T.AUTHORIZATION, T.CAPTURE, T.CAPTURE, T.REFUND, T.REFUND, T.REFUND)


def operation(
    kind: OperationType,
    amount: int,
    status: OperationStatus = "succeeded",
    *,
    at: int = 1_000,
    currency: str = "EUR",
    error_code: str | None = None,
) -> Operation:
    failed = status == "failed"
    return Operation(
        id=f"op_{at}",
        project_id="proj_x",
        sandbox=True,
        transaction_id="tr_x",
        type=kind.value,
        status=status,
        amount=amount,
        currency=currency,
        gateway_name="sandbox",
        operation_key=f"opk_{at}",
        created_at=at,
        completed_at=None if status == "pending" else at + 1,
        error_code=error_code or ("card.declined" if failed else None),
        error_message="The card was declined." if failed else None,
    )


# --- the rules, worked out from the log alone -----------------------------------------------


class Sums(msgspec.Struct, frozen=True):
    """Plain arithmetic of the succeeded operations of a log, by type."""

    authorized: int
    captured: int
    refunded: int
    voided: int
    chargebacks: int
    pending: bool

    @property
    def capturable(self) -> int:
        return self.authorized - self.captured - self.voided


def sums(ops: Sequence[Operation]) -> Sums:
    done = [op for op in ops if op.status == "succeeded"]

    def total(*kinds: OperationType) -> int:
        return sum(op.amount for op in done if op.type in kinds)

    return Sums(
        authorized=total(T.AUTHORIZATION, T.INCREMENT),
        captured=total(T.CAPTURE),
        refunded=total(T.REFUND),
        voided=total(T.VOID),
        chargebacks=sum(1 for op in done if op.type == T.CHARGEBACK),
        pending=any(op.status == "pending" for op in ops),
    )


def allowed(kind: OperationType, s: Sums, amount: int) -> bool:
    """What a client may ask for next, by the rules (ledger.py's docstrings), from the log."""
    if s.pending:
        return False
    if kind is T.AUTHORIZATION:
        return s.authorized == 0 and s.captured == 0 and s.voided == 0 and not s.chargebacks
    if kind is T.INCREMENT:
        return s.authorized > 0 and s.captured == 0 and s.voided == 0 and amount > 0
    if kind is T.CAPTURE:
        return s.voided == 0 and not s.chargebacks and 0 < amount <= s.capturable
    if kind is T.VOID:
        return s.authorized > 0 and s.captured == 0 and s.voided == 0
    assert kind is T.REFUND
    return not s.chargebacks and s.captured > 0 and 0 < amount <= s.captured - s.refunded


def check(kind: OperationType, state: Derived, amount: int) -> None:
    """The ledger's check for ``kind`` (void and authorize take no amount: begin_void voids
    the capturable rest, begin_authorize the invoice's amount)."""
    checks: dict[OperationType, Callable[[], None]] = {
        T.AUTHORIZATION: lambda: ledger.check_authorize(state),
        T.INCREMENT: lambda: ledger.check_increment(state, amount),
        T.CAPTURE: lambda: ledger.check_capture(state, amount),
        T.VOID: lambda: ledger.check_void(state),
        T.REFUND: lambda: ledger.check_refund(state, amount),
    }
    checks[kind]()


def assert_consistent(ops: Sequence[Operation]) -> Derived:
    """Every rule a derived transaction keeps, whatever log it came from."""
    d = derive(ops)
    s = sums(ops)
    # Each derived amount is the plain arithmetic of its operations; exact integers.
    for value in (d.authorized_amount, d.captured_amount, d.refunded_amount, d.voided_amount):
        assert type(value) is int and value >= 0
    assert d.authorized_amount == s.authorized
    assert d.captured_amount == s.captured
    assert d.refunded_amount == s.refunded
    assert d.voided_amount == s.voided
    assert d.pending is s.pending
    # The bounds.
    assert d.captured_amount <= d.authorized_amount
    assert d.refunded_amount <= d.captured_amount
    assert d.voided_amount + d.captured_amount <= d.authorized_amount
    assert d.available_amount == d.captured_amount - d.refunded_amount >= 0
    assert d.capturable_amount == s.capturable >= 0
    # The status follows the amounts.
    assert (d.status == "disputed") is (s.chargebacks > 0)
    if s.chargebacks:
        assert d.captured_amount > 0
    elif s.pending:
        assert d.status == "pending"
    else:
        assert (d.status == "voided") is (d.voided_amount > 0)
        assert (d.status == "refunded") is (d.refunded_amount == d.captured_amount > 0)
        assert (d.status == "partially-refunded") is (0 < d.refunded_amount < d.captured_amount)
        assert (d.status == "completed") is (d.captured_amount > 0 and d.refunded_amount == 0)
        if d.status in ("authorized", "failed", "waiting"):
            assert d.captured_amount == d.refunded_amount == d.voided_amount == 0
    done = [op for op in ops if op.status != "pending"]
    if d.status == "authorized":
        assert d.authorized_amount > 0 and done[-1].status == "succeeded"
    if d.status == "waiting":
        assert not done and d.authorized_amount == 0
    if d.status == "failed":
        assert done and done[-1].status == "failed"
        assert (d.error_code, d.error_message) == (done[-1].error_code, done[-1].error_message)
    else:
        assert d.error_code is None and d.error_message is None
    # A timestamp for each kind of movement, exactly when there is one.
    assert (d.captured_at is None) is (d.captured_amount == 0)
    assert (d.refunded_at is None) is (d.refunded_amount == 0)
    assert (d.voided_at is None) is (d.voided_amount == 0)
    assert (d.authorized_at is None) is (d.authorized_amount == 0)
    assert (d.chargedback_at is None) is (s.chargebacks == 0)
    return d


# --- property: random sequences of requested operations ------------------------------------


def amount_for(kind: OperationType, s: Sums, top: int) -> st.SearchStrategy[int]:
    """Anything in a realistic range, and the edges of what the rules allow."""
    anything = st.integers(1, top)
    if kind is T.AUTHORIZATION:
        return anything
    if kind is T.VOID:
        return st.just(s.capturable)  # begin_void voids the capturable rest
    rest = s.capturable if kind is T.CAPTURE else s.captured - s.refunded
    edges = [0, -1, 1, rest, rest + 1, rest - 1, max(rest // 2, 1), top]
    return st.one_of(anything, st.sampled_from(edges))


def expected_refusal(kind: OperationType, s: Sums, error: SettleError) -> None:
    """A refusal is the right kind of error: busy while an operation is pending; a bad
    amount as a validation error naming it; any other illegal move as a conflict."""
    if s.pending:
        assert isinstance(error, ConflictError)
        assert error.code == ErrorCode.TRANSACTION_BUSY
        return
    if isinstance(error, ValidationError):
        assert kind in (T.CAPTURE, T.REFUND, T.INCREMENT)
        assert error.code in (ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH, ErrorCode.INVALID_AMOUNT)
        assert error.field in ("capture_amount", "amount")
    else:
        assert isinstance(error, ConflictError)
        assert error.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION


@PROPERTY
@given(data=st.data(), currency=st.sampled_from(CURRENCIES))
def test_random_operation_sequences_keep_the_money_rules(
    data: st.DataObject, currency: tuple[str, int]
) -> None:
    code, exponent = currency
    top = MAJOR_UNITS * 10**exponent
    ops: list[Operation] = []
    clock = iter(range(1_000, 10**9, 10))
    assert_consistent(ops)
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        s = sums(ops)
        state = derive(ops)
        kind = data.draw(
            st.sampled_from(
                # The sandbox's chargeback follows a successful capture, once.
                (*ASKED, T.CHARGEBACK) if s.captured and not s.chargebacks else ASKED
            ),
            label="kind",
        )
        if kind is T.CHARGEBACK:
            last_capture = next(
                op for op in reversed(ops) if op.type == T.CAPTURE and op.status == "succeeded"
            )
            ops.append(operation(kind, last_capture.amount, at=next(clock), currency=code))
            assert_consistent(ops)
            continue
        amount = data.draw(amount_for(kind, s, top), label="amount")
        before = list(ops)
        try:
            check(kind, state, amount)
        except SettleError as error:
            assert not allowed(kind, s, amount), f"{kind} of {amount} refused: {error.message}"
            expected_refusal(kind, s, error)
            assert ops == before and derive(ops) == state  # a refusal changes nothing
            continue
        assert allowed(kind, s, amount), f"{kind} of {amount} accepted against the rules"
        pending = operation(kind, amount, "pending", at=next(clock), currency=code)
        ops.append(pending)
        assert_consistent(ops)
        # While it is pending, every other operation is refused and nothing moves.
        if data.draw(st.booleans(), label="interrupt"):
            other = data.draw(st.sampled_from(REQUESTED), label="other kind")
            during = derive(ops)
            with pytest.raises(ConflictError) as info:
                check(other, during, data.draw(st.integers(1, top), label="other amount"))
            assert info.value.code == ErrorCode.TRANSACTION_BUSY
            assert derive(ops) == during
        outcome = data.draw(st.sampled_from(OUTCOMES), label="outcome")
        ops[-1] = operation(kind, amount, outcome, at=pending.created_at, currency=code)
        assert_consistent(ops)
    event(f"ends {derive(ops).status}")


@PROPERTY
@given(
    currency=st.sampled_from(CURRENCIES),
    data=st.data(),
)
def test_partial_captures_and_refunds_never_pass_their_bounds(
    currency: tuple[str, int], data: st.DataObject
) -> None:
    """Greedy clients: capture and refund random slices until the rules say no more; the
    totals land exactly on what was authorized and captured, never beyond."""
    code, exponent = currency
    authorized = data.draw(st.integers(1, MAJOR_UNITS * 10**exponent), label="authorized")
    ops = [operation(T.AUTHORIZATION, authorized, at=1, currency=code)]
    at = 10
    for kind in (T.CAPTURE, T.REFUND):
        # Slices as thousandths of what is left, then all of the rest (0: all of it now).
        slices = data.draw(st.lists(st.integers(0, 999), max_size=8), label=f"{kind} slices")
        for per_mille in [*slices, 0]:
            s = sums(ops)
            rest = s.capturable if kind is T.CAPTURE else s.captured - s.refunded
            if rest == 0:
                break
            with pytest.raises(ValidationError) as info:  # one minor unit too many
                check(kind, derive(ops), rest + 1)
            assert info.value.code == ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH
            amount = max(rest * per_mille // 1000, 1) if per_mille else rest
            check(kind, derive(ops), amount)
            at += 10
            ops.append(operation(kind, amount, at=at, currency=code))
            assert_consistent(ops)
    d = assert_consistent(ops)
    assert d.authorized_amount == d.captured_amount == d.refunded_amount == authorized
    assert d.status == "refunded" and d.available_amount == 0
    for kind in (T.CAPTURE, T.REFUND):
        with pytest.raises(SettleError):
            check(kind, d, 1)


# --- derive(), one status at a time ---------------------------------------------------------

AUTH = operation(T.AUTHORIZATION, 1000, at=100)


def test_an_empty_log_is_waiting_and_holds_nothing() -> None:
    d = assert_consistent([])
    assert d.status == "waiting" and not d.pending
    assert (d.authorized_amount, d.captured_amount, d.refunded_amount, d.voided_amount) == (
        0,
        0,
        0,
        0,
    )
    assert d.available_amount == d.capturable_amount == 0
    assert d.authorized_at is d.captured_at is d.voided_at is d.refunded_at is None
    assert d.chargedback_at is None and d.error_code is None


def test_a_pending_authorization_is_pending_and_counts_nothing() -> None:
    d = assert_consistent([operation(T.AUTHORIZATION, 1000, "pending")])
    assert d.status == "pending" and d.pending
    assert d.authorized_amount == 0 and d.authorized_at is None


def test_an_authorization_is_authorized_from_its_completion() -> None:
    d = assert_consistent([AUTH])
    assert d.status == "authorized"
    assert d.authorized_amount == d.capturable_amount == 1000
    assert d.authorized_at == AUTH.completed_at == 101
    assert d.captured_amount == 0 and d.available_amount == 0


def test_an_increment_adds_to_what_is_authorized() -> None:
    d = assert_consistent([AUTH, operation(T.INCREMENT, 250, at=200)])
    assert d.status == "authorized"
    assert d.authorized_amount == d.capturable_amount == 1250
    assert d.authorized_at == 101  # the first authorizing operation's time


def test_a_declined_authorization_is_failed_with_its_error() -> None:
    d = assert_consistent([operation(T.AUTHORIZATION, 1000, "failed", error_code="card.declined")])
    assert d.status == "failed"
    assert d.error_code == "card.declined" and d.error_message == "The card was declined."
    assert d.authorized_amount == 0 and d.authorized_at is None


def test_a_later_success_clears_the_error() -> None:
    declined = operation(T.AUTHORIZATION, 1000, "failed", at=50)
    d = assert_consistent([declined, AUTH])
    assert d.status == "authorized" and d.error_code is None and d.error_message is None


def test_a_capture_completes_and_a_partial_one_leaves_the_rest_capturable() -> None:
    full = assert_consistent([AUTH, operation(T.CAPTURE, 1000, at=200)])
    assert full.status == "completed" and full.captured_at == 201
    assert full.available_amount == 1000 and full.capturable_amount == 0
    partial = assert_consistent([AUTH, operation(T.CAPTURE, 400, at=200)])
    assert partial.status == "completed"
    assert partial.captured_amount == partial.available_amount == 400
    assert partial.capturable_amount == 600


def test_a_declined_capture_keeps_the_authorization_capturable() -> None:
    d = assert_consistent(
        [AUTH, operation(T.CAPTURE, 1000, "failed", at=200, error_code="gateway.declined")]
    )
    # What derive() says today: the last operation failed, so the transaction is "failed",
    # though its authorization still stands and can be captured again.
    assert d.status == "failed" and d.error_code == "gateway.declined"
    assert d.authorized_amount == d.capturable_amount == 1000 and d.captured_amount == 0
    ledger.check_capture(d, 1000)


def test_a_void_releases_the_authorization() -> None:
    d = assert_consistent([AUTH, operation(T.VOID, 1000, at=200)])
    assert d.status == "voided" and d.voided_at == 201
    assert d.voided_amount == 1000 and d.capturable_amount == 0


def test_refunds_partial_then_whole() -> None:
    captured = [AUTH, operation(T.CAPTURE, 1000, at=200)]
    partial = assert_consistent([*captured, operation(T.REFUND, 300, at=300)])
    assert partial.status == "partially-refunded" and partial.refunded_at == 301
    assert partial.available_amount == 700
    whole = assert_consistent(
        [*captured, operation(T.REFUND, 300, at=300), operation(T.REFUND, 700, at=400)]
    )
    assert whole.status == "refunded" and whole.refunded_at == 301
    assert whole.refunded_amount == whole.captured_amount == 1000 and whole.available_amount == 0


def test_a_chargeback_disputes_whatever_else_happened() -> None:
    captured = [AUTH, operation(T.CAPTURE, 1000, at=200)]
    d = assert_consistent([*captured, operation(T.CHARGEBACK, 1000, at=300)])
    assert d.status == "disputed" and d.chargedback_at == 301
    assert d.captured_amount == d.available_amount == 1000
    refunded = [*captured, operation(T.REFUND, 1000, at=250), operation(T.CHARGEBACK, 1000, at=300)]
    assert assert_consistent(refunded).status == "disputed"
    with pytest.raises(ConflictError) as info:
        ledger.check_refund(d, 1)
    assert info.value.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION


def test_a_pending_operation_after_others_is_pending_and_blocks_every_check() -> None:
    ops = [AUTH, operation(T.CAPTURE, 400, at=200), operation(T.REFUND, 100, "pending", at=300)]
    d = assert_consistent(ops)
    assert d.status == "pending" and d.pending
    assert (d.captured_amount, d.refunded_amount) == (400, 0)
    for kind in REQUESTED:
        with pytest.raises(ConflictError) as info:
            check(kind, d, 1)
        assert info.value.code == ErrorCode.TRANSACTION_BUSY


def test_failed_operations_move_no_money() -> None:
    ops = [
        AUTH,
        operation(T.INCREMENT, 500, "failed", at=150),
        operation(T.CAPTURE, 1000, "failed", at=200),
        operation(T.VOID, 1000, "failed", at=250),
    ]
    d = assert_consistent(ops)
    assert (d.authorized_amount, d.captured_amount, d.voided_amount) == (1000, 0, 0)
    assert d.captured_at is None and d.voided_at is None


def test_the_time_of_an_operation_is_its_completion_or_else_its_creation() -> None:
    made_only = msgspec.structs.replace(AUTH, completed_at=None)
    assert derive([made_only]).authorized_at == AUTH.created_at


@pytest.mark.parametrize(("currency", "exponent"), CURRENCIES)
def test_amounts_stay_exact_at_the_top_of_each_currency(currency: str, exponent: int) -> None:
    top = MAJOR_UNITS * 10**exponent
    # Many small refunds of a large capture: integer sums, no drift.
    ops = [
        operation(T.AUTHORIZATION, top, at=1, currency=currency),
        operation(T.CAPTURE, top, at=2, currency=currency),
    ]
    step = top // 1000
    ops += [operation(T.REFUND, step, at=10 + i, currency=currency) for i in range(999)]
    d = assert_consistent(ops)
    assert d.available_amount == top - 999 * step
    ledger.check_refund(d, d.available_amount)
    with pytest.raises(ValidationError):
        ledger.check_refund(d, d.available_amount + 1)


# --- the checks' own edges -------------------------------------------------------------------


def test_check_authorize_refuses_a_second_authorization_and_a_voided_transaction() -> None:
    ledger.check_authorize(derive([]))
    ledger.check_authorize(derive([operation(T.AUTHORIZATION, 1000, "failed")]))
    for ops in ([AUTH], [AUTH, operation(T.VOID, 1000, at=200)]):
        with pytest.raises(ConflictError) as info:
            ledger.check_authorize(derive(ops))
        assert info.value.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION


@pytest.mark.parametrize("amount", [0, -1, 1001])
def test_check_capture_refuses_amounts_outside_the_capturable_rest(amount: int) -> None:
    with pytest.raises(ValidationError) as info:
        ledger.check_capture(derive([AUTH]), amount)
    assert info.value.code == ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH
    assert info.value.field == "capture_amount" and "1000" in info.value.message


def test_check_void_and_increment_refuse_after_a_capture() -> None:
    d = derive([AUTH, operation(T.CAPTURE, 1, at=200)])
    for kind in (T.VOID, T.INCREMENT):
        with pytest.raises(ConflictError) as info:
            check(kind, d, 1)
        assert info.value.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION


@pytest.mark.parametrize("amount", [0, -5])
def test_check_increment_refuses_a_non_positive_amount(amount: int) -> None:
    with pytest.raises(ValidationError) as info:
        ledger.check_increment(derive([AUTH]), amount)
    assert info.value.code == ErrorCode.INVALID_AMOUNT


def test_check_refund_refuses_before_any_capture() -> None:
    with pytest.raises(ConflictError) as info:
        ledger.check_refund(derive([AUTH]), 1)
    assert info.value.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION
