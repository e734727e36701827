"""``settle.billing.payments`` on each backend, with a real ``SandboxGateway`` keeping its
tables in the test database: every operation in its three steps (``begin_*`` in one database
transaction, ``execute`` outside any, ``finish`` in a second), the invoice moving with its
transaction, illegal moves refused without a trace, races that can never pay twice, and
recovery of operations a crash left pending, finished exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import msgspec
import pytest

from settle.billing import payments, recovery
from settle.billing import service as billing
from settle.clock import now_us
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import Database, Lock, Tx
from settle.errors import ConflictError, ErrorCode, NotFoundError, SettleError, ValidationError
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceInput, InvoiceState, LineInput
from settle.payments import cards, ledger, tokens
from settle.payments import service as transactions
from settle.payments.gateway import (
    CardData,
    Gateway,
    GatewayUnavailable,
    OperationRequest,
    OperationResult,
    OperationType,
    Outcome,
    VaultedCard,
)
from settle.payments.models import Card, Operation, Transaction
from settle.payments.sandbox import SandboxGateway
from settle.projects.models import Scope
from settle.unique import atomic
from tests.domain_fixtures import (  # noqa: F401
    SANDBOX_BASE_URL,
    add_card,
    domain_db_fixture,
    fetchval,
    gateway_fixture,
    new_scope,
    other_mode,
    scope_fixture,
)

T = OperationType
GOOD: Final = "4242424242424242"
DECLINE: Final = "4000000000000002"
DECLINE_CAPTURE: Final = "4000000000000010"
CHARGEBACK: Final = "4000000000000069"
THREE_DS: Final = "4000000000000101"
ROUNDS: Final = 20  # of each race, per backend

# A first step, told whether it may read optimistically (``payments.transact``).
Begin = Callable[[Tx, bool], Awaitable[payments.Attempt]]


def order(
    amount: int = 4999, currency: str = "EUR", customer_id: str | None = None
) -> InvoiceInput:
    return InvoiceInput(
        amount=amount,
        currency=currency,
        customer_id=customer_id,
        name="Amazing item",
        lines=[LineInput(name="item", amount=amount)],
    )


class State(msgspec.Struct, frozen=True):
    invoice: Invoice
    transaction: Transaction
    operations: list[Operation]
    card: Card | None

    @property
    def derived(self) -> ledger.Derived:
        return ledger.derive(self.operations)

    def of(self, kind: OperationType) -> list[Operation]:
        return [op for op in self.operations if op.type == kind]


@dataclass
class Shop:
    """One project paying its invoices through the sandbox, step by step."""

    db: Database
    gateway: SandboxGateway
    scope: Scope
    # Steps 1 and 3 run as the API runs them (``payments.transact``: optimistic first, then
    # under the lock if a concurrent writer got in), or always under the lock.
    optimistic: bool = False

    async def invoice(
        self, amount: int = 4999, currency: str = "EUR", customer_id: str | None = None
    ) -> Invoice:
        async with self.db.write() as tx:
            return await billing.create_invoice(
                tx, self.scope, order(amount, currency, customer_id)
            )

    async def card(self, number: str = GOOD, *, cvc: str | None = "123") -> Card:
        return await add_card(self.db, self.scope, self.gateway, number, cvc=cvc)

    # The three steps, as settle.api.lifecycle.Call.pay runs them.

    async def begin(self, step: Begin) -> payments.Attempt:
        if self.optimistic:
            return await payments.transact(self.db, step)
        async with atomic(self.db) as tx:
            return await step(tx, False)

    async def finish(
        self, attempt: payments.Attempt, result: OperationResult | None
    ) -> payments.Attempt | payments.Done:
        async def last(tx: Tx, optimistic: bool) -> payments.Attempt | payments.Done:
            return await payments.finish(tx, attempt, result, optimistic=optimistic)

        if self.optimistic:
            return await payments.transact(self.db, last)
        async with atomic(self.db) as tx:
            return await last(tx, False)

    async def complete(self, step: payments.Attempt | payments.Done) -> payments.Done:
        """Steps 2 and 3 until done (a sale's capture follows its authorization)."""
        while isinstance(step, payments.Attempt):
            step = await self.finish(step, await payments.execute(self.gateway, step))
        return step

    async def operate(self, step: Begin) -> payments.Done:
        return await self.complete(await self.begin(step))

    # The operations.

    def authorizing(
        self, invoice: Invoice, source: str, *, capture: bool = False, amount: int | None = None
    ) -> Begin:
        return lambda tx, o: payments.begin_authorize(
            tx,
            self.scope,
            invoice.id,
            source,
            gateway_name=self.gateway.name,
            capture=capture,
            capture_amount=amount,
            optimistic=o,
        )

    def capturing(self, invoice: Invoice, amount: int | None = None) -> Begin:
        return lambda tx, o: payments.begin_capture(
            tx, self.scope, invoice.id, amount, optimistic=o
        )

    def voiding(self, invoice: Invoice) -> Begin:
        return lambda tx, o: payments.begin_void(tx, self.scope, invoice.id, optimistic=o)

    def incrementing(self, invoice: Invoice, amount: int) -> Begin:
        return lambda tx, o: payments.begin_increment(
            tx, self.scope, invoice.id, amount, optimistic=o
        )

    def refunding(self, invoice: Invoice, amount: int) -> Begin:
        return lambda tx, o: payments.begin_refund(
            tx,
            self.scope,
            invoice.transaction_id,
            amount,
            reason="customer",
            information="x",
            optimistic=o,
        )

    async def authorize(
        self, invoice: Invoice, source: str, *, capture: bool = False, amount: int | None = None
    ) -> payments.Done:
        return await self.operate(self.authorizing(invoice, source, capture=capture, amount=amount))

    async def capture(self, invoice: Invoice, amount: int | None = None) -> payments.Done:
        return await self.operate(self.capturing(invoice, amount))

    async def refund(self, invoice: Invoice, amount: int) -> payments.Done:
        return await self.operate(self.refunding(invoice, amount))

    async def paid(self, amount: int = 1000, *, captured: bool = True) -> Invoice:
        """An invoice authorized (and captured) with a good card."""
        invoice = await self.invoice(amount)
        await self.authorize(invoice, (await self.card()).id, capture=captured)
        return invoice

    async def state(self, invoice: Invoice) -> State:
        async with self.db.read() as tx:
            stored = await invoices.get_invoice(tx, self.scope, invoice.id)
            transaction = await transactions.get_transaction(tx, self.scope, stored.transaction_id)
            ops = await transactions.operations_of(tx, transaction.id)
            card = (
                None
                if transaction.card_id is None
                else await cards.get_card(tx, self.scope, transaction.card_id)
            )
        state = State(stored, transaction, ops, card)
        assert_consistent(state)
        return state


def assert_consistent(state: State) -> None:
    """The stored transaction says what its log says, within its bounds, and the invoice
    follows it."""
    t, d = state.transaction, state.derived
    assert (t.status, t.error_code, t.error_message) == (d.status, d.error_code, d.error_message)
    assert t.authorized_amount == d.authorized_amount
    assert t.captured_amount == d.captured_amount
    assert t.refunded_amount == d.refunded_amount
    assert t.voided_amount == d.voided_amount
    assert (t.authorized_at, t.captured_at, t.voided_at, t.refunded_at, t.chargedback_at) == (
        d.authorized_at,
        d.captured_at,
        d.voided_at,
        d.refunded_at,
        d.chargedback_at,
    )
    assert 0 <= t.refunded_amount <= t.captured_amount <= t.authorized_amount
    assert t.voided_amount + t.captured_amount <= t.authorized_amount
    assert t.available_amount == t.captured_amount - t.refunded_amount
    assert all(op.currency == t.currency for op in state.operations)
    expected = {
        "authorized": InvoiceState.AUTHORIZED,
        "completed": InvoiceState.SETTLED,
        "partially-refunded": InvoiceState.SETTLED,
        "refunded": InvoiceState.SETTLED,
        "disputed": InvoiceState.SETTLED,
        "voided": InvoiceState.CANCELLED,
    }.get(t.status)
    if expected is not None:
        assert state.invoice.state is expected


async def gateway_rows(db: Database, transaction_id: str | None = None) -> int:
    """Operations the sandbox recorded (of one transaction's log, or all of them)."""
    if transaction_id is None:
        return int(await fetchval(db, "SELECT count(*) FROM sandbox_operations"))
    return int(
        await fetchval(
            db,
            "SELECT count(*) FROM sandbox_operations WHERE operation_key IN"
            " (SELECT operation_key FROM transaction_operations WHERE transaction_id = $1)",
            transaction_id,
        )
    )


async def event_count(db: Database, transaction_id: str) -> int:
    return int(
        await fetchval(db, "SELECT count(*) FROM events WHERE transaction_id = $1", transaction_id)
    )


@pytest.fixture(params=["locked", "optimistic"])
def shop(
    request: pytest.FixtureRequest, domain_db: Database, gateway: SandboxGateway, scope: Scope
) -> Shop:
    return Shop(domain_db, gateway, scope, optimistic=request.param == "optimistic")


# --- authorize, capture, void, increment, refund ----------------------------------------------


@pytest.mark.parametrize(("currency", "amount"), [("JPY", 500), ("EUR", 4999), ("KWD", 1005)])
async def test_authorize_holds_the_invoice_amount(shop: Shop, currency: str, amount: int) -> None:
    invoice = await shop.invoice(amount, currency)
    card = await shop.card()
    assert card.cvc_check == "unchecked"
    done = await shop.authorize(invoice, card.id)
    state = await shop.state(invoice)
    t = state.transaction
    assert done.transaction == t and done.log == state.operations
    # The invoice whole: a step whose answer completes the operation reads its lines (its
    # events show it whole).
    assert done.invoice == state.invoice
    assert t.status == "authorized" and t.currency == currency
    assert (t.authorized_amount, t.captured_amount, t.available_amount) == (amount, 0, 0)
    assert (t.card_id, t.token_id, t.gateway_name) == (card.id, None, "sandbox")
    assert (t.cvc_check, t.avs_check, t.three_d_s_status) == ("passed", "passed", None)
    assert t.authorized_at is not None and t.error_code is None
    assert state.invoice.state is InvoiceState.AUTHORIZED
    (op,) = state.operations
    assert done.operation == op
    assert (op.type, op.status, op.amount, op.currency) == (
        "authorization",
        "succeeded",
        amount,
        currency,
    )
    assert op.gateway_reference is not None and op.completed_at is not None
    assert op.card_id == card.id and op.capture_after is None
    assert state.card is not None
    assert (state.card.cvc_check, state.card.avs_check) == ("passed", "passed")
    assert await gateway_rows(shop.db, t.id) == 1


async def test_capture_of_everything_settles_the_invoice(shop: Shop) -> None:
    invoice = await shop.paid(2500, captured=False)
    done = await shop.capture(invoice)
    state = await shop.state(invoice)
    t = state.transaction
    assert done.transaction == t
    assert t.status == "completed" and state.invoice.state is InvoiceState.SETTLED
    assert (t.authorized_amount, t.captured_amount, t.available_amount) == (2500, 2500, 2500)
    assert t.captured_at is not None
    (capture,) = state.of(T.CAPTURE)
    assert (capture.status, capture.amount) == ("succeeded", 2500)
    assert await gateway_rows(shop.db, t.id) == 2


async def test_partial_captures_then_the_rest(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    await shop.capture(invoice, 300)
    state = await shop.state(invoice)
    assert state.transaction.status == "completed"
    assert state.transaction.captured_amount == 300 and state.derived.capturable_amount == 700
    assert state.invoice.state is InvoiceState.SETTLED
    await shop.capture(invoice, 600)
    await shop.capture(invoice)  # the rest: 100
    state = await shop.state(invoice)
    assert [op.amount for op in state.of(T.CAPTURE)] == [300, 600, 100]
    assert state.transaction.captured_amount == state.transaction.authorized_amount == 1000
    with pytest.raises(ConflictError) as info:
        await shop.capture(invoice)
    assert info.value.code == ErrorCode.TRANSACTION_ILLEGAL_OPERATION


async def test_void_releases_the_authorization_and_cancels_the_invoice(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    done = await shop.operate(shop.voiding(invoice))
    state = await shop.state(invoice)
    t = state.transaction
    assert done.transaction == t
    assert t.status == "voided" and state.invoice.state is InvoiceState.CANCELLED
    assert (t.authorized_amount, t.voided_amount, t.captured_amount) == (1000, 1000, 0)
    assert t.voided_at is not None and state.derived.capturable_amount == 0


async def test_increment_raises_what_can_be_captured(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    await shop.operate(shop.incrementing(invoice, 250))
    state = await shop.state(invoice)
    assert state.transaction.status == "authorized"
    assert state.transaction.authorized_amount == state.derived.capturable_amount == 1250
    assert state.transaction.amount == 1000  # what the invoice asked for does not move
    await shop.capture(invoice)
    state = await shop.state(invoice)
    assert state.transaction.captured_amount == 1250
    assert state.invoice.state is InvoiceState.SETTLED


async def test_refunds_partial_repeated_up_to_the_captured_amount_never_beyond(
    shop: Shop,
) -> None:
    invoice = await shop.paid(1000)
    transaction_id = invoice.transaction_id
    done = await shop.refund(invoice, 250)
    assert done.operation.refund_id is not None and done.operation.refund_id.startswith("re_")
    assert (done.operation.reason, done.operation.information) == ("customer", "x")
    state = await shop.state(invoice)
    assert state.transaction.status == "partially-refunded"
    assert (state.transaction.refunded_amount, state.transaction.available_amount) == (250, 750)
    assert state.invoice.state is InvoiceState.SETTLED
    await shop.refund(invoice, 250)
    before = await shop.state(invoice)
    with pytest.raises(ValidationError) as info:
        await shop.refund(invoice, 501)
    assert info.value.code == ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH
    assert "500" in info.value.message
    assert await shop.state(invoice) == before
    await shop.refund(invoice, 500)
    state = await shop.state(invoice)
    assert state.transaction.status == "refunded" and state.transaction.available_amount == 0
    assert state.transaction.refunded_amount == state.transaction.captured_amount == 1000
    assert state.invoice.state is InvoiceState.SETTLED
    for amount in (1, 1000):
        with pytest.raises(ValidationError):
            await shop.refund(invoice, amount)
    assert await shop.state(invoice) == state
    async with shop.db.read() as tx:
        refunds = await transactions.refunds_of(tx, shop.scope, transaction_id)
    assert [r.amount for r in refunds] == [250, 250, 500]
    assert len({r.refund_id for r in refunds}) == 3
    assert await gateway_rows(shop.db, transaction_id) == 5


async def test_each_operation_keeps_its_requests_metadata(shop: Shop) -> None:
    """Capture, void, increment and refund took no metadata (the ProcessOut requests' was
    dropped): each operation now keeps its own, and a sale's goes on both its operations."""
    scope = shop.scope
    voided = await shop.paid(1000, captured=False)
    await shop.operate(
        lambda tx, o: payments.begin_increment(
            tx, scope, voided.id, 100, metadata={"s": "increment"}, optimistic=o
        )
    )
    await shop.operate(
        lambda tx, o: payments.begin_void(
            tx, scope, voided.id, metadata={"s": "void"}, optimistic=o
        )
    )
    assert [op.metadata for op in (await shop.state(voided)).operations] == [
        {},
        {"s": "increment"},
        {"s": "void"},
    ]
    paid = await shop.paid(1000, captured=False)
    await shop.operate(
        lambda tx, o: payments.begin_capture(
            tx, scope, paid.id, 600, metadata={"s": "capture"}, optimistic=o
        )
    )
    done = await shop.operate(
        lambda tx, o: payments.begin_refund(
            tx,
            scope,
            paid.transaction_id,
            100,
            reason=None,
            information=None,
            metadata={"s": "refund"},
            optimistic=o,
        )
    )
    assert done.operation.metadata == {"s": "refund"}
    assert [op.metadata for op in (await shop.state(paid)).operations] == [
        {},
        {"s": "capture"},
        {"s": "refund"},
    ]
    sold = await shop.invoice(1000)
    card = await shop.card()
    await shop.operate(
        lambda tx, o: payments.begin_capture(
            tx,
            scope,
            sold.id,
            None,
            source=card.id,
            gateway_name=shop.gateway.name,
            metadata={"s": "sale"},
            optimistic=o,
        )
    )
    assert [(op.type, op.metadata) for op in (await shop.state(sold)).operations] == [
        ("authorization", {"s": "sale"}),
        ("capture", {"s": "sale"}),
    ]


@pytest.mark.parametrize("amount", [None, 600])
async def test_a_sale_authorizes_and_captures(shop: Shop, amount: int | None) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card()
    attempt = await shop.begin(shop.authorizing(invoice, card.id, capture=True, amount=amount))
    assert attempt.operation.capture_after == (amount or 1000)
    step = await shop.finish(attempt, await payments.execute(shop.gateway, attempt))
    assert isinstance(step, payments.Attempt)  # the capture, written pending
    assert (step.operation.type, step.operation.status) == ("capture", "pending")
    assert step.parent_reference is not None
    done = await shop.complete(step)
    state = await shop.state(invoice)
    assert done.transaction == state.transaction and done.operation.type == "capture"
    assert state.transaction.status == "completed"
    assert state.invoice.state is InvoiceState.SETTLED
    assert state.transaction.authorized_amount == 1000
    assert state.transaction.captured_amount == (amount or 1000)
    assert [(op.type, op.status) for op in state.operations] == [
        ("authorization", "succeeded"),
        ("capture", "succeeded"),
    ]
    assert await gateway_rows(shop.db, invoice.transaction_id) == 2


async def test_a_sale_of_more_than_the_invoice_is_refused(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card()
    for amount in (1001, 0, -1):
        await refused(
            shop,
            invoice,
            shop.authorizing(invoice, card.id, capture=True, amount=amount),
            ValidationError,
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )


# --- what the test cards do -------------------------------------------------------------------


async def test_a_declined_card_fails_and_the_invoice_can_be_paid_again(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    declined = await shop.card(DECLINE)
    done = await shop.authorize(invoice, declined.id)
    state = await shop.state(invoice)
    t = state.transaction
    assert done.operation.status == "failed"
    assert t.status == "failed" and t.error_code == "card.declined" and t.error_message
    assert t.authorized_amount == 0 and t.authorized_at is None
    assert state.invoice.state is InvoiceState.PENDING
    # Retried with a good card.
    good = await shop.card()
    await shop.authorize(invoice, good.id, capture=True)
    state = await shop.state(invoice)
    t = state.transaction
    assert t.status == "completed" and t.error_code is None
    assert (t.authorized_amount, t.captured_amount) == (1000, 1000)
    assert state.invoice.state is InvoiceState.SETTLED
    assert [(op.type, op.status, op.card_id) for op in state.operations] == [
        ("authorization", "failed", declined.id),
        ("authorization", "succeeded", good.id),
        ("capture", "succeeded", good.id),
    ]
    assert t.card_id == good.id


async def test_a_capture_declining_card_keeps_the_authorization(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card(DECLINE_CAPTURE)
    await shop.authorize(invoice, card.id)
    assert (await shop.state(invoice)).transaction.status == "authorized"
    done = await shop.capture(invoice)
    assert done.operation.status == "failed"
    state = await shop.state(invoice)
    t = state.transaction
    assert t.error_code == "gateway.declined"
    assert (t.authorized_amount, t.captured_amount) == (1000, 0)
    assert t.status == "failed"  # derive(): the last operation failed (see test_ledger)
    assert state.invoice.state is InvoiceState.AUTHORIZED
    # Nothing was captured: the authorization can still be voided.
    await shop.operate(shop.voiding(invoice))
    state = await shop.state(invoice)
    assert state.transaction.status == "voided"
    assert state.invoice.state is InvoiceState.CANCELLED


async def test_the_chargeback_card_ends_disputed_and_cannot_be_refunded(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card(CHARGEBACK)
    await shop.authorize(invoice, card.id, capture=True)
    state = await shop.state(invoice)
    t = state.transaction
    assert t.status == "disputed" and t.chargedback_at is not None
    assert (t.captured_amount, t.refunded_amount) == (1000, 0)
    assert state.invoice.state is InvoiceState.SETTLED
    (chargeback,) = state.of(T.CHARGEBACK)
    assert (chargeback.status, chargeback.amount) == ("succeeded", 1000)
    await refused(
        shop,
        invoice,
        shop.refunding(invoice, 1),
        ConflictError,
        ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
    )


@pytest.mark.parametrize(
    ("number", "checks"),
    [
        (GOOD, ("passed", "passed")),
        ("4000000000000028", ("failed", "passed")),
        ("4000000000000036", ("passed", "failed")),
        ("4000000000000044", ("failed", "failed")),
    ],
)
async def test_cvc_and_avs_checks_are_reported_on_the_transaction_and_the_card(
    shop: Shop, number: str, checks: tuple[str, str]
) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card(number)
    assert (card.cvc_check, card.avs_check) == ("unchecked", "unchecked")
    await shop.authorize(invoice, card.id)
    state = await shop.state(invoice)
    assert state.transaction.status == "authorized"
    assert (state.transaction.cvc_check, state.transaction.avs_check) == checks
    assert state.card is not None and (state.card.cvc_check, state.card.avs_check) == checks


async def test_the_card_without_3ds_authorizes_with_3ds_unsupported(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    await shop.authorize(invoice, (await shop.card("4000000000000119")).id)
    state = await shop.state(invoice)
    assert state.transaction.status == "authorized"
    assert state.transaction.three_d_s_status == "unsupported"


# --- 3-D Secure -------------------------------------------------------------------------------


async def challenged(shop: Shop, invoice: Invoice, *, capture: bool = False) -> payments.Done:
    """An authorization with the 3-D Secure card, waiting for the payer."""
    card = await shop.card(THREE_DS)
    done = await shop.authorize(invoice, card.id, capture=capture)
    op = done.operation
    assert op.status == "pending"
    assert done.customer_action is not None and done.customer_action.type == "redirect"
    assert done.customer_action.value == f"{SANDBOX_BASE_URL}/3ds/{op.operation_key}"
    state = await shop.state(invoice)
    assert state.transaction.status == "pending"
    assert state.transaction.three_d_s_status == "pending"
    assert state.invoice.state is InvoiceState.PENDING
    (stored,) = state.operations
    assert stored.customer_action == msgspec.to_builtins(done.customer_action)
    # Nothing to resume until the payer answers.
    assert await recovery.resume(shop.db, shop.gateway, op.operation_key) is None
    assert await shop.state(invoice) == state
    return done


@pytest.mark.parametrize("capture", [False, True])
async def test_3ds_approved_authorizes_once_resumed(shop: Shop, capture: bool) -> None:
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice, capture=capture)).operation
    await shop.gateway.decide(
        op.operation_key, approve=True, amount=op.amount, kind=T.AUTHORIZATION
    )
    done = await recovery.resume(shop.db, shop.gateway, op.operation_key)
    assert done is not None
    state = await shop.state(invoice)
    t = state.transaction
    assert done.transaction == t
    assert t.three_d_s_status == "success" and t.cvc_check == "passed"
    assert t.authorized_amount == 1000
    if capture:
        assert t.status == "completed" and t.captured_amount == 1000
        assert state.invoice.state is InvoiceState.SETTLED
    else:
        assert t.status == "authorized" and t.captured_amount == 0
        assert state.invoice.state is InvoiceState.AUTHORIZED
    assert state.operations[0].status == "succeeded"
    # Resuming again finds nothing pending, and changes nothing.
    assert await recovery.resume(shop.db, shop.gateway, op.operation_key) is None
    assert await shop.state(invoice) == state


async def test_3ds_refused_fails_and_the_invoice_can_be_paid_again(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice, capture=True)).operation
    await shop.gateway.decide(
        op.operation_key, approve=False, amount=op.amount, kind=T.AUTHORIZATION
    )
    done = await recovery.resume(shop.db, shop.gateway, op.operation_key)
    assert done is not None and done.operation.status == "failed"
    state = await shop.state(invoice)
    t = state.transaction
    assert t.status == "failed" and t.error_code == "card.failed-three-d-s"
    assert t.three_d_s_status == "failed" and t.authorized_amount == 0
    assert state.invoice.state is InvoiceState.PENDING
    assert state.of(T.CAPTURE) == []
    await shop.authorize(invoice, (await shop.card()).id)
    assert (await shop.state(invoice)).transaction.status == "authorized"


async def test_resume_of_an_unknown_key_is_none(shop: Shop) -> None:
    assert await recovery.resume(shop.db, shop.gateway, "opk_unknown") is None


# --- illegal moves change nothing -------------------------------------------------------------


async def refused(
    shop: Shop,
    invoice: Invoice,
    step: Begin,
    error: type[SettleError],
    code: ErrorCode,
) -> SettleError:
    """``step`` is refused with ``code``; the invoice, its transaction and log, and the
    gateway are untouched."""
    before = await shop.state(invoice)
    rows = await gateway_rows(shop.db)
    with pytest.raises(error) as info:
        await shop.operate(step)
    assert info.value.code == code, info.value.message
    assert await shop.state(invoice) == before
    assert await gateway_rows(shop.db) == rows
    return info.value


async def test_capture_of_more_than_authorized_is_refused(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    for amount in (1001, 0, -5):
        await refused(
            shop,
            invoice,
            shop.capturing(invoice, amount),
            ValidationError,
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )
    await shop.capture(invoice, 400)
    await refused(
        shop,
        invoice,
        shop.capturing(invoice, 601),
        ValidationError,
        ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
    )


async def test_refund_before_capture_or_beyond_it_is_refused(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    await refused(
        shop,
        invoice,
        shop.refunding(invoice, 1),
        ConflictError,
        ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
    )
    await shop.capture(invoice, 700)
    for amount in (701, 1000, 0, -1):
        await refused(
            shop,
            invoice,
            shop.refunding(invoice, amount),
            ValidationError,
            ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
        )


async def test_void_or_increment_after_capture_is_refused(shop: Shop) -> None:
    invoice = await shop.paid(1000)
    for step in (shop.voiding(invoice), shop.incrementing(invoice, 100)):
        await refused(shop, invoice, step, ConflictError, ErrorCode.TRANSACTION_ILLEGAL_OPERATION)


async def test_nothing_follows_a_void(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    await shop.operate(shop.voiding(invoice))
    card = await shop.card()
    for step, error, code in (
        (shop.capturing(invoice), ConflictError, ErrorCode.TRANSACTION_ILLEGAL_OPERATION),
        (shop.voiding(invoice), ConflictError, ErrorCode.TRANSACTION_ILLEGAL_OPERATION),
        (shop.incrementing(invoice, 1), ConflictError, ErrorCode.TRANSACTION_ILLEGAL_OPERATION),
        (shop.refunding(invoice, 1), ConflictError, ErrorCode.TRANSACTION_ILLEGAL_OPERATION),
        (shop.authorizing(invoice, card.id), ConflictError, ErrorCode.INVOICE_NOT_PAYABLE),
    ):
        await refused(shop, invoice, step, error, code)


@pytest.mark.parametrize("captured", [False, True])
async def test_a_paid_or_authorized_invoice_cannot_be_paid_again(
    shop: Shop, captured: bool
) -> None:
    invoice = await shop.paid(1000, captured=captured)
    card = await shop.card()
    for capture in (False, True):
        await refused(
            shop,
            invoice,
            shop.authorizing(invoice, card.id, capture=capture),
            ConflictError,
            ErrorCode.INVOICE_NOT_PAYABLE,
        )


async def test_a_token_of_another_customer_is_not_usable(shop: Shop) -> None:
    async with shop.db.write() as tx:
        mine = await customers.create_customer(tx, shop.scope, CustomerFields(first_name="A"))
        theirs = await customers.create_customer(tx, shop.scope, CustomerFields(first_name="B"))
    card = await shop.card()
    token = tokens.new_token(
        shop.scope, customer_id=theirs.id, card_id=card.id, description=None, metadata={}
    )
    async with shop.db.write() as tx:
        await tokens.insert_token(tx, token)
    invoice = await shop.invoice(1000, customer_id=mine.id)
    error = await refused(
        shop,
        invoice,
        shop.authorizing(invoice, token.id),
        ValidationError,
        ErrorCode.TOKEN_NOT_USABLE,
    )
    assert error.field == "source"
    # Nor on an invoice without a customer, nor an unknown token.
    anonymous = await shop.invoice(1000)
    await refused(
        shop,
        anonymous,
        shop.authorizing(anonymous, token.id),
        ValidationError,
        ErrorCode.TOKEN_NOT_USABLE,
    )
    await refused(
        shop,
        invoice,
        shop.authorizing(invoice, "tok_unknown"),
        ValidationError,
        ErrorCode.TOKEN_NOT_USABLE,
    )
    # Its own customer's invoice it pays.
    own = await shop.invoice(1000, customer_id=theirs.id)
    await shop.authorize(own, token.id)
    state = await shop.state(own)
    assert state.transaction.status == "authorized"
    assert (state.transaction.token_id, state.transaction.card_id) == (token.id, card.id)


async def test_a_card_of_another_project_is_not_found(shop: Shop) -> None:
    stranger = await new_scope(shop.db)
    theirs = await add_card(shop.db, stranger, shop.gateway)
    invoice = await shop.invoice(1000)
    for source in (theirs.id, "card_unknown", "card_\x00", "src_x", ""):
        await refused(
            shop,
            invoice,
            shop.authorizing(invoice, source),
            NotFoundError,
            ErrorCode.CARD_NOT_FOUND,
        )


async def test_an_anonymized_card_is_not_usable(shop: Shop) -> None:
    card = await shop.card()
    async with shop.db.write() as tx:
        await cards.anonymize_card(tx, shop.scope, card.id)
    invoice = await shop.invoice(1000)
    await refused(
        shop,
        invoice,
        shop.authorizing(invoice, card.id),
        ValidationError,
        ErrorCode.TOKEN_NOT_USABLE,
    )


async def test_an_invoice_of_another_project_is_not_found(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    other = Shop(shop.db, shop.gateway, await new_scope(shop.db))
    card = await other.card()
    for step in (
        other.authorizing(invoice, card.id),
        other.capturing(invoice),
        other.voiding(invoice),
        other.incrementing(invoice, 1),
    ):
        with pytest.raises(NotFoundError) as info:
            await other.operate(step)
        assert info.value.code == ErrorCode.INVOICE_NOT_FOUND
    with pytest.raises(NotFoundError) as info:
        await other.operate(other.refunding(invoice, 1))
    assert info.value.code == ErrorCode.TRANSACTION_NOT_FOUND


async def test_a_pending_operation_blocks_every_other(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    attempt = await shop.begin(shop.capturing(invoice, 400))
    state = await shop.state(invoice)
    assert state.transaction.status == "pending"
    assert state.transaction.captured_amount == 0
    for step in (
        shop.capturing(invoice, 100),
        shop.capturing(invoice),
        shop.voiding(invoice),
        shop.incrementing(invoice, 100),
        shop.refunding(invoice, 1),
    ):
        await refused(shop, invoice, step, ConflictError, ErrorCode.TRANSACTION_BUSY)
    done = await shop.complete(attempt)
    assert done.operation.status == "succeeded"
    state = await shop.state(invoice)
    assert state.transaction.captured_amount == 400 and state.transaction.status == "completed"


async def test_an_invoice_past_its_expires_at_cannot_be_paid(shop: Shop) -> None:
    """``expires_at`` was stored and shown but never enforced: an expired invoice took a
    payment like any other (found by a probe of the hosted checkout)."""
    card = await shop.card()
    for expires_at, payable in ((now_us() - 1, False), (now_us() + 3_600_000_000, True)):
        async with shop.db.write() as tx:
            invoice = await billing.create_invoice(
                tx, shop.scope, msgspec.structs.replace(order(1000), expires_at=expires_at)
            )
        if payable:
            await shop.authorize(invoice, card.id, capture=True)
            assert (await shop.state(invoice)).transaction.status == "completed"
        else:
            error = await refused(
                shop,
                invoice,
                shop.authorizing(invoice, card.id, capture=True),
                ConflictError,
                ErrorCode.INVOICE_NOT_PAYABLE,
            )
            assert "expired at" in error.message


async def test_a_pending_3ds_authorization_blocks_another(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice)).operation
    good = await shop.card()
    await refused(
        shop, invoice, shop.authorizing(invoice, good.id), ConflictError, ErrorCode.TRANSACTION_BUSY
    )
    await shop.gateway.decide(
        op.operation_key, approve=False, amount=op.amount, kind=T.AUTHORIZATION
    )
    assert await recovery.resume(shop.db, shop.gateway, op.operation_key) is not None


async def test_a_second_begin_waits_for_the_first_to_commit_and_then_is_busy(
    shop: Shop,
) -> None:
    """The check-then-write of step 1 is guarded: a concurrent begin on the same invoice
    waits (PostgreSQL: the invoice's row lock; SQLite: the one writer) until the first has
    committed its pending operation, then sees it."""
    invoice = await shop.paid(1000, captured=False)
    written, release = asyncio.Event(), asyncio.Event()

    async def first() -> payments.Attempt:
        async with atomic(shop.db) as tx:
            attempt = await payments.begin_capture(tx, shop.scope, invoice.id, 600)
            written.set()
            await release.wait()  # still uncommitted
        return attempt

    async with asyncio.timeout(30):
        holder = asyncio.create_task(first())
        await written.wait()
        second = asyncio.create_task(shop.begin(shop.capturing(invoice, 600)))
        await asyncio.sleep(0.2)
        assert not second.done()
        release.set()
        attempt = await holder
        with pytest.raises(ConflictError) as info:
            await second
    assert info.value.code == ErrorCode.TRANSACTION_BUSY
    await shop.complete(attempt)
    state = await shop.state(invoice)
    assert state.transaction.captured_amount == 600 and len(state.of(T.CAPTURE)) == 1


async def _touched_by_another_writer(shop: Shop, invoice: Invoice) -> None:
    """A concurrent writer of the invoice (its payment, or its own columns) commits."""
    async with atomic(shop.db) as other:
        current = await invoices.get_invoice(other, shop.scope, invoice.id, lock=Lock.UPDATE)
        await invoices.touch(other, current)


async def test_a_first_step_that_read_a_stale_invoice_runs_again_under_the_lock(
    shop: Shop,
) -> None:
    """``transact``'s first try reads the invoice without its lock. A writer that commits
    between that try's reads and its write has bumped the version, so the guarded write fails
    and nothing of the try is written; the second try, under the lock, reads what that writer
    left and writes the operation once."""
    if shop.db.backend != "postgresql":
        pytest.skip("SQLite's one writer lets no other writer in between a step's read and write")
    invoice = await shop.paid(1000, captured=False)
    tries: list[bool] = []

    async def step(tx: Tx, optimistic: bool) -> payments.Attempt:
        tries.append(optimistic)
        attempt = await payments.begin_capture(
            tx, shop.scope, invoice.id, 600, optimistic=optimistic
        )
        if optimistic:  # its writes are not out yet (PostgreSQL sends them at commit)
            await _touched_by_another_writer(shop, invoice)
        return attempt

    attempt = await payments.transact(shop.db, step)
    assert tries == [True, False]
    await shop.complete(attempt)
    state = await shop.state(invoice)
    assert len(state.of(T.CAPTURE)) == 1 and state.transaction.captured_amount == 600
    assert await gateway_rows(shop.db, state.transaction.id) == len(state.operations)


async def test_a_last_step_whose_first_step_reading_went_stale_reads_again(shop: Shop) -> None:
    """Step 3 trusts what step 1 read only while the invoice's version is the one step 1
    left: a writer between the two makes its optimistic try fail, writing nothing, and the
    try under the lock finishes the operation from a fresh reading."""
    invoice = await shop.paid(1000, captured=False)
    attempt = await shop.begin(shop.capturing(invoice, 600))
    assert attempt.seen is not None
    left = attempt.seen.invoice.version
    await _touched_by_another_writer(shop, invoice)
    result = await payments.execute(shop.gateway, attempt)
    tries: list[bool] = []

    async def last(tx: Tx, optimistic: bool) -> payments.Attempt | payments.Done:
        tries.append(optimistic)
        return await payments.finish(tx, attempt, result, optimistic=optimistic)

    done = await payments.transact(shop.db, last)
    assert tries == [True, False]
    assert isinstance(done, payments.Done) and done.operation.status == "succeeded"
    state = await shop.state(invoice)
    assert len(state.of(T.CAPTURE)) == 1 and state.transaction.captured_amount == 600
    # The touch and step 3 made one version each; the failed try made none.
    assert state.invoice.version == left + 2


# --- races --------------------------------------------------------------------------------------


async def outcome(shop: Shop, step: Begin) -> payments.Done | SettleError:
    try:
        return await shop.operate(step)
    except SettleError as error:
        return error


Competitors = Callable[[Shop, Invoice], tuple[Begin, Begin]]
RACES: Final[dict[str, tuple[bool, Competitors]]] = {
    # name: (captured before the race, the two competitors)
    "two captures": (
        False,
        lambda shop, invoice: (shop.capturing(invoice, 600), shop.capturing(invoice, 600)),
    ),
    "two whole captures": (
        False,
        lambda shop, invoice: (shop.capturing(invoice), shop.capturing(invoice)),
    ),
    "two refunds": (
        True,
        lambda shop, invoice: (shop.refunding(invoice, 600), shop.refunding(invoice, 600)),
    ),
    "capture and void": (
        False,
        lambda shop, invoice: (shop.capturing(invoice), shop.voiding(invoice)),
    ),
}
RACE_LOSSES: Final = {
    ErrorCode.TRANSACTION_BUSY,
    ErrorCode.TRANSACTION_AMOUNT_TOO_HIGH,
    ErrorCode.TRANSACTION_ILLEGAL_OPERATION,
}


@pytest.mark.parametrize("race", sorted(RACES))
async def test_two_competing_operations_never_both_succeed(shop: Shop, race: str) -> None:
    captured, competitors = RACES[race]
    card = await shop.card()
    losses: dict[str, int] = {}
    for _ in range(ROUNDS):
        invoice = await shop.invoice(1000)
        await shop.authorize(invoice, card.id, capture=captured)
        first, second = competitors(shop, invoice)
        async with asyncio.timeout(30):
            results = await asyncio.gather(outcome(shop, first), outcome(shop, second))
        done = [r for r in results if isinstance(r, payments.Done)]
        errors = [r for r in results if isinstance(r, SettleError)]
        assert len(done) == 1 and len(errors) == 1, results
        assert done[0].operation.status == "succeeded"
        assert errors[0].code in RACE_LOSSES, errors[0].message
        losses[errors[0].code] = losses.get(errors[0].code, 0) + 1
        state = await shop.state(invoice)  # consistent, within bounds
        t = state.transaction
        assert not state.derived.pending
        if race == "two refunds":
            assert (t.captured_amount, t.refunded_amount) == (1000, 600)
            assert len(state.of(T.REFUND)) == 1
        elif race == "capture and void":
            assert t.captured_amount + t.voided_amount == 1000
            assert t.status in ("completed", "voided")
        else:
            assert t.captured_amount == (600 if race == "two captures" else 1000)
            assert len(state.of(T.CAPTURE)) == 1
        assert await gateway_rows(shop.db, t.id) == len(state.operations)
    assert sum(losses.values()) == ROUNDS


# --- recovery ---------------------------------------------------------------------------------


async def recover(shop: Shop, gateway: Gateway | None = None) -> int:
    return await recovery.recover(shop.db, gateway or shop.gateway, older_than_us=0)


class Counting:
    """The sandbox, noting what recovery asks of it."""

    name = "sandbox"

    def __init__(self, inner: SandboxGateway) -> None:
        self.inner = inner
        self.executed: list[OperationRequest] = []
        self.looked_up: list[str] = []

    async def vault(self, card: CardData) -> VaultedCard:
        return await self.inner.vault(card)

    async def execute(self, request: OperationRequest) -> OperationResult:
        self.executed.append(request)
        return await self.inner.execute(request)

    async def lookup(self, key: str) -> OperationResult | None:
        self.looked_up.append(key)
        return await self.inner.lookup(key)

    async def expire(self, request: OperationRequest) -> OperationResult:
        return await self.inner.expire(request)


@pytest.fixture
async def quiet(shop: Shop) -> None:
    """No operation of an earlier test left pending (recovery looks at the whole database)."""
    await recover(shop)


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("sale", [False, True])
async def test_recover_finishes_an_operation_whose_answer_was_lost(shop: Shop, sale: bool) -> None:
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id, capture=sale))
    result = await payments.execute(shop.gateway, attempt)
    assert result is not None and result.outcome is Outcome.SUCCEEDED
    # ... and Settle died before writing the answer.
    state = await shop.state(invoice)
    assert state.transaction.status == "pending" and state.invoice.state is InvoiceState.PENDING
    assert await gateway_rows(shop.db, state.transaction.id) == 1
    # A fresh pending operation is not taken by the default staleness.
    assert await recovery.recover(shop.db, shop.gateway) == 0
    assert await shop.state(invoice) == state

    counting = Counting(shop.gateway)
    assert await recover(shop, counting) == 1
    # The gateway was asked what became of the key, and not asked to authorize again.
    key = attempt.operation.operation_key
    assert key in counting.looked_up
    assert [r.type for r in counting.executed] == ([T.CAPTURE] if sale else [])
    state = await shop.state(invoice)
    t = state.transaction
    auth = state.of(T.AUTHORIZATION)
    assert len(auth) == 1 and auth[0].status == "succeeded"
    assert auth[0].gateway_reference == result.reference  # the gateway's recorded answer
    assert t.authorized_amount == 1000 and t.cvc_check == "passed"
    if sale:
        (capture,) = state.of(T.CAPTURE)
        assert capture.status == "succeeded"
        assert t.status == "completed" and t.captured_amount == 1000
        assert state.invoice.state is InvoiceState.SETTLED
    else:
        assert state.of(T.CAPTURE) == []
        assert t.status == "authorized" and state.invoice.state is InvoiceState.AUTHORIZED
    assert await gateway_rows(shop.db, t.id) == (2 if sale else 1)
    # Once is enough.
    assert await recover(shop) == 0
    assert await shop.state(invoice) == state


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("sale", [False, True])
async def test_recover_sends_an_operation_the_gateway_never_saw(shop: Shop, sale: bool) -> None:
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id, capture=sale))
    # Settle died before calling the gateway.
    assert await shop.gateway.lookup(attempt.operation.operation_key) is None
    assert await gateway_rows(shop.db, invoice.transaction_id) == 0
    counting = Counting(shop.gateway)
    assert await recover(shop, counting) == 1
    # Sent now, with the operation's own key.
    assert counting.executed[0].key == attempt.operation.operation_key
    assert [r.type for r in counting.executed] == [T.AUTHORIZATION] + [T.CAPTURE] * sale
    state = await shop.state(invoice)
    t = state.transaction
    assert t.status == ("completed" if sale else "authorized")
    assert (t.authorized_amount, t.captured_amount) == (1000, 1000 if sale else 0)
    assert len(state.of(T.AUTHORIZATION)) == 1 and len(state.of(T.CAPTURE)) == int(sale)
    assert await gateway_rows(shop.db, t.id) == (2 if sale else 1)
    assert await recover(shop) == 0


@pytest.mark.usefixtures("quiet")
async def test_recover_finishes_a_sales_capture_whose_answer_was_lost(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id, capture=True))
    capture = await shop.finish(attempt, await payments.execute(shop.gateway, attempt))
    assert isinstance(capture, payments.Attempt)
    assert await payments.execute(shop.gateway, capture) is not None
    # Died before writing the capture's answer.
    assert (await shop.state(invoice)).transaction.status == "pending"
    assert await recover(shop) == 1
    state = await shop.state(invoice)
    assert state.transaction.status == "completed" and state.transaction.captured_amount == 1000
    assert len(state.of(T.CAPTURE)) == 1
    assert await gateway_rows(shop.db, invoice.transaction_id) == 2


@pytest.mark.usefixtures("quiet")
async def test_recover_refund_whose_answer_was_lost(shop: Shop) -> None:
    invoice = await shop.paid(1000)
    attempt = await shop.begin(shop.refunding(invoice, 400))
    assert await payments.execute(shop.gateway, attempt) is not None
    assert await recover(shop) == 1
    state = await shop.state(invoice)
    assert state.transaction.status == "partially-refunded"
    assert state.transaction.refunded_amount == 400
    assert await gateway_rows(shop.db, invoice.transaction_id) == 3


@pytest.mark.usefixtures("quiet")
async def test_recover_leaves_a_3ds_challenge_to_the_payer(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice)).operation
    state = await shop.state(invoice)
    assert await recover(shop) == 0
    assert await shop.state(invoice) == state
    await shop.gateway.decide(
        op.operation_key, approve=True, amount=op.amount, kind=T.AUTHORIZATION
    )
    # Once the payer answered, recovery finishes it too (if the checkout page did not).
    assert await recover(shop) == 1
    assert (await shop.state(invoice)).transaction.status == "authorized"


@pytest.mark.usefixtures("quiet")
async def test_recover_gives_up_a_challenge_no_payer_answered_in_time(shop: Shop) -> None:
    """A 3-D Secure challenge older than ``challenge_us`` (10 minutes by default) that no payer
    answered is declined by the gateway and written so: a pending operation blocks every other
    on its transaction, and before this an abandoned challenge left its invoice unpayable by
    any card for good. The payer's late answer then changes nothing."""
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice, capture=True)).operation
    waiting = await shop.state(invoice)
    await recovery.recover(shop.db, shop.gateway, older_than_us=0)
    assert await shop.state(invoice) == waiting  # younger than the default 10 minutes
    assert await recovery.recover(shop.db, shop.gateway, older_than_us=0, challenge_us=0) >= 1
    state = await shop.state(invoice)
    t = state.transaction
    assert t.status == "failed" and t.error_code == "card.failed-three-d-s"
    assert t.error_message == "The payer did not complete 3-D Secure in time."
    assert t.three_d_s_status == "failed" and t.authorized_amount == 0
    assert state.invoice.state is InvoiceState.PENDING
    assert [o.status for o in state.operations] == ["failed"]
    await shop.gateway.decide(
        op.operation_key, approve=True, amount=op.amount, kind=T.AUTHORIZATION
    )
    assert await recovery.resume(shop.db, shop.gateway, op.operation_key) is None
    assert await shop.state(invoice) == state
    await shop.authorize(invoice, (await shop.card()).id)
    assert (await shop.state(invoice)).transaction.status == "authorized"


@pytest.mark.usefixtures("quiet")
async def test_a_payers_answer_recorded_before_the_expiry_stands(shop: Shop) -> None:
    """The payer approved, and the page died before writing it: the expiry finds the answer."""
    invoice = await shop.invoice(1000)
    op = (await challenged(shop, invoice)).operation
    await shop.gateway.decide(
        op.operation_key, approve=True, amount=op.amount, kind=T.AUTHORIZATION
    )
    assert await recovery.recover(shop.db, shop.gateway, older_than_us=0, challenge_us=0) >= 1
    assert (await shop.state(invoice)).transaction.status == "authorized"


class Unreachable:
    """A gateway that does not answer (timeouts): the outcome is unknown."""

    name = "sandbox"

    async def vault(self, card: CardData) -> VaultedCard:
        raise GatewayUnavailable("timeout")

    async def execute(self, request: OperationRequest) -> OperationResult:
        raise GatewayUnavailable("timeout")

    async def lookup(self, key: str) -> OperationResult | None:
        raise GatewayUnavailable("timeout")

    async def expire(self, request: OperationRequest) -> OperationResult:
        raise GatewayUnavailable("timeout")


@pytest.mark.usefixtures("quiet")
async def test_an_unreachable_gateway_leaves_the_operation_pending_until_recovery(
    shop: Shop,
) -> None:
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id))
    assert await payments.execute(Unreachable(), attempt) is None
    done = await shop.finish(attempt, None)
    assert isinstance(done, payments.Done) and done.operation.status == "pending"
    state = await shop.state(invoice)
    assert state.transaction.status == "pending"
    await refused(shop, invoice, shop.capturing(invoice), ConflictError, ErrorCode.TRANSACTION_BUSY)
    assert await recover(shop) == 1
    assert (await shop.state(invoice)).transaction.status == "authorized"
    assert await gateway_rows(shop.db, invoice.transaction_id) == 1


# --- finished exactly once, whoever finishes ----------------------------------------------------


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("sale", [False, True])
async def test_the_late_answer_of_a_slow_request_after_recovery_changes_nothing(
    shop: Shop, sale: bool
) -> None:
    """The request was slow, not dead: recovery finished its operation, then the request
    writes the gateway's answer too (and goes on, as Call.pay does)."""
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id, capture=sale))
    result = await payments.execute(shop.gateway, attempt)
    assert await recover(shop) == 1
    state = await shop.state(invoice)
    await shop.complete(await shop.finish(attempt, result))
    after = await shop.state(invoice)
    assert len(after.of(T.CAPTURE)) == len(state.of(T.CAPTURE)) == int(sale)
    assert after.transaction.captured_amount == (1000 if sale else 0)
    assert after.operations == state.operations
    assert await gateway_rows(shop.db, invoice.transaction_id) == (2 if sale else 1)


@pytest.mark.usefixtures("quiet")
async def test_the_late_answer_of_a_declined_authorization_after_recovery_changes_nothing(
    shop: Shop,
) -> None:
    """As above, for an answer that leaves the invoice's state as it was (a decline): the
    request's own ``finish`` must still see that recovery wrote the outcome, not trust what
    its first step read (recovery's write bumped the invoice's version all the same)."""
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card(DECLINE)).id))
    result = await payments.execute(shop.gateway, attempt)
    assert result is not None and result.outcome is Outcome.DECLINED
    assert await recover(shop) == 1
    state = await shop.state(invoice)
    events = await event_count(shop.db, invoice.transaction_id)
    done = await shop.finish(attempt, result)
    after = await shop.state(invoice)
    assert isinstance(done, payments.Done) and done.operation.status == "failed"
    assert after.transaction.status == "failed" and after.operations == state.operations
    assert await event_count(shop.db, invoice.transaction_id) == events  # none recorded twice


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("sale", [False, True])
async def test_two_recoveries_at_once_finish_an_operation_once(shop: Shop, sale: bool) -> None:
    """Every worker runs the recovery loop: two may find the same pending operation."""
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card()).id, capture=sale))
    await payments.execute(shop.gateway, attempt)
    async with asyncio.timeout(30):
        counts = await asyncio.gather(recover(shop), recover(shop))
    assert sum(counts) >= 1
    state = await shop.state(invoice)
    t = state.transaction
    assert len(state.of(T.AUTHORIZATION)) == 1
    assert len(state.of(T.CAPTURE)) == int(sale)
    assert t.captured_amount == (1000 if sale else 0) and t.authorized_amount == 1000
    assert await gateway_rows(shop.db, t.id) == (2 if sale else 1)


@pytest.mark.usefixtures("quiet")
async def test_the_chargeback_is_recorded_once_when_recovery_and_the_request_both_finish(
    shop: Shop,
) -> None:
    """The chargeback card's capture: its answer is written by recovery, then by the slow
    request it belonged to."""
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(
        shop.authorizing(invoice, (await shop.card(CHARGEBACK)).id, capture=True)
    )
    capture = await shop.finish(attempt, await payments.execute(shop.gateway, attempt))
    assert isinstance(capture, payments.Attempt)
    result = await payments.execute(shop.gateway, capture)
    assert result is not None and result.dispute_follows
    assert await recover(shop) == 1
    state = await shop.state(invoice)
    assert state.transaction.status == "disputed" and len(state.of(T.CHARGEBACK)) == 1
    await shop.finish(capture, result)  # the slow request's late write of the same answer
    after = await shop.state(invoice)
    assert after.transaction.status == "disputed"
    assert len(after.of(T.CHARGEBACK)) == 1
    assert after.operations == state.operations


class _CountedReads:
    """A Tx that counts the reads sent through it (one statement each)."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)

    async def fetch(self, sql: str, *args: object, **kw: object) -> object:
        self.reads.append(sql)
        return await self._tx.fetch(sql, *args, **kw)  # type: ignore[arg-type]

    async def fetchrow(self, sql: str, *args: object, **kw: object) -> object:
        self.reads.append(sql)
        return await self._tx.fetchrow(sql, *args, **kw)  # type: ignore[arg-type]

    async def fetchval(self, sql: str, *args: object, **kw: object) -> object:
        self.reads.append(sql)
        return await self._tx.fetchval(sql, *args, **kw)  # type: ignore[arg-type]


async def test_an_optimistic_first_step_reads_everything_in_one_statement(shop: Shop) -> None:
    """An authorization's first step reads the invoice with its lines, its transaction with
    the log and the card it names in one statement (one round trip, one snapshot on
    PostgreSQL), as does a capture's without the card; what they read is what the locked
    reading gives."""
    if not shop.optimistic:
        pytest.skip("under the lock the invoice's row is locked first, then the rest read")
    invoice = await shop.invoice(1000)
    card = await shop.card()
    reads: list[tuple[bool, int]] = []

    def counted(begin: Begin) -> Begin:
        async def step(tx: Tx, optimistic: bool) -> payments.Attempt:
            spy = _CountedReads(tx)
            attempt = await begin(spy, optimistic)  # type: ignore[arg-type]
            reads.append((optimistic, len(spy.reads)))
            return attempt

        return step

    done = await shop.operate(counted(shop.authorizing(invoice, card.id)))
    assert done.transaction.status == "authorized" and done.transaction.card_id == card.id
    done = await shop.operate(counted(shop.capturing(invoice, 400)))
    assert done.transaction.captured_amount == 400
    assert reads == [(True, 1), (True, 1)]
    async with shop.db.write() as tx:  # the locked reading locks the invoice's row
        locked = await payments._locked(tx, shop.scope, invoice.id)
        unlocked, found = await payments._unlocked(tx, shop.scope, invoice.id, card.id)
        assert found == await cards.get_card(tx, shop.scope, card.id)
    assert (unlocked.invoice, unlocked.transaction, unlocked.log) == (
        locked.invoice,
        locked.transaction,
        locked.log,
    )
    assert len(unlocked.log) == 2 and unlocked.invoice.lines


async def test_an_optimistic_read_finds_nothing_of_another_project(
    shop: Shop, domain_db: Database, gateway: SandboxGateway
) -> None:
    """The one-statement read is scoped like the reads it replaced: another project's (or
    mode's) invoice is not found, and another's card is not read (the step then refuses it)."""
    invoice = await shop.invoice(1000)
    card = await shop.card()
    for scope in (await new_scope(domain_db), other_mode(shop.scope)):
        other = Shop(domain_db, gateway, scope, optimistic=True)
        async with shop.db.read() as tx:
            with pytest.raises(NotFoundError):
                await payments._unlocked(tx, scope, invoice.id)
            _, found = await payments._unlocked(tx, shop.scope, invoice.id, "card_" + "0" * 32)
            assert found is None
        theirs = await other.invoice(1000)
        async with shop.db.read() as tx:
            _, found = await payments._unlocked(tx, scope, theirs.id, card.id)
            assert found is None
        with pytest.raises(NotFoundError):
            await other.authorize(theirs, card.id)
