"""``settle.billing.service`` on a bare transaction, on each backend: an invoice and its
``waiting`` transaction move together, and neither moves once the invoice is not open."""

from __future__ import annotations

import pytest

from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import Customer, CustomerFields
from settle.db.database import Database
from settle.errors import ConflictError, NotFoundError
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceInput, LineInput, Tax
from settle.listing import PageQuery
from settle.payments import service as payments
from settle.payments.models import Transaction
from settle.projects.models import Scope
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    execute,
    fetchval,
    new_scope,
    scope_fixture,
)


def order(
    customer_id: str | None = None, *, amount: int = 4999, currency: str = "EUR"
) -> InvoiceInput:
    return InvoiceInput(
        amount=amount,
        currency=currency,
        customer_id=customer_id,
        name="Amazing item",
        handle=None,
        tax=Tax(amount=amount // 5, rate="25"),
        lines=[LineInput(name="item", amount=amount)],
    )


async def new_customer(db: Database, scope: Scope) -> Customer:
    async with db.write() as tx:
        return await customers.create_customer(tx, scope, CustomerFields(first_name="Jane"))


async def create(db: Database, scope: Scope, data: InvoiceInput) -> Invoice:
    async with db.write() as tx:
        return await billing.create_invoice(tx, scope, data)


async def read_both(db: Database, scope: Scope, invoice: Invoice) -> tuple[Invoice, Transaction]:
    async with db.read() as tx:
        return (
            await invoices.get_invoice(tx, scope, invoice.id),
            await payments.get_transaction(tx, scope, invoice.transaction_id),
        )


async def transactions_of(db: Database, scope: Scope) -> int:
    return int(
        await fetchval(
            db,
            "SELECT count(*) FROM transactions WHERE project_id = $1 AND sandbox = $2",
            scope.project_id,
            scope.sandbox,
        )
    )


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "amount"), [("JPY", 500), ("EUR", 4999), ("KWD", 1005)])
async def test_create_invoice_makes_the_invoice_and_its_waiting_transaction(
    domain_db: Database, scope: Scope, currency: str, amount: int
) -> None:
    customer = await new_customer(domain_db, scope)
    invoice = await create(domain_db, scope, order(customer.id, amount=amount, currency=currency))
    stored, transaction = await read_both(domain_db, scope, invoice)

    assert stored == invoice
    assert invoice.state == "pending" and invoice.version == 1
    assert invoice.terms.customer_id == customer.id
    assert transaction.id == invoice.transaction_id and transaction.id.startswith("tr_")
    assert transaction.status == "waiting"
    assert transaction.invoice_id == invoice.id
    assert (transaction.amount, transaction.currency) == (amount, currency)
    assert transaction.customer_id == customer.id and transaction.name == "Amazing item"
    assert (transaction.project_id, transaction.sandbox) == (scope.project_id, scope.sandbox)
    assert transaction.created_at == invoice.created_at == transaction.updated_at
    assert (
        transaction.authorized_amount,
        transaction.captured_amount,
        transaction.refunded_amount,
        transaction.voided_amount,
    ) == (0, 0, 0, 0)


async def test_create_invoice_without_customer_makes_a_transaction_without_one(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, order())
    _, transaction = await read_both(domain_db, scope, invoice)
    assert transaction.customer_id is None and transaction.amount == 4999


async def test_create_invoice_refuses_unknown_references_and_writes_nothing(
    domain_db: Database, scope: Scope
) -> None:
    stranger = await new_scope(domain_db)
    theirs = await new_customer(domain_db, stranger)
    for data, code in (
        (order(theirs.id), "resource.customer.not-found"),
        (order("cust_unknown"), "resource.customer.not-found"),
        (order("cust_\x00"), "resource.customer.not-found"),
        (InvoiceInput(amount=1, currency="EUR", token_id="tok_x"), "resource.token.not-found"),
    ):
        with pytest.raises(NotFoundError) as info:
            await create(domain_db, scope, data)
        assert info.value.code == code
    async with domain_db.read() as tx:
        listed, _ = await invoices.list_invoices(tx, scope, PageQuery())
    assert listed == []
    assert await transactions_of(domain_db, scope) == 0


# --- changes move the transaction -----------------------------------------------------------


async def test_update_invoice_moves_the_transactions_amount(
    domain_db: Database, scope: Scope
) -> None:
    customer = await new_customer(domain_db, scope)
    invoice = await create(domain_db, scope, order(customer.id))
    async with domain_db.write() as tx:
        updated = await billing.update_invoice(
            tx, scope, invoice.id, InvoiceChanges(amount=2500, tax=Tax(amount=500, rate="25"))
        )
    assert updated.terms.amount == 2500 and updated.version == 2
    stored, transaction = await read_both(domain_db, scope, invoice)
    assert stored == updated
    assert (transaction.amount, transaction.currency) == (2500, "EUR")
    assert transaction.customer_id == customer.id and transaction.status == "waiting"
    assert transaction.updated_at == updated.updated_at


async def test_update_invoice_without_a_new_amount_keeps_the_transactions(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, order())
    async with domain_db.write() as tx:
        await billing.update_invoice(
            tx, scope, invoice.id, InvoiceChanges(lines=[LineInput(name="x", amount=1)])
        )
    _, transaction = await read_both(domain_db, scope, invoice)
    assert transaction.amount == 4999


async def test_assign_customer_moves_the_transactions_customer(
    domain_db: Database, scope: Scope
) -> None:
    first = await new_customer(domain_db, scope)
    second = await new_customer(domain_db, scope)
    invoice = await create(domain_db, scope, order(first.id))
    async with domain_db.write() as tx:
        updated = await billing.assign_customer(tx, scope, invoice.id, second.id)
    assert updated.terms.customer_id == second.id and updated.version == 2
    stored, transaction = await read_both(domain_db, scope, invoice)
    assert stored == updated
    assert transaction.customer_id == second.id and transaction.amount == 4999
    assert transaction.updated_at == updated.updated_at


async def test_assign_customer_refuses_a_customer_of_another_scope(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, order())
    before = await read_both(domain_db, scope, invoice)
    theirs = await new_customer(domain_db, await new_scope(domain_db))
    with pytest.raises(NotFoundError) as info:
        async with domain_db.write() as tx:
            await billing.assign_customer(tx, scope, invoice.id, theirs.id)
    assert info.value.code == "resource.customer.not-found"
    assert await read_both(domain_db, scope, invoice) == before


async def test_delete_invoice_removes_its_waiting_transaction(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, order())
    kept = await create(domain_db, scope, order())
    async with domain_db.write() as tx:
        await billing.delete_invoice(tx, scope, invoice.id)
    async with domain_db.read() as tx:
        with pytest.raises(NotFoundError):
            await invoices.get_invoice(tx, scope, invoice.id)
        with pytest.raises(NotFoundError):
            await payments.get_transaction(tx, scope, invoice.transaction_id)
        still = await payments.get_transaction(tx, scope, kept.transaction_id)
    assert still.invoice_id == kept.id
    assert await transactions_of(domain_db, scope) == 1


async def test_billing_operations_do_not_find_another_scopes_invoice(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, order())
    before = await read_both(domain_db, scope, invoice)
    stranger = await new_scope(domain_db)
    customer = await new_customer(domain_db, stranger)
    for attempt in ("update", "assign", "delete"):
        with pytest.raises(NotFoundError) as info:
            async with domain_db.write() as tx:
                if attempt == "update":
                    await billing.update_invoice(tx, stranger, invoice.id, InvoiceChanges(amount=1))
                elif attempt == "assign":
                    await billing.assign_customer(tx, stranger, invoice.id, customer.id)
                else:
                    await billing.delete_invoice(tx, stranger, invoice.id)
        assert info.value.code == "resource.invoice.not-found"
    assert await read_both(domain_db, scope, invoice) == before


# --- nothing moves once the invoice is not open ---------------------------------------------


@pytest.mark.parametrize("state", ["settled", "authorized", "cancelled", "failed"])
async def test_an_invoice_that_is_not_open_refuses_every_change(
    domain_db: Database, scope: Scope, state: str
) -> None:
    customer = await new_customer(domain_db, scope)
    invoice = await create(domain_db, scope, order())
    await execute(domain_db, "UPDATE invoices SET state = $2 WHERE id = $1", invoice.id, state)
    before = await read_both(domain_db, scope, invoice)
    for attempt, action in (("update", "changed"), ("assign", "reassigned"), ("delete", "deleted")):
        with pytest.raises(ConflictError) as info:
            async with domain_db.write() as tx:
                if attempt == "update":
                    await billing.update_invoice(tx, scope, invoice.id, InvoiceChanges(amount=1))
                elif attempt == "assign":
                    await billing.assign_customer(tx, scope, invoice.id, customer.id)
                else:
                    await billing.delete_invoice(tx, scope, invoice.id)
        assert info.value.code == "invoice.already-used"
        assert f"cannot be {action}" in info.value.message
    assert await read_both(domain_db, scope, invoice) == before
