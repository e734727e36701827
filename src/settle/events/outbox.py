"""The transactional outbox: ``record`` writes one event row in the caller's database
transaction, so the event exists exactly when the change it describes does (a rolled-back
change leaves none; a crash after the commit loses none). Delivery reads the rows later
(``settle.events`` delivery), never inside the change's transaction.

An event carries the object as it was when it happened (``data``): the domain's own struct
(Invoice, Transaction, Customer) as JSON, which each dialect decodes with ``snapshot`` and
renders in its own form. Which invoice, customer and transaction the event concerns, and the
key its deliveries are ordered by, are read off that object: a call site names only what
happened and to what.

Cost: two INSERTs (the event, and its place in ``unfanned_events``) and one msgspec encode (a
few microseconds for an invoice), no read. The snapshot leaves out the fields at their defaults
(``encode``): measured with bench/outbox_cost.py on the bench invoice, 1,463 bytes instead of
2,087, and PostgreSQL's CPU per event +12-25 us instead of +29-38 us over a create without one
(the full form was compressed on every insert, being over PostgreSQL's 2 KB row threshold).
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

from settle.clock import now_us
from settle.customers.models import Customer
from settle.db.database import Tx
from settle.events.types import EventType
from settle.ids import new_id
from settle.invoices.models import Invoice
from settle.payments.models import Transaction
from settle.projects.models import Scope

Subject: TypeAlias = Invoice | Transaction | Customer
ObjectType = Literal["invoice", "transaction", "customer"]

_ENCODER: Final = msgspec.json.Encoder()
_INSERT: Final = (
    "INSERT INTO events (id, project_id, sandbox, type, object_type, object_id, order_key,"
    " invoice_id, customer_id, transaction_id, data, fired_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
# ... and the event waits for the delivery worker's fan-out (see db/schema.py unfanned_events).
# On PostgreSQL both INSERTs go out in the change's one statement (settle.db.postgres.combine).
_QUEUE: Final = "INSERT INTO unfanned_events (event_id) VALUES ($1)"
_SUBJECT_TYPES: Final[dict[ObjectType, type[Subject]]] = {
    "invoice": Invoice,
    "transaction": Transaction,
    "customer": Customer,
}


def _kind(event_type: EventType) -> ObjectType:
    for kind in _SUBJECT_TYPES:
        if event_type.value.startswith(kind + "."):
            return kind
    raise ValueError(f"event type {event_type!r} names no known object")


# Built once: a type's object kind is looked up on every record.
_OBJECT_TYPES: Final[dict[EventType, ObjectType]] = {t: _kind(t) for t in EventType}


def object_type_of(event_type: EventType) -> ObjectType:
    """What kind of object an event type is about: its name's first part."""
    return _OBJECT_TYPES[event_type]


class Keys(msgspec.Struct, frozen=True):
    """The ids an event is filed under."""

    object_id: str
    order_key: str
    invoice_id: str | None
    customer_id: str | None
    transaction_id: str | None


def keys_of(of: Subject) -> Keys:
    # Deliveries keep the order of one order_key: an invoice and its transaction share the
    # invoice's id (a transaction's events must not overtake its invoice's); a customer's
    # events are ordered by the customer's id.
    if isinstance(of, Invoice):
        return Keys(of.id, of.id, of.id, of.terms.customer_id, of.transaction_id)
    if isinstance(of, Transaction):
        return Keys(of.id, of.invoice_id, of.invoice_id, of.customer_id, of.id)
    return Keys(of.id, of.id, None, of.id, None)


async def record(
    tx: Tx, scope: Scope, type: EventType, *, of: Subject, fired_at: int | None = None
) -> str:
    """Record that ``type`` happened to ``of`` (the object as it is now, after the change),
    inside ``tx``. Returns the event's id (``ev_...``)."""
    object_type = object_type_of(type)
    if not isinstance(of, _SUBJECT_TYPES[object_type]):
        # A programming error, not bad input: an invoice event must carry an invoice.
        raise TypeError(f"{type} is about a {object_type}, not a {of.__class__.__name__}")
    keys = keys_of(of)
    event_id = new_id("ev_")
    await tx.execute(
        _INSERT,
        event_id,
        scope.project_id,
        scope.sandbox,
        type.value,
        object_type,
        keys.object_id,
        keys.order_key,
        keys.invoice_id,
        keys.customer_id,
        keys.transaction_id,
        encode(of),
        now_us() if fired_at is None else fired_at,
    )
    await tx.execute(_QUEUE, event_id)
    return event_id


def encode(of: Subject) -> str:
    """The snapshot an event carries: ``of`` as JSON, without the fields at their defaults
    (``omit_defaults`` on the domain structs), which ``snapshot`` fills in again."""
    return _ENCODER.encode(of).decode()


def snapshot(object_type: ObjectType, data: str) -> Subject:
    """The object an event carries, decoded back into its domain struct."""
    return msgspec.json.decode(data, type=_SUBJECT_TYPES[object_type])
