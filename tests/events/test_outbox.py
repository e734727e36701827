"""``settle.events.outbox.record`` on a bare transaction, on each backend: one row per event,
filed under the ids of the object it carries, in the change's transaction only."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settle.billing import service as billing
from settle.customers import service as customers
from settle.customers.models import Customer, CustomerFields
from settle.db.database import Database
from settle.events import outbox
from settle.events.types import EventType
from settle.invoices.models import Invoice, InvoiceInput, InvoiceLine, InvoiceState, InvoiceTerms
from settle.payments import service as payments
from settle.payments.models import Transaction
from settle.projects.models import Scope
from tests.domain_fixtures import domain_db_fixture, scope_fixture  # noqa: F401

_COLUMNS = (
    "id, type, object_type, object_id, order_key, invoice_id, customer_id, transaction_id,"
    " data, fired_at, sandbox,"
    " (SELECT count(*) FROM unfanned_events u WHERE u.event_id = events.id) AS unfanned"
)


async def events_of(db: Database, scope: Scope) -> list[dict[str, object]]:
    async with db.read() as tx:
        rows = await tx.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE project_id = $1 AND sandbox = $2 ORDER BY seq",
            scope.project_id,
            scope.sandbox,
        )
    return [dict(r) for r in rows]  # type: ignore[call-overload]


async def customer_and_invoice(db: Database, scope: Scope) -> tuple[Customer, Invoice]:
    async with db.write() as tx:
        customer = await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
        invoice = await billing.create_invoice(
            tx, scope, InvoiceInput(amount=499, currency="EUR", customer_id=customer.id)
        )
    return customer, invoice


async def test_an_event_is_filed_under_its_objects_ids(domain_db: Database, scope: Scope) -> None:
    customer, invoice = await customer_and_invoice(domain_db, scope)
    before = await events_of(domain_db, scope)
    async with domain_db.write() as tx:
        transaction = await payments.get_transaction(tx, scope, invoice.transaction_id)
        ids = [
            await outbox.record(tx, scope, EventType.INVOICE_CHANGED, of=invoice),
            await outbox.record(tx, scope, EventType.TRANSACTION_REQUESTED, of=transaction),
            await outbox.record(tx, scope, EventType.CUSTOMER_CHANGED, of=customer, fired_at=7),
        ]
    rows = (await events_of(domain_db, scope))[len(before) :]
    assert [r["id"] for r in rows] == ids
    assert all(i.startswith("ev_") and len(i) == 35 for i in ids)
    names = ("type", "object_type", "object_id", "order_key")
    ids_of = ("invoice_id", "customer_id", "transaction_id")
    assert [tuple(r[n] for n in names) for r in rows] == [
        ("invoice.changed", "invoice", invoice.id, invoice.id),
        ("transaction.requested", "transaction", transaction.id, invoice.id),
        ("customer.changed", "customer", customer.id, customer.id),
    ]
    assert [tuple(r[n] for n in ids_of) for r in rows] == [
        (invoice.id, customer.id, invoice.transaction_id),
        (invoice.id, customer.id, transaction.id),
        (None, customer.id, None),
    ]
    assert all(r["unfanned"] == 1 for r in rows)  # each waits for the delivery worker
    assert all(r["sandbox"] for r in rows)
    assert rows[2]["fired_at"] == 7
    # The data is the object as it was, decodable back into the domain's struct.
    assert outbox.snapshot("invoice", str(rows[0]["data"])) == invoice
    assert outbox.snapshot("transaction", str(rows[1]["data"])) == transaction
    assert outbox.snapshot("customer", str(rows[2]["data"])) == customer


async def test_a_rolled_back_change_leaves_no_event(domain_db: Database, scope: Scope) -> None:
    customer, _ = await customer_and_invoice(domain_db, scope)
    before = await events_of(domain_db, scope)
    with pytest.raises(RuntimeError):
        async with domain_db.write() as tx:
            await outbox.record(tx, scope, EventType.CUSTOMER_CHANGED, of=customer)
            raise RuntimeError("the change failed after its event was written")
    assert await events_of(domain_db, scope) == before


async def test_an_event_must_carry_the_object_its_type_names(
    domain_db: Database, scope: Scope
) -> None:
    customer, _ = await customer_and_invoice(domain_db, scope)
    async with domain_db.write() as tx:
        with pytest.raises(TypeError):
            await outbox.record(tx, scope, EventType.INVOICE_CREATED, of=customer)


def test_every_event_type_names_an_object() -> None:
    for event_type in EventType:
        assert outbox.object_type_of(event_type) in ("invoice", "transaction", "customer")


# --- the snapshot's form ------------------------------------------------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _values(t: msgspec.inspect.Type) -> st.SearchStrategy[object]:
    """Any value of the field type ``t`` (for the domain structs' field types), the field's
    default included: the snapshot leaves out the fields at their defaults."""
    i = msgspec.inspect
    if isinstance(t, i.UnionType):
        return st.one_of(*(_values(member) for member in t.types))
    if isinstance(t, i.NoneType):
        return st.none()
    if isinstance(t, i.StrType):
        return st.text(max_size=12)
    if isinstance(t, i.BoolType):
        return st.booleans()
    if isinstance(t, i.IntType):
        return st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from([0, 1])
    if isinstance(t, i.EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, i.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, i.AnyType):
        return _JSON_VALUES
    if isinstance(t, i.DictType):
        return st.dictionaries(st.text(max_size=5), _values(t.value_type), max_size=3)
    if isinstance(t, i.ListType):
        return st.lists(_values(t.item_type), max_size=3)
    if isinstance(t, i.StructType):
        return _structs(t.cls)
    raise AssertionError(f"no strategy for {t}")


def _structs(cls: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {f.name: _values(f.type) for f in info.fields}
    return st.builds(lambda **values: cls(**values), **fields)


@settings(max_examples=300, deadline=None)
@given(of=_structs(Invoice) | _structs(Transaction) | _structs(Customer))
def test_a_snapshot_decodes_to_the_object_it_was_made_of(of: outbox.Subject) -> None:
    # Fields at their defaults (None, 0, empty) are left out of the JSON (omit_defaults on the
    # domain structs): decoding fills them in again, so the object comes back exactly.
    kinds: dict[type, outbox.ObjectType] = {
        Invoice: "invoice",
        Transaction: "transaction",
        Customer: "customer",
    }
    kind = kinds[type(of)]
    assert outbox.snapshot(kind, outbox.encode(of)) == of


def test_a_snapshot_leaves_out_what_is_at_its_default_and_old_full_rows_still_decode() -> None:
    invoice = Invoice(
        id="iv_1",
        project_id="proj_1",
        sandbox=True,
        transaction_id="tr_1",
        state=InvoiceState.CREATED,
        created_at=1,
        updated_at=1,
        version=1,
        terms=InvoiceTerms(amount=499, currency="EUR"),
        lines=[InvoiceLine(id="ln_1", name="A", amount=499)],
    )
    data = outbox.encode(invoice)
    assert msgspec.json.decode(data)["terms"] == {"amount": 499, "currency": "EUR"}
    assert msgspec.json.decode(data)["lines"] == [{"name": "A", "amount": 499, "id": "ln_1"}]
    # A row written before (every field, nulls and empties included) decodes the same.
    full = (
        '{"id":"iv_1","project_id":"proj_1","sandbox":true,"transaction_id":"tr_1",'
        '"state":"created","created_at":1,"updated_at":1,"version":1,'
        '"terms":{"amount":499,"currency":"EUR","handle":null,"customer_id":null,'
        '"tax":null,"metadata":{},"attributes":{}},'
        '"lines":[{"name":"A","amount":499,"quantity":1,"vat_rate":null,'
        '"amount_incl_vat":true,"metadata":{},"id":"ln_1"}]}'
    )
    assert outbox.snapshot("invoice", full) == invoice
