"""``settle.payments.service`` on a bare transaction, on each backend: transactions read back
whole, only in their own scope, and only a ``waiting`` one follows its invoice or goes away."""

from __future__ import annotations

import pytest

from settle.clock import now_us
from settle.db.database import Database
from settle.errors import NotFoundError
from settle.ids import new_id
from settle.payments import service as payments
from settle.payments.models import Transaction
from settle.projects.models import Scope
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    execute,
    new_scope,
    other_mode,
    scope_fixture,
)


def waiting(scope: Scope, *, amount: int = 1005, currency: str = "KWD") -> Transaction:
    return payments.new_waiting_transaction(
        scope,
        invoice_id=new_id("iv_"),
        customer_id=new_id("cust_"),
        name="Amazing item",
        amount=amount,
        currency=currency,
        now=now_us(),
    )


async def insert(
    db: Database, scope: Scope, *, amount: int = 1005, currency: str = "KWD"
) -> Transaction:
    transaction = waiting(scope, amount=amount, currency=currency)
    async with db.write() as tx:
        await payments.insert_transaction(tx, transaction)
    return transaction


async def get(db: Database, scope: Scope, transaction_id: str) -> Transaction:
    async with db.read(one_statement=True) as tx:
        return await payments.get_transaction(tx, scope, transaction_id)


async def set_status(db: Database, transaction: Transaction, status: str) -> Transaction:
    await execute(db, "UPDATE transactions SET status = $2 WHERE id = $1", transaction.id, status)
    return await get(db, Scope(transaction.project_id, transaction.sandbox), transaction.id)


def test_a_new_waiting_transaction_asks_for_the_whole_amount_and_holds_nothing() -> None:
    scope = Scope("proj_x", True)
    transaction = payments.new_waiting_transaction(
        scope,
        invoice_id="iv_1",
        customer_id=None,
        name=None,
        amount=500,
        currency="JPY",
        now=1_700_000_000_000_000,
    )
    assert transaction.id.startswith("tr_") and len(transaction.id) == 35
    assert (transaction.project_id, transaction.sandbox) == ("proj_x", True)
    assert (transaction.invoice_id, transaction.amount, transaction.currency) == (
        "iv_1",
        500,
        "JPY",
    )
    assert transaction.status == "waiting"
    assert transaction.created_at == transaction.updated_at == 1_700_000_000_000_000
    assert transaction.authorized_amount == transaction.captured_amount == 0
    assert transaction.refunded_amount == transaction.voided_amount == 0
    assert transaction.available_amount == 0 and transaction.metadata == {}
    assert transaction.error_code is None and transaction.error_message is None


@pytest.mark.parametrize(("currency", "amount"), [("JPY", 500), ("EUR", 499), ("KWD", 1005)])
async def test_an_inserted_transaction_reads_back_whole(
    domain_db: Database, scope: Scope, currency: str, amount: int
) -> None:
    transaction = await insert(domain_db, scope, amount=amount, currency=currency)
    assert await get(domain_db, scope, transaction.id) == transaction
    async with domain_db.write() as tx:  # and inside a write transaction, before commit
        other = waiting(scope)
        await payments.insert_transaction(tx, other)
        assert await payments.get_transaction(tx, scope, other.id) == other


async def test_another_scopes_transaction_is_not_found(domain_db: Database, scope: Scope) -> None:
    transaction = await insert(domain_db, scope)
    stranger = await new_scope(domain_db)
    for other in (stranger, other_mode(scope)):
        with pytest.raises(NotFoundError) as info:
            await get(domain_db, other, transaction.id)
        assert info.value.code == "resource.transaction.not-found"
    for ref in ("tr_unknown", "", "tr_\x00"):
        with pytest.raises(NotFoundError):
            await get(domain_db, scope, ref)


async def test_get_transactions_loads_only_the_scopes_own(
    domain_db: Database, scope: Scope
) -> None:
    mine = [await insert(domain_db, scope) for _ in range(3)]
    theirs = await insert(domain_db, await new_scope(domain_db))
    live_mode = await insert(domain_db, other_mode(scope))
    wanted = [theirs.id, mine[2].id, live_mode.id, "tr_\x00", "tr_unknown", mine[0].id, mine[0].id]
    async with domain_db.read(one_statement=True) as tx:
        found = await payments.get_transactions(tx, scope, iter(wanted))
    assert found == {t.id: t for t in (mine[0], mine[2])}
    async with domain_db.read(one_statement=True) as tx:
        assert await payments.get_transactions(tx, scope, []) == {}
    async with domain_db.read(one_statement=True) as tx:
        assert await payments.get_transactions(tx, other_mode(scope), wanted) == {
            live_mode.id: live_mode
        }


async def test_set_waiting_terms_moves_a_waiting_transaction(
    domain_db: Database, scope: Scope
) -> None:
    transaction = await insert(domain_db, scope)
    bystander = await insert(domain_db, scope)
    later = transaction.updated_at + 1_000_000
    async with domain_db.write() as tx:
        await payments.set_waiting_terms(
            tx, transaction.id, amount=1, customer_id="cust_other", now=later
        )
    moved = await get(domain_db, scope, transaction.id)
    assert (moved.amount, moved.customer_id, moved.updated_at) == (1, "cust_other", later)
    assert moved.currency == "KWD" and moved.created_at == transaction.created_at
    assert await get(domain_db, scope, bystander.id) == bystander

    async with domain_db.write() as tx:
        await payments.set_waiting_terms(tx, transaction.id, amount=2, customer_id=None, now=later)
    assert (await get(domain_db, scope, transaction.id)).customer_id is None


@pytest.mark.parametrize("status", ["pending", "authorized", "completed", "failed", "voided"])
async def test_set_waiting_terms_leaves_a_transaction_that_is_not_waiting(
    domain_db: Database, scope: Scope, status: str
) -> None:
    transaction = await set_status(domain_db, await insert(domain_db, scope), status)
    async with domain_db.write() as tx:
        await payments.set_waiting_terms(
            tx, transaction.id, amount=1, customer_id=None, now=now_us() + 1_000_000
        )
    assert await get(domain_db, scope, transaction.id) == transaction


async def test_delete_transaction_deletes_a_waiting_one(domain_db: Database, scope: Scope) -> None:
    transaction = await insert(domain_db, scope)
    bystander = await insert(domain_db, scope)
    async with domain_db.write() as tx:
        await payments.delete_transaction(tx, transaction.id)
    with pytest.raises(NotFoundError):
        await get(domain_db, scope, transaction.id)
    assert await get(domain_db, scope, bystander.id) == bystander


@pytest.mark.parametrize("status", ["pending", "authorized", "completed", "refunded"])
async def test_delete_transaction_keeps_one_that_is_not_waiting(
    domain_db: Database, scope: Scope, status: str
) -> None:
    transaction = await set_status(domain_db, await insert(domain_db, scope), status)
    async with domain_db.write() as tx:
        await payments.delete_transaction(tx, transaction.id)
    assert await get(domain_db, scope, transaction.id) == transaction
