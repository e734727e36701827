"""``settle.customers.service`` on a bare transaction, on each backend: create and read back,
scoping, listing, updates (and the balance's currency), soft deletes, the handle rule."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest

from settle.customers import service as customers
from settle.customers.models import Customer, CustomerFields, Phone
from settle.db.database import Database, Tx
from settle.errors import DuplicateError, NotFoundError, ValidationError
from settle.listing import PageQuery
from settle.payments import tokens
from settle.projects.models import Scope
from settle.unique import atomic
from tests.domain_fixtures import (  # noqa: F401
    domain_db_fixture,
    fetchval,
    new_scope,
    other_mode,
    race,
    scope_fixture,
)


def rich_fields(handle: str | None = "cust-1") -> CustomerFields:
    """A value for every field (but the token, which no customer can have yet)."""
    return CustomerFields(
        handle=handle,
        email="jane@example.com",
        first_name="Jane",
        last_name="Doe",
        company_name="Doe ApS",
        address1="Vesterbrogade 1",
        address2="2. th.",
        city="København",
        state="Hovedstaden",
        zip="1620",
        country_code="dk",
        ip_address="2001:DB8::0001",
        phone_number="+4512345678",
        phone=Phone(number="12345678", dialing_code="+45"),
        legal_document="0101901234",
        date_of_birth="1990-01-01",
        is_business=True,
        sex="female",
        reference_id="ref-1",
        registered_at=1_700_000_000_123_456,
        balance=-1234,
        currency="eur",
        metadata={"k": "v", "unicode": "ø"},
    )


async def create(db: Database, scope: Scope, fields: CustomerFields | None = None) -> Customer:
    async with db.write() as tx:
        return await customers.create_customer(tx, scope, fields or CustomerFields())


async def get(
    db: Database, scope: Scope, ref: str, *, by: Literal["id", "handle"] = "id"
) -> Customer:
    async with db.read(one_statement=True) as tx:
        return await customers.get_customer(tx, scope, ref, by=by)


async def exists(db: Database, scope: Scope, customer_id: str) -> bool:
    async with db.read(one_statement=True) as tx:
        return await customers.customer_exists(tx, scope, customer_id)


async def page(db: Database, scope: Scope, **query: Any) -> tuple[list[str], bool]:
    async with db.read(one_statement=True) as tx:
        found, has_more = await customers.list_customers(tx, scope, PageQuery(**query))
    return [c.id for c in found], has_more


async def update(db: Database, scope: Scope, customer_id: str, **fields: Any) -> Customer:
    async with db.write() as tx:
        return await customers.update_customer(tx, scope, customer_id, CustomerFields(**fields))


# --- create, read back ----------------------------------------------------------------------


async def test_a_created_customer_reads_back_whole_by_id_and_by_handle(
    domain_db: Database, scope: Scope
) -> None:
    customer = await create(domain_db, scope, rich_fields("cust-1"))
    assert customer.id.startswith("cust_")
    assert (customer.project_id, customer.sandbox) == (scope.project_id, scope.sandbox)
    assert customer.created_at == customer.updated_at
    # Normalised on the way in.
    assert (customer.country_code, customer.currency, customer.ip_address) == (
        "DK",
        "EUR",
        "2001:db8::1",
    )

    assert await get(domain_db, scope, customer.id) == customer
    assert await get(domain_db, scope, "cust-1", by="handle") == customer
    assert await exists(domain_db, scope, customer.id)


async def test_a_customer_without_fields_reads_back_empty(
    domain_db: Database, scope: Scope
) -> None:
    customer = await create(domain_db, scope)
    got = await get(domain_db, scope, customer.id)
    assert got == customer
    assert got.metadata == {} and got.phone is None and got.is_business is None
    assert got.balance is None and got.currency is None and got.handle is None


async def test_another_scope_never_sees_the_customer(domain_db: Database, scope: Scope) -> None:
    customer = await create(domain_db, scope, CustomerFields(handle="mine"))
    stranger = await new_scope(domain_db)
    for other in (stranger, other_mode(scope)):
        with pytest.raises(NotFoundError) as info:
            await get(domain_db, other, customer.id)
        assert info.value.code == "resource.customer.not-found"
        with pytest.raises(NotFoundError):
            await get(domain_db, other, "mine", by="handle")
        assert not await exists(domain_db, other, customer.id)
        assert await page(domain_db, other) == ([], False)
        with pytest.raises(NotFoundError):
            await update(domain_db, other, customer.id, first_name="Mallory")
        with pytest.raises(NotFoundError):
            async with domain_db.write() as tx:
                await customers.delete_customer(tx, other, customer.id)
    assert await get(domain_db, scope, customer.id) == customer
    for ref in ("cust_unknown", "", "cust_\x00"):
        with pytest.raises(NotFoundError):
            await get(domain_db, scope, ref)
        assert not await exists(domain_db, scope, ref)


async def test_get_customers_loads_only_the_scopes_own_live_customers(
    domain_db: Database, scope: Scope
) -> None:
    mine = [await create(domain_db, scope, rich_fields(handle=None)) for _ in range(2)]
    gone = await create(domain_db, scope)
    async with domain_db.write() as tx:
        await customers.delete_customer(tx, scope, gone.id)
    theirs = await create(domain_db, await new_scope(domain_db))
    live_mode = await create(domain_db, other_mode(scope))
    wanted = [theirs.id, mine[1].id, gone.id, live_mode.id, "cust_\x00", mine[0].id, mine[0].id]
    async with domain_db.read(one_statement=True) as tx:
        assert await customers.get_customers(tx, scope, wanted) == {c.id: c for c in mine}
    async with domain_db.read(one_statement=True) as tx:
        assert await customers.get_customers(tx, scope, iter([])) == {}


async def test_list_customers_pages_through_the_scopes_customers(
    domain_db: Database, scope: Scope
) -> None:
    made = [await create(domain_db, scope, CustomerFields(first_name=str(i))) for i in range(3)]
    c1, c2, c3 = (c.id for c in made)
    await create(domain_db, await new_scope(domain_db))
    assert await page(domain_db, scope) == ([c3, c2, c1], False)
    assert await page(domain_db, scope, limit=2) == ([c3, c2], True)
    assert await page(domain_db, scope, limit=2, start_after=c2) == ([c1], False)
    assert await page(domain_db, scope, limit=2, order="asc") == ([c1, c2], True)
    assert await page(domain_db, scope, limit=1, order="asc", end_before=c3) == ([c2], True)
    async with domain_db.read(one_statement=True) as tx:
        found, _ = await customers.list_customers(tx, scope, PageQuery(order="asc"))
    assert found == made


# --- check_fields ---------------------------------------------------------------------------


def test_check_fields_normalises_country_currency_and_ip() -> None:
    fields = CustomerFields(
        email="Jane.Doe+x@Example.COM",
        country_code="fr",
        currency="kwd",
        ip_address="::FFFF:192.0.2.1",
    )
    checked = customers.check_fields(fields)
    assert checked.email == "Jane.Doe+x@Example.COM"  # valid as given: kept as given
    assert checked.country_code == "FR"
    assert checked.currency == "KWD"
    assert checked.ip_address == "::ffff:c000:201"
    assert fields.country_code == "fr"  # a copy: the input is left alone
    plain = CustomerFields(first_name="Jane")
    assert customers.check_fields(plain) == plain


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        (CustomerFields(email="not-an-email"), "email", "request.validation.invalid-email"),
        (CustomerFields(email="a@b"), "email", "request.validation.invalid-email"),
        (CustomerFields(country_code="XX"), "country_code", "request.validation.invalid-country"),
        (CustomerFields(country_code="DNK"), "country_code", "request.validation.invalid-country"),
        (CustomerFields(currency="ZZZ"), "currency", "request.validation.invalid-currency"),
        (CustomerFields(currency="XAU"), "currency", "request.validation.invalid-currency"),
        (CustomerFields(ip_address="300.1.1.1"), "ip_address", "request.validation.invalid-ip"),
    ],
)
def test_check_fields_refuses_invalid_values_naming_the_field(
    fields: CustomerFields, field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as info:
        customers.check_fields(fields)
    assert (info.value.field, info.value.code) == (field, code)


async def test_a_default_token_must_be_a_token_of_the_customer(
    domain_db: Database, scope: Scope
) -> None:
    """A new customer has no tokens, so no default; an existing one may name its own token,
    never another customer's (which is as unknown as one of another project)."""
    with pytest.raises(NotFoundError) as info:
        await create(domain_db, scope, CustomerFields(default_token_id="tok_" + "x" * 32))
    assert info.value.code == "resource.token.not-found"
    mine, theirs = await create(domain_db, scope), await create(domain_db, scope, rich_fields(None))
    async with atomic(domain_db) as tx:
        for owner, token_id in ((mine.id, "tok_" + "a" * 32), (theirs.id, "tok_" + "b" * 32)):
            await tokens.insert_token(
                tx,
                msgspec.structs.replace(
                    tokens.new_token(
                        scope, customer_id=owner, card_id="card_x", description=None, metadata={}
                    ),
                    id=token_id,
                ),
            )
    async with atomic(domain_db) as tx:
        updated = await customers.update_customer(
            tx, scope, mine.id, CustomerFields(default_token_id="tok_" + "a" * 32)
        )
    assert updated.default_token_id == "tok_" + "a" * 32
    with pytest.raises(NotFoundError):
        async with atomic(domain_db) as tx:
            await customers.update_customer(
                tx, scope, mine.id, CustomerFields(default_token_id="tok_" + "b" * 32)
            )


async def test_an_invalid_customer_writes_nothing(domain_db: Database, scope: Scope) -> None:
    with pytest.raises(ValidationError):
        await create(domain_db, scope, CustomerFields(handle="bad", email="nope"))
    assert await page(domain_db, scope) == ([], False)
    with pytest.raises(NotFoundError):
        await get(domain_db, scope, "bad", by="handle")


# --- update ---------------------------------------------------------------------------------


async def test_update_changes_the_given_fields_only(domain_db: Database, scope: Scope) -> None:
    customer = await create(domain_db, scope, rich_fields())
    updated = await update(
        domain_db,
        scope,
        customer.id,
        first_name="Janet",
        country_code="se",
        phone=Phone(number="87654321"),
        metadata={"other": "x"},
        is_business=False,
    )
    assert updated.first_name == "Janet" and updated.country_code == "SE"
    assert updated.phone == Phone(number="87654321", dialing_code=None)
    assert updated.metadata == {"other": "x"} and updated.is_business is False
    assert updated.last_name == "Doe" and updated.balance == -1234 and updated.currency == "EUR"
    assert updated.updated_at >= customer.updated_at
    assert updated.created_at == customer.created_at
    assert await get(domain_db, scope, customer.id) == updated


async def test_an_update_giving_nothing_changes_nothing(domain_db: Database, scope: Scope) -> None:
    customer = await create(domain_db, scope, rich_fields())
    assert await update(domain_db, scope, customer.id) == customer
    assert await get(domain_db, scope, customer.id) == customer


async def test_update_refuses_a_currency_change_that_would_reinterpret_the_balance(
    domain_db: Database, scope: Scope
) -> None:
    customer = await create(domain_db, scope, CustomerFields(balance=500, currency="EUR"))
    with pytest.raises(ValidationError) as info:
        await update(domain_db, scope, customer.id, currency="usd", first_name="X")
    assert info.value.field == "balance"
    assert await get(domain_db, scope, customer.id) == customer  # nothing written

    # The same currency, however spelled, is no change.
    same = await update(domain_db, scope, customer.id, currency="eur", first_name="Y")
    assert (same.currency, same.balance, same.first_name) == ("EUR", 500, "Y")
    # With a new balance, in the new currency, it is.
    moved = await update(domain_db, scope, customer.id, currency="JPY", balance=54)
    assert (moved.currency, moved.balance) == ("JPY", 54)
    assert await get(domain_db, scope, customer.id) == moved


async def test_a_customer_without_balance_may_change_currency(
    domain_db: Database, scope: Scope
) -> None:
    customer = await create(domain_db, scope, CustomerFields(currency="EUR"))
    moved = await update(domain_db, scope, customer.id, currency="kwd")
    assert moved.currency == "KWD" and moved.balance is None


async def test_update_validates_like_create(domain_db: Database, scope: Scope) -> None:
    customer = await create(domain_db, scope, rich_fields())
    with pytest.raises(ValidationError) as info:
        await update(domain_db, scope, customer.id, first_name="Z", email="broken")
    assert info.value.field == "email"
    assert await get(domain_db, scope, customer.id) == customer


# --- soft delete ----------------------------------------------------------------------------


async def test_delete_hides_the_customer_but_keeps_its_row(
    domain_db: Database, scope: Scope
) -> None:
    customer = await create(domain_db, scope, rich_fields("leaving"))
    other = await create(domain_db, scope)
    async with domain_db.write() as tx:
        await customers.delete_customer(tx, scope, customer.id)

    with pytest.raises(NotFoundError):
        await get(domain_db, scope, customer.id)
    with pytest.raises(NotFoundError):
        await get(domain_db, scope, "leaving", by="handle")
    assert not await exists(domain_db, scope, customer.id)
    assert await page(domain_db, scope) == ([other.id], False)
    with pytest.raises(NotFoundError):
        await update(domain_db, scope, customer.id, first_name="Back")
    with pytest.raises(NotFoundError):
        async with domain_db.write() as tx:
            await customers.delete_customer(tx, scope, customer.id)
    deleted_at = await fetchval(
        domain_db, "SELECT deleted_at FROM customers WHERE id = $1", customer.id
    )
    assert deleted_at is not None
    # A list cursor naming it still has its place.
    assert await page(domain_db, scope, order="asc", start_after=customer.id) == (
        [other.id],
        False,
    )


# --- the handle rule ------------------------------------------------------------------------


async def test_a_taken_handle_is_refused_at_create_and_at_update(
    domain_db: Database, scope: Scope
) -> None:
    first = await create(domain_db, scope, CustomerFields(handle="jane"))
    second = await create(domain_db, scope, CustomerFields(handle="john"))
    for attempt in ("create", "atomic create", "update"):
        with pytest.raises(DuplicateError) as info:
            if attempt == "create":
                await create(domain_db, scope, CustomerFields(handle="jane"))
            elif attempt == "atomic create":
                async with atomic(domain_db) as tx:
                    await customers.create_customer(tx, scope, CustomerFields(handle="jane"))
            else:
                await update(domain_db, scope, second.id, handle="jane")
        assert info.value.code == "customer.duplicate-handle"
        assert info.value.field == "handle"
    assert await page(domain_db, scope, order="asc") == ([first.id, second.id], False)
    assert (await get(domain_db, scope, "john", by="handle")).id == second.id
    # Keeping one's own handle is no conflict.
    assert (await update(domain_db, scope, first.id, handle="jane")).handle == "jane"


async def test_a_handle_is_unique_per_project_and_mode_only(
    domain_db: Database, scope: Scope
) -> None:
    stranger = await new_scope(domain_db)
    for where in (scope, stranger, other_mode(scope)):
        async with atomic(domain_db) as tx:
            made = await customers.create_customer(tx, where, CustomerFields(handle="same"))
        assert await get(domain_db, where, "same", by="handle") == made
    for _ in range(2):  # customers without a handle never collide
        await create(domain_db, scope)


async def test_a_handle_taken_earlier_in_the_same_transaction_is_refused(
    domain_db: Database, scope: Scope
) -> None:
    """The check reads the transaction's own writes (even INSERTs PostgreSQL holds back)."""
    with pytest.raises(DuplicateError):
        async with domain_db.write() as tx:
            await customers.create_customer(tx, scope, CustomerFields(handle="twice"))
            await customers.create_customer(tx, scope, CustomerFields(handle="twice"))
    with pytest.raises(DuplicateError) as info:
        async with atomic(domain_db) as tx:
            await customers.create_customer(tx, scope, CustomerFields(handle="twice"))
            await customers.create_customer(tx, scope, CustomerFields(handle="twice"))
    assert info.value.code == "customer.duplicate-handle"
    assert await page(domain_db, scope) == ([], False)


async def test_two_concurrent_creates_of_one_handle_make_one_customer_and_one_duplicate(
    domain_db: Database, scope: Scope
) -> None:
    for round_ in range(6):
        handle = f"raced-{round_}"
        made: dict[str, Customer] = {}

        async def make(tx: Tx, handle: str = handle, made: dict[str, Customer] = made) -> None:
            customer = await customers.create_customer(tx, scope, CustomerFields(handle=handle))
            made[customer.id] = customer

        outcomes = await race(domain_db, make)
        errors = [o for o in outcomes if o is not None]
        assert len(errors) == 1, outcomes
        assert isinstance(errors[0], DuplicateError), repr(errors[0])
        assert errors[0].code == "customer.duplicate-handle"
        winner = await get(domain_db, scope, handle, by="handle")
        assert winner == made[winner.id]
        count = await fetchval(
            domain_db,
            "SELECT count(*) FROM customers WHERE project_id = $1 AND handle = $2",
            scope.project_id,
            handle,
        )
        assert count == 1


async def test_two_concurrent_handle_changes_to_one_handle_leave_one_owner(
    domain_db: Database, scope: Scope
) -> None:
    first = await create(domain_db, scope)
    second = await create(domain_db, scope)
    targets = iter([first.id, second.id])

    async def rename(tx: Tx) -> None:
        await customers.update_customer(tx, scope, next(targets), CustomerFields(handle="taken"))

    outcomes = await race(domain_db, rename, meet_before_commit=False)
    errors = [o for o in outcomes if o is not None]
    assert len(errors) == 1, outcomes
    assert isinstance(errors[0], DuplicateError), repr(errors[0])
    owner = await get(domain_db, scope, "taken", by="handle")
    assert owner.id in (first.id, second.id)
