"""Totals of a customer's invoices: how many in each state, for how much, and what was
refunded of their payments (Reepay shows them on its customer). Never commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from settle.db.database import Tx
from settle.ids import could_exist
from settle.invoices.models import InvoiceState
from settle.projects.models import Scope


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
# Sums are taken in two parts, amount // _SPLIT and amount % _SPLIT, joined in Python: one SUM
# of the amounts overflows 64 bits past 9,223 invoices of settle.money.MAX_MINOR (SQLite's
# SUM raises "integer overflow"; PostgreSQL's numeric sum fails its CAST to BIGINT), and the
# customer could not be read. Each part stays below 2**63 for billions of invoices.
_SPLIT: Final = 10**9


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
            f" CAST(SUM(i.amount / {_SPLIT}) AS BIGINT) AS amount_hi,"
            f" CAST(SUM(i.amount % {_SPLIT}) AS BIGINT) AS amount_lo,"
            f" CAST(SUM(t.refunded_amount / {_SPLIT}) AS BIGINT) AS refunded_hi,"
            f" CAST(SUM(t.refunded_amount % {_SPLIT}) AS BIGINT) AS refunded_lo"
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
                count=int(row["n"]), amount=_joined(row["amount_hi"], row["amount_lo"])
            )
            totals.refunded_amount += _joined(row["refunded_hi"], row["refunded_lo"])
    return found


def _joined(high: int | None, low: int | None) -> int:
    return int(high or 0) * _SPLIT + int(low or 0)
