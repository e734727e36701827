"""``settle.billing.states`` on each backend, with the sandbox gateway keeping its tables in
the test database: each state change's rules (checked under the lock, refused without a
trace), a card settle in its three steps with a decline failing the invoice, a manual settle
as a capture no gateway saw, and concurrent changes of one invoice that never both succeed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from settle.billing import payments, recovery, states
from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import Database, Tx
from settle.errors import ConflictError, ErrorCode, NotFoundError, SettleError, ValidationError
from settle.events import service as events
from settle.events.types import EventType as E
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceInput, InvoiceState, LineInput
from settle.listing import PageQuery
from settle.payments import ledger, tokens
from settle.payments import service as transactions
from settle.payments.sandbox import SandboxGateway
from settle.projects.models import Scope
from settle.unique import atomic
from tests.domain_fixtures import (  # noqa: F401
    add_card,
    domain_db_fixture,
    gateway_fixture,
    new_scope,
    scope_fixture,
)
from tests.pgdb import EVENTS_WAIT

S = InvoiceState
GOOD = "4242424242424242"
DECLINE = "4000000000000002"
TRANSFER = states.ManualTransfer(method="cash", payment_date="2026-01-02", reference="R-1")


@dataclass
class Shop:
    db: Database
    gateway: SandboxGateway
    scope: Scope
    customer_id: str = ""

    async def start(self) -> Shop:
        async with self.db.write() as tx:
            made = await customers.create_customer(
                tx, self.scope, CustomerFields(first_name="Jane")
            )
        self.customer_id = made.id
        return self

    async def invoice(self, amount: int = 1000) -> Invoice:
        data = InvoiceInput(
            amount=amount,
            currency="EUR",
            customer_id=self.customer_id,
            lines=[LineInput(name="item", amount=amount)],
        )
        async with self.db.write() as tx:
            return await billing.create_invoice(tx, self.scope, data)

    async def token(self, number: str = GOOD) -> str:
        card = await add_card(self.db, self.scope, self.gateway, number)
        token = tokens.new_token(
            self.scope, customer_id=self.customer_id, card_id=card.id, description=None, metadata={}
        )
        async with self.db.write() as tx:
            await tokens.insert_token(tx, token)
        return token.id

    async def settle(self, invoice_id: str, token_id: str | None = None) -> Invoice:
        """The three steps, as Call.pay runs them, then the decline rule."""
        async with atomic(self.db) as tx:
            step: payments.Attempt | payments.Done = await states.begin_settle(
                tx,
                self.scope,
                invoice_id,
                token_id=token_id,
                auto=token_id is None,
                gateway_name=self.gateway.name,
            )
        while isinstance(step, payments.Attempt):
            result = await payments.execute(self.gateway, step)
            async with atomic(self.db) as tx:
                step = await payments.finish(tx, step, result)
                if isinstance(step, payments.Done):
                    return await states.settle_finished(tx, step)
        raise AssertionError("unreachable")

    async def change(
        self, fn: Callable[[Tx, Scope, str], Awaitable[Invoice]], invoice_id: str
    ) -> Invoice:
        async with atomic(self.db) as tx:
            return await fn(tx, self.scope, invoice_id)

    async def manual(self, invoice_id: str) -> Invoice:
        async with atomic(self.db) as tx:
            return await states.settle_manually(tx, self.scope, invoice_id, TRANSFER)

    async def state(self, invoice_id: str) -> tuple[InvoiceState, str, int]:
        async with self.db.read() as tx:
            invoice = await invoices.get_invoice(tx, self.scope, invoice_id)
            tr = await transactions.get_transaction(tx, self.scope, invoice.transaction_id)
        return invoice.state, tr.status, tr.captured_amount


@pytest.fixture
async def shop(domain_db: Database, gateway: SandboxGateway, scope: Scope) -> Shop:
    return await Shop(domain_db, gateway, scope).start()


async def _refused(shop: Shop, call: Awaitable[object], code: ErrorCode, invoice_id: str) -> None:
    before = await shop.state(invoice_id)
    with pytest.raises(SettleError) as raised:
        await call
    assert raised.value.code is code, raised.value
    assert await shop.state(invoice_id) == before


async def test_a_card_settle_captures_the_invoice(shop: Shop) -> None:
    token = await shop.token()
    invoice = await shop.invoice()
    settled = await shop.settle(invoice.id, token)
    assert settled.state is S.SETTLED
    assert [line.name for line in settled.lines] == ["item"]  # shown whole
    assert await shop.state(invoice.id) == (S.SETTLED, "completed", 1000)
    await _refused(
        shop, shop.settle(invoice.id, token), ErrorCode.INVOICE_ALREADY_SETTLED, invoice.id
    )


async def test_auto_takes_the_newest_chargeable_token_and_none_is_missing(shop: Shop) -> None:
    invoice = await shop.invoice()
    await _refused(shop, shop.settle(invoice.id), ErrorCode.PAYMENT_METHOD_MISSING, invoice.id)
    await shop.token(DECLINE)
    newest = await shop.token(GOOD)
    async with shop.db.read() as tx:
        found = await states.newest_chargeable_token(tx, shop.scope, shop.customer_id)
    assert found is not None and found.id == newest
    assert (await shop.settle(invoice.id)).state is S.SETTLED


async def test_a_token_of_another_customer_is_not_found(shop: Shop, domain_db: Database) -> None:
    token = await shop.token()
    other = await Shop(shop.db, shop.gateway, shop.scope).start()
    invoice = await other.invoice()
    with pytest.raises(NotFoundError):
        await other.settle(invoice.id, token)
    stranger = await Shop(domain_db, shop.gateway, await new_scope(domain_db)).start()
    with pytest.raises(NotFoundError):
        await stranger.settle(invoice.id, token)
    assert await other.state(invoice.id) == (S.PENDING, "waiting", 0)


async def test_a_declined_settle_fails_the_invoice_and_it_can_be_settled_again(
    shop: Shop,
) -> None:
    invoice = await shop.invoice()
    failed = await shop.settle(invoice.id, await shop.token(DECLINE))
    assert failed.state is S.FAILED
    assert await shop.state(invoice.id) == (S.FAILED, "failed", 0)
    settled = await shop.settle(invoice.id, await shop.token(GOOD))
    assert settled.state is S.SETTLED


async def test_a_manual_settle_is_a_capture_no_gateway_saw(shop: Shop) -> None:
    invoice = await shop.invoice()
    settled = await shop.manual(invoice.id)
    assert settled.state is S.SETTLED
    assert await shop.state(invoice.id) == (S.SETTLED, "completed", 1000)
    async with shop.db.read() as tx:
        (op,) = await transactions.operations_of(tx, invoice.transaction_id)
    assert (op.type, op.status, op.gateway_name) == ("capture", "succeeded", ledger.MANUAL)
    assert (op.card_id, op.token_id) == (None, None)
    assert states.manual_transfer_of(op.metadata) == TRANSFER
    await _refused(shop, shop.manual(invoice.id), ErrorCode.INVOICE_ALREADY_SETTLED, invoice.id)

    async def gateway_refund() -> None:
        async with atomic(shop.db) as tx:
            await payments.begin_refund(
                tx, shop.scope, invoice.transaction_id, 100, reason=None, information=None
            )

    # Money no gateway took is not given back through one (any dialect: checked under the
    # invoice's lock, where a refund is written).
    await _refused(shop, gateway_refund(), ErrorCode.TRANSACTION_ILLEGAL_OPERATION, invoice.id)


async def test_an_authorized_invoice_is_captured_not_settled_by_hand(shop: Shop) -> None:
    token = await shop.token()
    invoice = await shop.invoice()
    async with atomic(shop.db) as tx:
        step = await states.begin_settle(
            tx,
            shop.scope,
            invoice.id,
            token_id=token,
            auto=False,
            gateway_name=shop.gateway.name,
            capture=False,
        )
    done = await payments.run(shop.db, shop.gateway, step)
    assert done.invoice.state is S.AUTHORIZED
    await _refused(shop, shop.manual(invoice.id), ErrorCode.INVOICE_ALREADY_AUTHORIZED, invoice.id)
    await _refused(
        shop, shop.change(states.cancel, invoice.id), ErrorCode.INVOICE_ALREADY_USED, invoice.id
    )
    await _refused(
        shop, shop.change(states.fail, invoice.id), ErrorCode.INVOICE_WRONG_STATE, invoice.id
    )
    # Settling an authorized invoice captures it, without a payment method.
    assert (await shop.settle(invoice.id, None)).state is S.SETTLED


async def test_cancel_fail_reactivate(shop: Shop) -> None:
    invoice = await shop.invoice()
    assert (await shop.change(states.cancel, invoice.id)).state is S.CANCELLED
    await _refused(
        shop,
        shop.change(states.cancel, invoice.id),
        ErrorCode.INVOICE_ALREADY_CANCELLED,
        invoice.id,
    )
    await _refused(
        shop, shop.change(states.fail, invoice.id), ErrorCode.INVOICE_WRONG_STATE, invoice.id
    )
    await _refused(
        shop, shop.settle(invoice.id, await shop.token()), ErrorCode.INVOICE_WRONG_STATE, invoice.id
    )
    assert (await shop.change(states.reactivate, invoice.id)).state is S.PENDING
    await _refused(
        shop, shop.change(states.reactivate, invoice.id), ErrorCode.INVOICE_WRONG_STATE, invoice.id
    )
    assert (await shop.change(states.fail, invoice.id)).state is S.FAILED
    assert (await shop.change(states.reactivate, invoice.id)).state is S.PENDING
    settled = await shop.settle(invoice.id)
    assert settled.state is S.SETTLED
    for change in (states.cancel, states.fail, states.reactivate):
        with pytest.raises(ConflictError):
            await shop.change(change, invoice.id)
    assert await shop.state(invoice.id) == (S.SETTLED, "completed", 1000)


async def test_a_pending_operation_refuses_every_change(shop: Shop) -> None:
    invoice = await shop.invoice()
    token = await shop.token()
    async with atomic(shop.db) as tx:  # step 1 only: the gateway has not answered yet
        await states.begin_settle(
            tx, shop.scope, invoice.id, token_id=token, auto=False, gateway_name="sandbox"
        )
    for call in (
        shop.change(states.cancel, invoice.id),
        shop.change(states.fail, invoice.id),
        shop.manual(invoice.id),
        shop.settle(invoice.id, token),
    ):
        await _refused(shop, call, ErrorCode.TRANSACTION_BUSY, invoice.id)


async def test_unknown_invoices_and_missing_payment_methods(shop: Shop) -> None:
    with pytest.raises(NotFoundError):
        await shop.change(states.cancel, "iv_nope")
    invoice = await shop.invoice()
    async with atomic(shop.db) as tx:
        with pytest.raises(ValidationError) as raised:
            await states.begin_settle(
                tx,
                shop.scope,
                invoice.id,
                token_id=None,
                auto=False,
                gateway_name="sandbox",
                field="settle.payment_method",
            )
    assert raised.value.code is ErrorCode.PAYMENT_METHOD_MISSING
    assert raised.value.field == "settle.payment_method"


async def test_concurrent_settle_and_cancel_never_both_succeed(shop: Shop) -> None:
    token = await shop.token()

    async def attempt(work: Callable[[Tx], Awaitable[object]]) -> SettleError | None:
        try:
            async with atomic(shop.db) as tx:
                await work(tx)
        except SettleError as exc:
            return exc
        return None

    won = set()
    for _ in range(10):
        invoice = await shop.invoice()

        async def begin(tx: Tx, invoice_id: str = invoice.id) -> object:
            return await states.begin_settle(
                tx, shop.scope, invoice_id, token_id=token, auto=False, gateway_name="sandbox"
            )

        async def cancel_it(tx: Tx, invoice_id: str = invoice.id) -> object:
            return await states.cancel(tx, shop.scope, invoice_id)

        settle, cancel = await asyncio.gather(attempt(begin), attempt(cancel_it))
        assert (settle is None) != (cancel is None), (settle, cancel)
        async with shop.db.read() as tx:
            found = await invoices.get_invoice(tx, shop.scope, invoice.id)
            log = await transactions.operations_of(tx, invoice.transaction_id)
        if settle is None:  # the sale began: the cancel waited and found it in flight
            assert cancel is not None and cancel.code is ErrorCode.TRANSACTION_BUSY
            assert (found.state, [op.status for op in log]) == (S.PENDING, ["pending"])
            won.add("settle")
        else:  # cancelled first: the settle found it cancelled, and nothing was written
            assert settle.code is ErrorCode.INVOICE_WRONG_STATE
            assert (found.state, log) == (S.CANCELLED, [])
            won.add("cancel")
    assert won


async def test_each_move_records_its_invoice_event_in_its_transaction(shop: Shop) -> None:
    """Cancel, reactivate, fail and a manual settle each record their event with the invoice
    as it then was; a refused move records nothing."""
    invoice = await shop.invoice()
    await shop.change(states.cancel, invoice.id)
    await shop.change(states.reactivate, invoice.id)
    await shop.change(states.fail, invoice.id)
    with pytest.raises(ConflictError):
        await shop.change(states.fail, invoice.id)
    await shop.change(states.reactivate, invoice.id)
    await shop.manual(invoice.id)
    found, _ = await events.list_events(
        shop.db, shop.scope, PageQuery(limit=100, order="asc"), settle_wait=EVENTS_WAIT
    )
    mine = [
        (e.type, e.data.state if isinstance(e.data, Invoice) else None)
        for e in found
        if e.invoice_id == invoice.id
    ]
    assert mine == [
        (E.INVOICE_CREATED, S.PENDING),
        (E.INVOICE_CANCELLED, S.CANCELLED),
        (E.INVOICE_REACTIVATED, S.PENDING),
        (E.INVOICE_FAILED, S.FAILED),
        (E.INVOICE_REACTIVATED, S.PENDING),
        (E.TRANSACTION_CAPTURED, None),
        (E.INVOICE_SETTLED, S.SETTLED),
    ]


# --- recovery of a settle ---------------------------------------------------------------------


async def _settle_cut_short(shop: Shop, invoice_id: str, token_id: str) -> None:
    """A settle by card whose request died once the gateway had answered its first call."""
    async with atomic(shop.db) as tx:
        attempt = await states.begin_settle(
            tx,
            shop.scope,
            invoice_id,
            token_id=token_id,
            auto=False,
            gateway_name=shop.gateway.name,
        )
    assert await payments.execute(shop.gateway, attempt) is not None


@pytest.mark.parametrize(
    ("number", "ends"), [(DECLINE, (S.FAILED, "failed", 0)), (GOOD, (S.SETTLED, "completed", 1000))]
)
async def test_recovery_leaves_a_settle_where_its_request_would_have(
    shop: Shop, number: str, ends: tuple[InvoiceState, str, int]
) -> None:
    """A declined settle fails its invoice (a success settles it), with the failed event,
    whether its request answered or recovery finished it."""
    await recovery.recover(shop.db, shop.gateway, older_than_us=0)  # none left by others
    token = await shop.token(number)
    answered = await shop.invoice()
    await shop.settle(answered.id, token)
    cut = await shop.invoice()
    await _settle_cut_short(shop, cut.id, token)
    assert (await shop.state(cut.id))[0] is S.PENDING
    recovered = await recovery.recover(
        shop.db, shop.gateway, older_than_us=0, after=states.recovered
    )
    assert recovered >= 1
    assert await shop.state(cut.id) == await shop.state(answered.id) == ends
    found, _ = await events.list_events(
        shop.db, shop.scope, PageQuery(limit=100), settle_wait=EVENTS_WAIT
    )
    failed = {e.invoice_id for e in found if e.type == E.INVOICE_FAILED}
    assert (cut.id in failed) is (number == DECLINE) and (answered.id in failed) is (
        number == DECLINE
    )


async def test_recovery_leaves_a_processout_decline_payable(shop: Shop) -> None:
    """An authorization asked without the settle's mark (ProcessOut's) fails nothing."""
    await recovery.recover(shop.db, shop.gateway, older_than_us=0)
    token = await shop.token(DECLINE)
    invoice = await shop.invoice()
    async with atomic(shop.db) as tx:
        attempt = await payments.begin_capture(
            tx, shop.scope, invoice.id, None, source=token, gateway_name=shop.gateway.name
        )
    await payments.execute(shop.gateway, attempt)
    await recovery.recover(shop.db, shop.gateway, older_than_us=0, after=states.recovered)
    assert await shop.state(invoice.id) == (S.PENDING, "failed", 0)
