"""Every change of an invoice or a customer records its event in the change's own database
transaction (through the domain services both dialects call): a change rolled back leaves
neither the change nor its event."""

from __future__ import annotations

import pytest

from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import Database
from settle.errors import NotFoundError
from settle.events import service as events
from settle.events.types import EventType as E
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceInput
from settle.listing import PageQuery
from settle.projects.models import Scope
from tests.domain_fixtures import domain_db_fixture, other_mode, scope_fixture  # noqa: F401
from tests.pgdb import EVENTS_WAIT

ALL = PageQuery(limit=100, order="asc")


async def recorded(db: Database, scope: Scope) -> list[tuple[E, str]]:
    found, has_more = await events.list_events(db, scope, ALL, settle_wait=EVENTS_WAIT)
    assert not has_more
    return [(e.type, e.object_id) for e in found]


async def test_each_change_records_one_event(domain_db: Database, scope: Scope) -> None:
    async with domain_db.write() as tx:
        cu = await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
        iv = await billing.create_invoice(tx, scope, InvoiceInput(amount=100, currency="EUR"))
    async with domain_db.write() as tx:
        await billing.update_invoice(tx, scope, iv.id, InvoiceChanges(amount=200))
        await billing.assign_customer(tx, scope, iv.id, cu.id)
        await customers.update_customer(tx, scope, cu.id, CustomerFields(last_name="Doe"))
        # A change that changes nothing records nothing.
        await customers.update_customer(tx, scope, cu.id, CustomerFields())
    async with domain_db.write() as tx:
        await billing.delete_invoice(tx, scope, iv.id)
        await customers.delete_customer(tx, scope, cu.id)
    assert await recorded(domain_db, scope) == [
        (E.CUSTOMER_CREATED, cu.id),
        (E.INVOICE_CREATED, iv.id),
        (E.INVOICE_CHANGED, iv.id),
        (E.INVOICE_CHANGED, iv.id),
        (E.CUSTOMER_CHANGED, cu.id),
        (E.INVOICE_DELETED, iv.id),
        (E.CUSTOMER_DELETED, cu.id),
    ]
    page, _ = await events.list_events(domain_db, scope, ALL, settle_wait=EVENTS_WAIT)
    changed = [e.data for e in page if e.type is E.INVOICE_CHANGED]
    assert all(isinstance(d, Invoice) for d in changed)
    assert [d.terms.amount for d in changed if isinstance(d, Invoice)] == [200, 200]
    assert [d.terms.customer_id for d in changed if isinstance(d, Invoice)] == [None, cu.id]
    assert await recorded(domain_db, other_mode(scope)) == []


async def test_a_rolled_back_change_leaves_no_event(domain_db: Database, scope: Scope) -> None:
    async with domain_db.write() as tx:
        iv = await billing.create_invoice(tx, scope, InvoiceInput(amount=100, currency="EUR"))
    before = await recorded(domain_db, scope)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with domain_db.write() as tx:
            await billing.create_invoice(tx, scope, InvoiceInput(amount=1, currency="EUR"))
            await billing.update_invoice(tx, scope, iv.id, InvoiceChanges(amount=300))
            await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
            raise Crash
    assert await recorded(domain_db, scope) == before
    # A change refused by its own checks records nothing either.
    with pytest.raises(NotFoundError):
        async with domain_db.write() as tx:
            await billing.assign_customer(tx, scope, iv.id, "cust_missing")
    assert await recorded(domain_db, scope) == before


async def test_an_event_of_another_scope_is_not_found(domain_db: Database, scope: Scope) -> None:
    async with domain_db.write() as tx:
        await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
    (event,), _ = await events.list_events(domain_db, scope, ALL, settle_wait=EVENTS_WAIT)
    async with domain_db.read() as tx:
        assert (await events.get_event(tx, scope, event.id)).id == event.id
        with pytest.raises(NotFoundError):
            await events.get_event(tx, other_mode(scope), event.id)
        with pytest.raises(NotFoundError):
            await events.get_event(tx, scope, event.id, types=[E.INVOICE_CREATED])
