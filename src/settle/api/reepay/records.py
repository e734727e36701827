"""Reads and writes this dialect needs that the domain services do not offer yet.

Each is written as the services are (scoped to one project and mode, row-locked before a
write, bumping the invoice's ``version`` with every change, never committing), and each
belongs in a service: ``customer_gone``, ``customer_id_of`` and ``customer_handles`` in
``settle.customers``; ``customer_invoice_totals``, ``set_invoice_metadata`` and
``set_invoice_attribute`` in ``settle.invoices``. They live here only until then, so that this
dialect could be added without touching the services other work was changing at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

import msgspec

from settle.clock import now_us
from settle.db.codec import dump_json
from settle.db.database import Tx
from settle.db.queries import scoped_row, scoped_rows
from settle.events.outbox import record
from settle.events.types import EventType
from settle.ids import could_exist
from settle.invoices.models import Invoice, InvoiceState
from settle.projects.models import Scope


async def customer_gone(
    tx: Tx, scope: Scope, ref: str, *, by: Literal["id", "handle"] = "handle"
) -> int | None:
    """When the customer ``ref`` of ``scope`` was deleted; None if it is live or never was."""
    row = await scoped_row(
        tx, "customers", "deleted_at", scope, ref, by=by, where=" AND deleted_at IS NOT NULL"
    )
    return None if row is None else int(row["deleted_at"])


async def customer_id_of(tx: Tx, scope: Scope, ref: str) -> str | None:
    """The id of the customer whose handle is ``ref`` (or whose id it is: a customer without
    a handle goes by its id), deleted ones included: their invoices remain theirs."""
    row = await scoped_row(tx, "customers", "id", scope, ref, by="handle")
    if row is None and ref.startswith("cust_"):
        row = await scoped_row(tx, "customers", "id", scope, ref, by="id")
    return None if row is None else str(row["id"])


async def customer_handles(tx: Tx, scope: Scope, ids: Iterable[str]) -> dict[str, str | None]:
    """Customer id -> its handle (None for a customer without one), deleted customers too:
    an invoice keeps naming its customer."""
    rows = await scoped_rows(tx, "customers", "id, handle", scope, ids)
    return {row["id"]: row["handle"] for row in rows}


class StateTotals(msgspec.Struct, kw_only=True):
    count: int = 0
    amount: int = 0


class CustomerTotals(msgspec.Struct, kw_only=True):
    """A customer's live invoices by state, and what was refunded of them."""

    states: dict[InvoiceState, StateTotals] = msgspec.field(default_factory=dict)
    refunded_amount: int = 0

    def of(self, state: InvoiceState) -> StateTotals:
        return self.states.get(state, StateTotals())


_TOTALS_BATCH: Final = 100


async def customer_invoice_totals(
    tx: Tx, scope: Scope, customer_ids: Iterable[str]
) -> dict[str, CustomerTotals]:
    """Per customer: count and amount of its invoices in each state, and the amount refunded
    of their payments; one statement per 100 customers."""
    wanted = sorted({i for i in customer_ids if could_exist(i)})
    found: dict[str, CustomerTotals] = {i: CustomerTotals() for i in wanted}
    for start in range(0, len(wanted), _TOTALS_BATCH):
        batch = wanted[start : start + _TOTALS_BATCH]
        marks = ", ".join(f"${i}" for i in range(3, 3 + len(batch)))
        rows = await tx.fetch(
            "SELECT i.customer_id, i.state, COUNT(*) AS n,"
            " CAST(SUM(i.amount) AS BIGINT) AS amount,"
            " CAST(SUM(t.refunded_amount) AS BIGINT) AS refunded"
            " FROM invoices i JOIN transactions t ON t.id = i.transaction_id"
            f" WHERE i.customer_id IN ({marks}) AND i.project_id = $1 AND i.sandbox = $2"
            " AND i.deleted_at IS NULL GROUP BY i.customer_id, i.state",
            scope.project_id,
            scope.sandbox,
            *batch,
        )
        for row in rows:
            totals = found[row["customer_id"]]
            totals.states[InvoiceState(row["state"])] = StateTotals(
                count=int(row["n"]), amount=int(row["amount"] or 0)
            )
            totals.refunded_amount += int(row["refunded"] or 0)
    return found


async def _save(tx: Tx, invoice: Invoice, column: str, value: Any, **terms: Any) -> Invoice:
    updated = msgspec.structs.replace(
        invoice,
        updated_at=now_us(),
        version=invoice.version + 1,
        terms=msgspec.structs.replace(invoice.terms, **terms),
    )
    # ``column`` is one of this module's two, never input.
    await tx.execute(
        f"UPDATE invoices SET {column} = $2, updated_at = $3, version = $4 WHERE id = $1",
        invoice.id,
        dump_json(value),
        updated.updated_at,
        updated.version,
    )
    scope = Scope(project_id=invoice.project_id, sandbox=invoice.sandbox)
    await record(tx, scope, EventType.INVOICE_CHANGED, of=updated)
    return updated


async def set_invoice_metadata(tx: Tx, invoice: Invoice, metadata: dict[str, str]) -> Invoice:
    """Replace the metadata of ``invoice`` (locked by the caller). Metadata describes: it may
    change in any state of the invoice."""
    return await _save(tx, invoice, "metadata", metadata, metadata=metadata)


async def set_invoice_attribute(tx: Tx, invoice: Invoice, name: str, value: Any) -> Invoice:
    """Set one descriptive attribute (an address, ...) of ``invoice`` (locked by the caller)."""
    attributes = {**invoice.terms.attributes, name: value}
    return await _save(tx, invoice, "attributes", attributes, attributes=attributes)
