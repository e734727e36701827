"""Every event type has a name in each dialect, or is explicitly not sent in it (None): no
event can be recorded that a dialect could not name, and no two types share a name."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from settle.api.processout import events as processout
from settle.api.reepay import webhooks as reepay
from settle.events.types import EventType

TABLES: dict[str, Mapping[EventType, str | None]] = {
    "processout": processout.NAMES,
    "reepay": reepay.NAMES,
}


@pytest.mark.parametrize("dialect", TABLES)
def test_every_event_type_is_named_or_explicitly_not_sent(dialect: str) -> None:
    table = TABLES[dialect]
    assert set(table) == set(EventType)
    named = [name for name in table.values() if name is not None]
    assert len(named) == len(set(named)), "two event types share a name"


def test_the_reepay_names_are_the_vendors() -> None:
    assert set(reepay.EVENT_TYPES) == {
        "invoice_created",
        "invoice_settled",
        "invoice_authorized",
        "invoice_failed",
        "invoice_cancelled",
        "invoice_changed",
        "invoice_refund",
        "invoice_reactivate",
        "customer_created",
        "customer_changed",
        "customer_deleted",
    }


def test_every_object_is_told_of_in_each_dialect() -> None:
    """Each dialect announces creations and changes of invoices and customers."""
    for table in TABLES.values():
        for event_type in (
            EventType.INVOICE_CREATED,
            EventType.INVOICE_CHANGED,
            EventType.CUSTOMER_CREATED,
            EventType.CUSTOMER_CHANGED,
            EventType.CUSTOMER_DELETED,
        ):
            assert table[event_type] is not None
