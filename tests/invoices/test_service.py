"""``settle.invoices.service`` on a bare transaction, on each backend: what reads give back,
scoping, pagination, the open-state guard, changes, soft deletes and the handle rule."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from settle.clock import now_us
from settle.customers import service as customers
from settle.customers.models import CustomerFields
from settle.db.database import Database, Lock, Tx, UniqueViolation
from settle.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from settle.ids import new_id
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceChanges, InvoiceInput, LineInput, Tax
from settle.listing import PageQuery
from settle.projects.models import Scope
from settle.unique import atomic
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    execute,
    fetchval,
    new_scope,
    other_mode,
    race,
    scope_fixture,
)

HANDLE_RULE = "ix_invoices_project_id_sandbox_handle"


def build(scope: Scope, data: InvoiceInput | None = None, *, handle: str | None = None) -> Invoice:
    if data is None:
        data = InvoiceInput(amount=1000, currency="EUR", handle=handle)
    return invoices.new_invoice(
        scope, data, invoice_id=new_id("iv_"), transaction_id=new_id("tr_"), now=now_us()
    )


async def create(
    db: Database, scope: Scope, data: InvoiceInput | None = None, *, handle: str | None = None
) -> Invoice:
    invoice = build(scope, data, handle=handle)
    async with db.write() as tx:
        await invoices.insert_invoice(tx, invoice)
    return invoice


async def get(
    db: Database, scope: Scope, ref: str, *, by: Literal["id", "handle"] = "id"
) -> Invoice:
    async with db.read(one_statement=True) as tx:
        return await invoices.get_invoice(tx, scope, ref, by=by)


async def page(db: Database, scope: Scope, **query: Any) -> tuple[list[str], bool]:
    async with db.read() as tx:
        found, has_more = await invoices.list_invoices(tx, scope, PageQuery(**query))
    return [i.id for i in found], has_more


def rich_input(handle: str | None = "order-1") -> InvoiceInput:
    """Every kind of value an invoice stores: text, booleans, money, times, JSON, 12 lines
    (more than 9, so an ordering of positions as text would show)."""
    lines = [
        LineInput(
            name=f"line {i}",
            amount=100 * i + 1,
            quantity=i + 1,
            # 1 %: the lines' VAT (3.22) stays within the amount (49.99), as it must.
            vat_rate="0.01" if i % 2 else None,
            amount_incl_vat=i % 3 != 0,
            discount_amount=i if i % 4 == 0 else None,
            type="digital",
            reference=f"ref-{i}",
            marketplace_merchant_is_business=bool(i % 2),
            marketplace_merchant_created_at=1_700_000_000_000_000 + i,
            metadata={"index": str(i)},
        )
        for i in range(12)
    ]
    return InvoiceInput(
        amount=4999,
        currency="EUR",
        handle=handle,
        name="Amazing item",
        order_id="000001",
        statement_descriptor="amazing item",
        require_backend_capture=True,
        shipping_amount=500,
        tax=Tax(amount=833, rate="20"),
        expires_at=1_800_000_000_000_000,
        metadata={"k": "v", "unicode": "ø"},
        attributes={"risk": {"score": "high", "is_legit": False}, "shipping": {"city": "Oslo"}},
        lines=lines,
    )


# --- insert, then read back -----------------------------------------------------------------


async def test_an_inserted_invoice_reads_back_whole_by_id_and_by_handle(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input("order-1"))
    assert [line.name for line in invoice.lines] == [f"line {i}" for i in range(12)]

    assert await get(domain_db, scope, invoice.id) == invoice
    assert await get(domain_db, scope, "order-1", by="handle") == invoice
    async with domain_db.write() as tx:  # the locking path reads the lines apart
        assert await invoices.get_invoice(tx, scope, invoice.id, lock=Lock.UPDATE) == invoice
        locked = await invoices.get_invoice(tx, scope, "order-1", by="handle", lock=Lock.UPDATE)
        assert locked == invoice


async def test_an_invoice_without_lines_tax_or_handle_reads_back_as_such(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, InvoiceInput(amount=0, currency="JPY"))
    got = await get(domain_db, scope, invoice.id)
    assert got == invoice
    assert got.lines == [] and got.terms.tax is None and got.terms.handle is None
    assert got.version == 1 and got.is_open


async def test_an_invoice_reads_back_in_its_own_transaction_before_commit(
    domain_db: Database, scope: Scope
) -> None:
    invoice = build(scope, rich_input())
    async with domain_db.write() as tx:
        await invoices.insert_invoice(tx, invoice)
        assert await invoices.get_invoice(tx, scope, invoice.id) == invoice


async def test_another_scope_or_an_impossible_id_is_not_found(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, handle="mine")
    stranger = await new_scope(domain_db)
    for other in (stranger, other_mode(scope)):
        with pytest.raises(NotFoundError) as info:
            await get(domain_db, other, invoice.id)
        assert info.value.code == "resource.invoice.not-found"
        with pytest.raises(NotFoundError):
            await get(domain_db, other, "mine", by="handle")
        async with domain_db.write() as tx:
            with pytest.raises(NotFoundError):
                await invoices.get_invoice(tx, other, invoice.id, lock=Lock.UPDATE)
    for ref in ("iv_unknown", "", "iv_\x00"):
        with pytest.raises(NotFoundError):
            await get(domain_db, scope, ref)


# --- batch load -----------------------------------------------------------------------------


async def test_get_invoices_loads_only_the_scopes_own_live_invoices_with_their_lines(
    domain_db: Database, scope: Scope
) -> None:
    mine = [await create(domain_db, scope, rich_input(handle=None)) for _ in range(2)]
    bare = await create(domain_db, scope)
    gone = await create(domain_db, scope)
    async with domain_db.write() as tx:
        await invoices.mark_deleted(tx, gone)
    theirs = await create(domain_db, await new_scope(domain_db))
    live_mode = await create(domain_db, other_mode(scope))

    wanted = [
        bare.id,
        theirs.id,
        mine[1].id,
        live_mode.id,
        gone.id,
        "iv_\x00",
        "iv_unknown",
        mine[0].id,
    ]
    async with domain_db.read(one_statement=True) as tx:
        found = await invoices.get_invoices(tx, scope, wanted)
    assert found == {iv.id: iv for iv in (*mine, bare)}
    async with domain_db.read(one_statement=True) as tx:
        assert await invoices.get_invoices(tx, scope, []) == {}
    async with domain_db.read(one_statement=True) as tx:
        assert await invoices.get_invoices(tx, other_mode(scope), wanted) == {
            live_mode.id: live_mode
        }


# --- listing --------------------------------------------------------------------------------


async def test_list_invoices_pages_both_ways_in_both_orders(
    domain_db: Database, scope: Scope
) -> None:
    ids = [(await create(domain_db, scope)).id for _ in range(5)]  # oldest first
    i1, i2, i3, i4, i5 = ids
    await create(domain_db, await new_scope(domain_db))  # never listed here
    await create(domain_db, other_mode(scope))

    assert await page(domain_db, scope) == ([i5, i4, i3, i2, i1], False)
    assert await page(domain_db, scope, order="asc") == (ids, False)
    assert await page(domain_db, scope, limit=5) == ([i5, i4, i3, i2, i1], False)
    assert await page(domain_db, scope, limit=4) == ([i5, i4, i3, i2], True)

    assert await page(domain_db, scope, limit=2) == ([i5, i4], True)
    assert await page(domain_db, scope, limit=2, start_after=i4) == ([i3, i2], True)
    assert await page(domain_db, scope, limit=2, start_after=i2) == ([i1], False)
    assert await page(domain_db, scope, limit=2, start_after=i3) == ([i2, i1], False)
    assert await page(domain_db, scope, limit=2, end_before=i1) == ([i3, i2], True)
    assert await page(domain_db, scope, limit=2, end_before=i3) == ([i5, i4], False)

    assert await page(domain_db, scope, limit=2, order="asc") == ([i1, i2], True)
    assert await page(domain_db, scope, limit=2, order="asc", start_after=i2) == ([i3, i4], True)
    assert await page(domain_db, scope, limit=2, order="asc", start_after=i3) == ([i4, i5], False)
    assert await page(domain_db, scope, limit=2, order="asc", end_before=i5) == ([i3, i4], True)
    assert await page(domain_db, scope, limit=2, order="asc", end_before=i3) == ([i1, i2], False)


async def test_list_invoices_returns_whole_invoices_with_their_lines(
    domain_db: Database, scope: Scope
) -> None:
    made = [await create(domain_db, scope, rich_input(handle=f"h{i}")) for i in range(3)]
    made.append(await create(domain_db, scope))
    async with domain_db.read() as tx:
        found, has_more = await invoices.list_invoices(tx, scope, PageQuery(order="asc"))
    assert found == made and not has_more


async def test_a_cursor_naming_a_deleted_invoice_keeps_its_place(
    domain_db: Database, scope: Scope
) -> None:
    made = [await create(domain_db, scope) for _ in range(5)]
    i1, i2, i3, i4, i5 = (iv.id for iv in made)
    async with domain_db.write() as tx:
        await invoices.mark_deleted(tx, made[2])

    assert await page(domain_db, scope) == ([i5, i4, i2, i1], False)
    assert await page(domain_db, scope, limit=2, start_after=i3) == ([i2, i1], False)
    assert await page(domain_db, scope, limit=1, start_after=i3) == ([i2], True)
    assert await page(domain_db, scope, limit=2, end_before=i3) == ([i5, i4], False)
    assert await page(domain_db, scope, order="asc", start_after=i3) == ([i4, i5], False)
    assert await page(domain_db, scope, order="asc", end_before=i3) == ([i1, i2], False)
    # A deleted invoice inside a page is skipped, not counted against the limit.
    assert await page(domain_db, scope, limit=2, start_after=i4) == ([i2, i1], False)


async def test_a_cursor_of_another_scope_or_unknown_is_refused(
    domain_db: Database, scope: Scope
) -> None:
    theirs = await create(domain_db, await new_scope(domain_db))
    await create(domain_db, scope)
    for cursor in (theirs.id, "iv_unknown", "iv_\x00"):
        for field in ("start_after", "end_before"):
            with pytest.raises(ValidationError) as info:
                await page(domain_db, scope, **{field: cursor})
            assert info.value.code == "request.validation.invalid-cursor"
            assert info.value.field == field


async def test_list_invoice_versions_pages_like_list_invoices(
    domain_db: Database, scope: Scope
) -> None:
    made = [await create(domain_db, scope) for _ in range(3)]
    async with domain_db.write() as tx:
        locked = await invoices.lock_unpaid(tx, scope, made[1].id, "changed")
        changed = await invoices.apply_changes(tx, locked, InvoiceChanges(amount=1))
    assert changed.version == 2

    async with domain_db.read(one_statement=True) as tx:
        heads, has_more = await invoices.list_invoice_versions(tx, scope, PageQuery(limit=2))
    assert (heads, has_more) == ([(made[2].id, 1), (made[1].id, 2)], True)
    async with domain_db.read(one_statement=True) as tx:
        query = PageQuery(limit=2, start_after=made[1].id)
        heads, has_more = await invoices.list_invoice_versions(tx, scope, query)
    assert (heads, has_more) == ([(made[0].id, 1)], False)


# --- the open-state guard, changes ----------------------------------------------------------


@pytest.mark.parametrize("state", ["settled", "authorized", "cancelled", "failed"])
async def test_lock_unpaid_refuses_an_invoice_that_is_not_open(
    domain_db: Database, scope: Scope, state: str
) -> None:
    invoice = await create(domain_db, scope)
    await execute(domain_db, "UPDATE invoices SET state = $2 WHERE id = $1", invoice.id, state)
    with pytest.raises(ConflictError) as info:
        async with domain_db.write() as tx:
            await invoices.lock_unpaid(tx, scope, invoice.id, "changed")
    assert info.value.code == "invoice.already-used"
    assert "cannot be changed" in info.value.message and state in info.value.message
    assert (await get(domain_db, scope, invoice.id)).state == state


@pytest.mark.parametrize("state", ["created", "pending"])
async def test_lock_unpaid_returns_an_open_invoice(
    domain_db: Database, scope: Scope, state: str
) -> None:
    invoice = await create(domain_db, scope, rich_input())
    await execute(domain_db, "UPDATE invoices SET state = $2 WHERE id = $1", invoice.id, state)
    async with domain_db.write() as tx:
        locked = await invoices.lock_unpaid(tx, scope, invoice.id, "changed")
    assert locked.state == state
    assert locked.lines == invoice.lines and locked.terms == invoice.terms


async def test_lock_unpaid_does_not_find_another_scopes_invoice(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope)
    stranger = await new_scope(domain_db)
    with pytest.raises(NotFoundError):
        async with domain_db.write() as tx:
            await invoices.lock_unpaid(tx, stranger, invoice.id, "changed")


async def test_apply_changes_bumps_the_version_and_replaces_the_lines(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input())
    new_lines = [LineInput(name="a", amount=700, quantity=3), LineInput(name="b", amount=1)]
    changes = InvoiceChanges(
        amount=2101,
        tax=Tax(amount=100, rate="5"),
        lines=new_lines,
        shipping={"city": "Bergen", "method": "post"},
        shipping_amount=0,
    )
    async with domain_db.write() as tx:
        locked = await invoices.lock_unpaid(tx, scope, invoice.id, "changed")
        updated = await invoices.apply_changes(tx, locked, changes)

    assert updated.version == invoice.version + 1
    assert updated.updated_at >= invoice.updated_at and updated.created_at == invoice.created_at
    assert updated.terms.amount == 2101 and updated.terms.tax == Tax(amount=100, rate="5")
    assert updated.terms.shipping_amount == 0
    assert updated.terms.attributes == {
        "risk": {"score": "high", "is_legit": False},
        "shipping": {"city": "Bergen", "method": "post"},
    }
    assert [(li.name, li.amount, li.quantity) for li in updated.lines] == [
        ("a", 700, 3),
        ("b", 1, 1),
    ]
    assert not {li.id for li in updated.lines} & {li.id for li in invoice.lines}
    # What was not named stays.
    assert updated.terms.name == invoice.terms.name and updated.terms.handle == "order-1"
    assert await get(domain_db, scope, invoice.id) == updated
    stored = await fetchval(domain_db, "SELECT lines FROM invoices WHERE id = $1", invoice.id)
    # In the invoice's row, in order, the ids the invoice shows (migration 0017).
    assert [line["id"] for line in json.loads(stored)] == [li.id for li in updated.lines]


async def test_apply_changes_without_lines_keeps_them_and_empty_lines_remove_them(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input())
    async with domain_db.write() as tx:
        kept = await invoices.apply_changes(tx, invoice, InvoiceChanges(amount=5000))
    assert kept.lines == invoice.lines and kept.version == 2
    assert await get(domain_db, scope, invoice.id) == kept

    async with domain_db.write() as tx:
        emptied = await invoices.apply_changes(tx, kept, InvoiceChanges(lines=[]))
    assert emptied.lines == [] and emptied.version == 3 and emptied.terms.amount == 5000
    assert await get(domain_db, scope, invoice.id) == emptied


async def test_apply_changes_refuses_a_tax_larger_than_the_resulting_amount(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input())  # amount 4999, tax 833
    for changes, field in (
        (InvoiceChanges(amount=832), "amount"),
        (InvoiceChanges(tax=Tax(amount=5000)), "tax.amount"),
        (InvoiceChanges(amount=100, tax=Tax(amount=101)), "tax.amount"),
        # Within the tax, not within the lines' VAT (322): shown with a negative ex-VAT.
        (InvoiceChanges(amount=321, tax=Tax(amount=0)), "amount"),
    ):
        with pytest.raises(ValidationError) as info:
            async with domain_db.write() as tx:
                locked = await invoices.lock_unpaid(tx, scope, invoice.id, "changed")
                await invoices.apply_changes(tx, locked, changes)
        assert info.value.code == "request.validation.tax-exceeds-amount"
        assert info.value.field == field
    assert await get(domain_db, scope, invoice.id) == invoice
    async with domain_db.write() as tx:  # the pair counts: both lower together is fine
        # (the tax its lines' VAT: they carry rates, so no other is taken, check_tax_of_lines)
        changed = await invoices.apply_changes(
            tx, invoice, InvoiceChanges(amount=400, tax=Tax(amount=322))
        )
    assert await get(domain_db, scope, invoice.id) == changed


async def test_set_customer_points_the_invoice_at_a_customer_of_its_scope(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input())
    async with domain_db.write() as tx:
        customer = await customers.create_customer(tx, scope, CustomerFields(first_name="Jane"))
    async with domain_db.write() as tx:
        locked = await invoices.lock_unpaid(tx, scope, invoice.id, "reassigned")
        updated = await invoices.set_customer(tx, scope, locked, customer.id)
    assert updated.terms.customer_id == customer.id and updated.version == 2
    assert await get(domain_db, scope, invoice.id) == updated


async def test_set_customer_refuses_a_customer_of_another_scope_or_deleted(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope)
    stranger = await new_scope(domain_db)
    async with domain_db.write() as tx:
        theirs = await customers.create_customer(tx, stranger, CustomerFields())
        gone = await customers.create_customer(tx, scope, CustomerFields())
        await customers.delete_customer(tx, scope, gone.id)
    for customer_id in (theirs.id, gone.id, "cust_unknown"):
        with pytest.raises(NotFoundError) as info:
            async with domain_db.write() as tx:
                locked = await invoices.lock_unpaid(tx, scope, invoice.id, "reassigned")
                await invoices.set_customer(tx, scope, locked, customer_id)
        assert info.value.code == "resource.customer.not-found"
    assert await get(domain_db, scope, invoice.id) == invoice


# --- soft delete ----------------------------------------------------------------------------


async def test_mark_deleted_hides_the_invoice_but_keeps_its_row(
    domain_db: Database, scope: Scope
) -> None:
    invoice = await create(domain_db, scope, rich_input("to-delete"))
    other = await create(domain_db, scope)
    async with domain_db.write() as tx:
        locked = await invoices.lock_unpaid(tx, scope, invoice.id, "deleted")
        await invoices.mark_deleted(tx, locked)

    with pytest.raises(NotFoundError):
        await get(domain_db, scope, invoice.id)
    with pytest.raises(NotFoundError):
        await get(domain_db, scope, "to-delete", by="handle")
    with pytest.raises(NotFoundError):
        async with domain_db.write() as tx:
            await invoices.lock_unpaid(tx, scope, invoice.id, "deleted")
    async with domain_db.read() as tx:
        assert await invoices.get_invoices(tx, scope, [invoice.id]) == {}
        listed, _ = await invoices.list_invoices(tx, scope, PageQuery())
        heads, _ = await invoices.list_invoice_versions(tx, scope, PageQuery())
    assert [iv.id for iv in listed] == [other.id]
    assert heads == [(other.id, 1)]

    async with domain_db.read() as tx:
        row = await tx.fetchrow(
            "SELECT deleted_at, version FROM invoices WHERE id = $1", invoice.id
        )
        lines = await tx.fetchval("SELECT lines FROM invoices WHERE id = $1", invoice.id)
    assert row is not None and row["deleted_at"] is not None and row["version"] == 2
    assert json.loads(lines) == []


# --- the handle rule ------------------------------------------------------------------------


async def test_a_taken_handle_rejects_the_whole_transaction_through_atomic(
    domain_db: Database, scope: Scope
) -> None:
    first = await create(domain_db, scope, handle="order-7")
    bystander = build(scope)
    with pytest.raises(DuplicateError) as info:
        async with atomic(domain_db) as tx:
            await invoices.insert_invoice(tx, bystander)
            await invoices.insert_invoice(tx, build(scope, handle="order-7"))
    assert info.value.code == "invoice.duplicate-handle"
    assert info.value.field == "handle"
    assert await page(domain_db, scope) == ([first.id], False)
    assert (await get(domain_db, scope, "order-7", by="handle")).id == first.id


async def test_a_taken_handle_without_atomic_is_the_storage_violation(
    domain_db: Database, scope: Scope
) -> None:
    await create(domain_db, scope, handle="order-8")
    with pytest.raises(UniqueViolation) as info:
        async with domain_db.write() as tx:
            await invoices.insert_invoice(tx, build(scope, handle="order-8"))
    assert info.value.constraint == HANDLE_RULE


async def test_a_handle_is_unique_per_project_and_mode_only(
    domain_db: Database, scope: Scope
) -> None:
    stranger = await new_scope(domain_db)
    made = []
    for where in (scope, stranger, other_mode(scope)):
        async with atomic(domain_db) as tx:
            invoice = build(where, handle="same")
            await invoices.insert_invoice(tx, invoice)
        made.append(invoice)
    for where, invoice in zip((scope, stranger, other_mode(scope)), made, strict=True):
        assert (await get(domain_db, where, "same", by="handle")).id == invoice.id
    # Invoices without a handle never collide.
    for _ in range(2):
        async with atomic(domain_db) as tx:
            await invoices.insert_invoice(tx, build(scope))


async def test_two_concurrent_inserts_of_one_handle_make_one_invoice_and_one_duplicate(
    domain_db: Database, scope: Scope
) -> None:
    for round_ in range(6):
        handle = f"raced-{round_}"
        made: dict[str, Invoice] = {}

        async def insert(tx: Tx, handle: str = handle, made: dict[str, Invoice] = made) -> None:
            invoice = build(scope, handle=handle)
            made[invoice.id] = invoice
            await invoices.insert_invoice(tx, invoice)

        outcomes = await race(domain_db, insert)
        errors = [o for o in outcomes if o is not None]
        assert len(errors) == 1, outcomes
        assert isinstance(errors[0], DuplicateError), repr(errors[0])
        assert errors[0].code == "invoice.duplicate-handle"
        winner = await get(domain_db, scope, handle, by="handle")
        assert winner == made[winner.id]
        count = await fetchval(
            domain_db,
            "SELECT count(*) FROM invoices WHERE project_id = $1 AND handle = $2",
            scope.project_id,
            handle,
        )
        assert count == 1
