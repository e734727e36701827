"""``settle.invoices.totals`` on each backend: a customer's live invoices counted and summed by
state, with what was refunded of their payments, scoped to one project and mode."""

from __future__ import annotations

from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import Database
from settle.invoices import service as invoices
from settle.invoices.models import InvoiceInput, InvoiceState
from settle.invoices.totals import customer_invoice_totals
from settle.projects.models import Scope
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    execute,
    new_scope,
    other_mode,
    scope_fixture,
)

S = InvoiceState


async def _customer(db: Database, scope: Scope) -> str:
    async with db.write() as tx:
        return (await customers.create_customer(tx, scope, CustomerFields())).id


async def _invoice(db: Database, scope: Scope, customer_id: str, amount: int) -> str:
    async with db.write() as tx:
        made = await billing.create_invoice(
            tx, scope, InvoiceInput(amount=amount, currency="EUR", customer_id=customer_id)
        )
    return made.id


async def test_counts_amounts_and_refunds_per_state(domain_db: Database, scope: Scope) -> None:
    one, two = await _customer(domain_db, scope), await _customer(domain_db, scope)
    await _invoice(domain_db, scope, one, 100)
    await _invoice(domain_db, scope, one, 250)
    paid = await _invoice(domain_db, scope, one, 1000)
    gone = await _invoice(domain_db, scope, one, 7)
    async with domain_db.write() as tx:
        invoice = await invoices.get_invoice(tx, scope, paid)
        await invoices.set_state(tx, invoice, S.SETTLED)
        await billing.delete_invoice(tx, scope, gone)  # deleted: not counted
    await execute(
        domain_db,
        "UPDATE transactions SET refunded_amount = 300 WHERE id = $1",
        invoice.transaction_id,
    )
    # Another mode's invoice of a customer of that mode: never counted here.
    other = other_mode(scope)
    await _invoice(domain_db, other, await _customer(domain_db, other), 5)
    async with domain_db.read() as tx:
        found = await customer_invoice_totals(tx, scope, [one, two])
    assert set(found) == {one, two}
    mine = found[one]
    assert (mine.of(S.PENDING).count, mine.of(S.PENDING).amount) == (2, 350)
    assert (mine.of(S.SETTLED).count, mine.of(S.SETTLED).amount) == (1, 1000)
    assert mine.of(S.FAILED).count == 0 and mine.refunded_amount == 300
    assert found[two].states == {} and found[two].refunded_amount == 0


async def test_sums_past_64_bits_are_exact(domain_db: Database, scope: Scope) -> None:
    """9,224 pending invoices of MAX_MINOR (999999999999999) for one customer add up to more
    than 2**63: SUM overflowed (SQLite: "integer overflow", answered 503 as if the database
    were down; PostgreSQL: "bigint out of range" in the CAST, a 500), and the customer could
    no longer be read. Two invoices of 2**62 stand for the 9,224 here (made in seconds)."""
    one = await _customer(domain_db, scope)
    paid = [await _invoice(domain_db, scope, one, 1) for _ in range(2)]
    for invoice_id in paid:
        await execute(domain_db, "UPDATE invoices SET amount = $2 WHERE id = $1", invoice_id, 2**62)
        await execute(
            domain_db,
            "UPDATE transactions SET refunded_amount = $2 WHERE invoice_id = $1",
            invoice_id,
            2**62 + 1,
        )
    async with domain_db.read() as tx:
        found = await customer_invoice_totals(tx, scope, [one])
    assert (found[one].of(S.PENDING).count, found[one].of(S.PENDING).amount) == (2, 2**63)
    assert found[one].refunded_amount == 2**63 + 2
