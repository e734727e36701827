"""The events a payment records (``settle.events.payments``), through ``settle.billing.payments``
on each backend with the sandbox gateway: each step's transaction events, and the invoice
events of the state it moves the invoice to, in the step's own database transaction."""

from __future__ import annotations

import pytest

from settle.billing import payments
from settle.db.database import Database
from settle.events import service as events
from settle.events.types import EventType as E
from settle.invoices.models import Invoice, InvoiceState
from settle.listing import PageQuery
from settle.payments.models import Transaction
from settle.payments.sandbox import SandboxGateway
from settle.projects.models import Scope
from tests.billing.test_payments import CHARGEBACK, DECLINE, DECLINE_CAPTURE, THREE_DS, Shop
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    gateway_fixture,
    scope_fixture,
)
from tests.pgdb import EVENTS_WAIT


@pytest.fixture
def shop(domain_db: Database, gateway: SandboxGateway, scope: Scope) -> Shop:
    return Shop(domain_db, gateway, scope)


async def events_since(shop: Shop, invoice: Invoice) -> list[events.Event]:
    """The events of ``invoice`` (and its transaction), after its creation's."""
    found, _ = await events.list_events(
        shop.db, shop.scope, PageQuery(limit=100, order="asc"), settle_wait=EVENTS_WAIT
    )
    mine = [e for e in found if e.invoice_id == invoice.id]
    assert mine[0].type is E.INVOICE_CREATED
    return mine[1:]


def types(found: list[events.Event]) -> list[E]:
    return [e.type for e in found]


async def test_authorize_capture_refund(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    card = await shop.card()
    await shop.authorize(invoice, card.id)
    await shop.capture(invoice, 600)
    await shop.refund(invoice, 100)
    found = await events_since(shop, invoice)
    assert types(found) == [
        E.TRANSACTION_REQUESTED,
        E.TRANSACTION_AUTHORIZED,
        E.INVOICE_AUTHORIZED,
        E.TRANSACTION_CAPTURED,
        E.INVOICE_SETTLED,
        E.TRANSACTION_REFUNDED,
        E.INVOICE_REFUNDED,
    ]
    # Each carries its object as it was at that step.
    snapshots = [e.data for e in found]
    assert [s.status for s in snapshots if isinstance(s, Transaction)] == [
        "pending",
        "authorized",
        "completed",
        "partially-refunded",
    ]
    assert [s.state for s in snapshots if isinstance(s, Invoice)] == [
        InvoiceState.AUTHORIZED,
        InvoiceState.SETTLED,
        InvoiceState.SETTLED,
    ]
    # The invoice is whole in its events, although the payment steps read it without lines.
    assert all(len(s.lines) == 1 for s in snapshots if isinstance(s, Invoice))
    assert {e.transaction_id for e in found} == {invoice.transaction_id}


async def test_a_sale_on_the_chargeback_card(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    await shop.authorize(invoice, (await shop.card(CHARGEBACK)).id, capture=True)
    assert types(await events_since(shop, invoice)) == [
        E.TRANSACTION_REQUESTED,
        E.TRANSACTION_AUTHORIZED,
        E.INVOICE_AUTHORIZED,
        E.TRANSACTION_CAPTURED,
        E.TRANSACTION_DISPUTED,
        E.INVOICE_SETTLED,
    ]


async def test_void_cancels(shop: Shop) -> None:
    invoice = await shop.paid(1000, captured=False)
    await shop.operate(shop.voiding(invoice))
    assert types(await events_since(shop, invoice))[-2:] == [
        E.TRANSACTION_VOIDED,
        E.INVOICE_CANCELLED,
    ]


async def test_declines_fail_the_transaction_only(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    await shop.authorize(invoice, (await shop.card(DECLINE)).id)
    assert types(await events_since(shop, invoice)) == [
        E.TRANSACTION_REQUESTED,
        E.TRANSACTION_FAILED,
    ]
    other = await shop.invoice(1000)
    await shop.authorize(other, (await shop.card(DECLINE_CAPTURE)).id, capture=True)
    assert types(await events_since(shop, other)) == [
        E.TRANSACTION_REQUESTED,
        E.TRANSACTION_AUTHORIZED,
        E.INVOICE_AUTHORIZED,
        E.TRANSACTION_FAILED,
    ]


async def test_a_step_finished_twice_or_waiting_for_3ds_records_nothing_more(shop: Shop) -> None:
    invoice = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(invoice, (await shop.card(THREE_DS)).id))
    await shop.finish(attempt, await payments.execute(shop.gateway, attempt))
    assert types(await events_since(shop, invoice)) == [E.TRANSACTION_REQUESTED]

    other = await shop.invoice(1000)
    attempt = await shop.begin(shop.authorizing(other, (await shop.card()).id))
    result = await payments.execute(shop.gateway, attempt)
    await shop.finish(attempt, result)
    await shop.finish(attempt, result)  # recovery finishing it again changes nothing
    assert types(await events_since(shop, other)) == [
        E.TRANSACTION_REQUESTED,
        E.TRANSACTION_AUTHORIZED,
        E.INVOICE_AUTHORIZED,
    ]
