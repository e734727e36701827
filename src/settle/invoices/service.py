"""Invoice operations. Validate everything, then mutate; never commit (the caller does)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

import msgspec

from settle.clock import now_us
from settle.customers.service import customer_exists
from settle.db.codec import dump_json, load_json
from settle.db.database import Row, Tx, UniqueViolation
from settle.db.queries import rows_by_ids
from settle.errors import ConflictError, DuplicateError, NotFoundError
from settle.ids import could_exist, new_id
from settle.invoices.models import (
    LINE_FIELDS,
    SCALAR_FIELDS,
    Invoice,
    InvoiceChanges,
    InvoiceInput,
    InvoiceLine,
    InvoiceTerms,
    LineInput,
)
from settle.listing import PageQuery, fetch_page
from settle.payments import service as payments
from settle.payments.models import WAITING
from settle.projects.models import Scope

PENDING: Final = "pending"

_HEAD: Final = (
    "id",
    "project_id",
    "sandbox",
    "transaction_id",
    "state",
    "created_at",
    "updated_at",
    "version",
)
_STORED: Final = (*_HEAD, *SCALAR_FIELDS, "tax_amount", "tax_rate", "metadata", "attributes")
_COLUMNS: Final = ", ".join(_STORED)
_INSERT: Final = (
    f"INSERT INTO invoices ({_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(_STORED) + 1))})"
)
_LINE_COLUMNS: Final = ", ".join(("id", "invoice_id", "position", *LINE_FIELDS))
_INSERT_LINE: Final = (
    f"INSERT INTO invoice_lines ({_LINE_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(LINE_FIELDS) + 4))})"
)
_SCOPED: Final = "project_id = $2 AND sandbox = $3"


def _line_row(invoice_id: str, position: int, line: InvoiceLine) -> tuple[Any, ...]:
    values = [getattr(line, f) for f in LINE_FIELDS]
    values[LINE_FIELDS.index("metadata")] = dump_json(line.metadata)
    return (line.id, invoice_id, position, *values)


def _line_from_row(row: Row) -> InvoiceLine:
    values = dict(row)  # type: ignore[call-overload]
    values["metadata"] = load_json(values["metadata"]) or {}
    # strict=False: SQLite hands booleans back as 0/1.
    return msgspec.convert(values, InvoiceLine, strict=False)


def _from_row(row: Row, lines: list[InvoiceLine]) -> Invoice:
    values = dict(row)  # type: ignore[call-overload]
    values["metadata"] = load_json(values["metadata"]) or {}
    values["attributes"] = load_json(values["attributes"]) or {}
    if values["tax_amount"] is not None or values["tax_rate"] is not None:
        values["tax"] = {"amount": values["tax_amount"], "rate": values["tax_rate"]}
    terms = msgspec.convert(values, InvoiceTerms, strict=False)
    return Invoice(
        id=values["id"],
        project_id=values["project_id"],
        sandbox=bool(values["sandbox"]),
        transaction_id=values["transaction_id"],
        state=values["state"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        version=values["version"],
        terms=terms,
        lines=lines,
    )


def _invoice_values(invoice: Invoice) -> tuple[Any, ...]:
    t = invoice.terms
    return (
        invoice.id,
        invoice.project_id,
        invoice.sandbox,
        invoice.transaction_id,
        invoice.state,
        invoice.created_at,
        invoice.updated_at,
        invoice.version,
        *(getattr(t, f) for f in SCALAR_FIELDS),
        t.tax.amount if t.tax else None,
        t.tax.rate if t.tax else None,
        dump_json(t.metadata),
        dump_json(t.attributes),
    )


def _with_ids(lines: list[LineInput]) -> list[InvoiceLine]:
    return [InvoiceLine(id=new_id("iv_det_"), **msgspec.structs.asdict(line)) for line in lines]


async def _check_references(tx: Tx, scope: Scope, terms: InvoiceTerms) -> None:
    if terms.customer_id is not None and not await customer_exists(tx, scope, terms.customer_id):
        raise NotFoundError("customer", terms.customer_id)
    if terms.token_id is not None:
        # No token can exist yet (tokens come with the payments module): an unknown id is 404,
        # exactly as a token of another project will be.
        raise NotFoundError("token", terms.token_id)


async def create_invoice(tx: Tx, scope: Scope, data: InvoiceInput) -> Invoice:
    await _check_references(tx, scope, data)
    now = now_us()
    invoice_id = new_id("iv_")
    transaction = payments.new_waiting_transaction(
        scope,
        invoice_id=invoice_id,
        customer_id=data.customer_id,
        name=data.name,
        amount=data.amount,
        currency=data.currency,
        now=now,
    )
    terms_fields = {f: getattr(data, f) for f in InvoiceTerms.__struct_fields__}
    invoice = Invoice(
        id=invoice_id,
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        transaction_id=transaction.id,
        state=PENDING,
        version=1,
        created_at=now,
        updated_at=now,
        terms=InvoiceTerms(**terms_fields),
        lines=_with_ids(data.lines),
    )
    try:
        await tx.execute(_INSERT, *_invoice_values(invoice))
    except UniqueViolation:
        raise DuplicateError(
            f"handle: an invoice with handle {data.handle!r} already exists.",
            code="invoice.duplicate-handle",
            field="handle",
        ) from None
    if invoice.lines:
        await tx.executemany(
            _INSERT_LINE, [_line_row(invoice.id, i, line) for i, line in enumerate(invoice.lines)]
        )
    await payments.insert_transaction(tx, transaction)
    return invoice


async def _lines_for(tx: Tx, invoice_ids: list[str]) -> dict[str, list[InvoiceLine]]:
    found: dict[str, list[InvoiceLine]] = defaultdict(list)
    if not invoice_ids:
        return found
    marks = ", ".join(f"${i}" for i in range(1, len(invoice_ids) + 1))
    rows = await tx.fetch(
        f"SELECT invoice_id, {_LINE_COLUMNS.removeprefix('id, invoice_id, ')}, id"
        f" FROM invoice_lines WHERE invoice_id IN ({marks}) ORDER BY invoice_id, position",
        *invoice_ids,
    )
    for row in rows:
        found[row["invoice_id"]].append(_line_from_row(row))
    return found


async def get_invoice(tx: Tx, scope: Scope, invoice_id: str, *, lock: bool = False) -> Invoice:
    """``lock``: hold the row until the transaction ends, for a check-then-write."""
    if not could_exist(invoice_id):
        raise NotFoundError("invoice", invoice_id)
    row = await tx.fetchrow(
        f"SELECT {_COLUMNS} FROM invoices WHERE id = $1 AND {_SCOPED}"
        + (" FOR UPDATE" if lock else ""),
        invoice_id,
        scope.project_id,
        scope.sandbox,
    )
    if row is None:
        raise NotFoundError("invoice", invoice_id)
    lines = await _lines_for(tx, [invoice_id])
    return _from_row(row, lines.get(invoice_id, []))


async def list_invoices(tx: Tx, scope: Scope, query: PageQuery) -> tuple[list[Invoice], bool]:
    rows, has_more = await fetch_page(
        tx, table="invoices", columns=_COLUMNS, scope=scope, query=query
    )
    lines = await _lines_for(tx, [r["id"] for r in rows])
    return [_from_row(r, lines.get(r["id"], [])) for r in rows], has_more


async def list_invoice_versions(
    tx: Tx, scope: Scope, query: PageQuery
) -> tuple[list[tuple[str, int]], bool]:
    """One page as (id, version) pairs only: for callers that cache what they render."""
    rows, has_more = await fetch_page(
        tx, table="invoices", columns="id, version", scope=scope, query=query
    )
    return [(r["id"], r["version"]) for r in rows], has_more


async def get_invoices(tx: Tx, scope: Scope, invoice_ids: list[str]) -> dict[str, Invoice]:
    """Batch load, scoped; ids of other projects are simply absent."""
    if not invoice_ids:
        return {}
    rows = await tx.fetch(
        rows_by_ids("invoices", _COLUMNS, len(invoice_ids)),
        scope.project_id,
        scope.sandbox,
        *invoice_ids,
    )
    lines = await _lines_for(tx, [r["id"] for r in rows])
    return {r["id"]: _from_row(r, lines.get(r["id"], [])) for r in rows}


async def _unpaid(tx: Tx, scope: Scope, invoice_id: str, action: str) -> Invoice:
    invoice = await get_invoice(tx, scope, invoice_id, lock=True)
    transaction = await payments.get_transaction(tx, scope, invoice.transaction_id)
    if transaction.status != WAITING:
        raise ConflictError(
            f"The invoice {invoice_id!r} cannot be {action}: its transaction is "
            f"{transaction.status}.",
            code="invoice.already-used",
        )
    return invoice


async def update_invoice(tx: Tx, scope: Scope, invoice_id: str, changes: InvoiceChanges) -> Invoice:
    invoice = await _unpaid(tx, scope, invoice_id, "changed")
    terms = invoice.terms
    updates: dict[str, Any] = {}
    if changes.amount is not None:
        updates["amount"] = changes.amount
    if changes.tax is not None:
        updates["tax"] = changes.tax
    if changes.shipping is not None:
        updates["shipping_amount"] = changes.shipping_amount
        updates["attributes"] = {**terms.attributes, "shipping": changes.shipping}
    lines = invoice.lines
    if changes.lines is not None:
        lines = _with_ids(changes.lines)
    now = now_us()
    updated = msgspec.structs.replace(
        invoice,
        updated_at=now,
        version=invoice.version + 1,
        terms=msgspec.structs.replace(terms, **updates),
        lines=lines,
    )
    t = updated.terms
    await tx.execute(
        "UPDATE invoices SET amount = $2, tax_amount = $3, tax_rate = $4, shipping_amount = $5,"
        " attributes = $6, updated_at = $7, version = $8 WHERE id = $1",
        invoice_id,
        t.amount,
        t.tax.amount if t.tax else None,
        t.tax.rate if t.tax else None,
        t.shipping_amount,
        dump_json(t.attributes),
        now,
        updated.version,
    )
    if changes.lines is not None:
        await tx.execute("DELETE FROM invoice_lines WHERE invoice_id = $1", invoice_id)
        if lines:
            await tx.executemany(
                _INSERT_LINE, [_line_row(invoice_id, i, line) for i, line in enumerate(lines)]
            )
    await payments.set_waiting_terms(
        tx, invoice.transaction_id, amount=t.amount, customer_id=t.customer_id, now=now
    )
    return updated


async def assign_customer(tx: Tx, scope: Scope, invoice_id: str, customer_id: str) -> Invoice:
    invoice = await _unpaid(tx, scope, invoice_id, "reassigned")
    if not await customer_exists(tx, scope, customer_id):
        raise NotFoundError("customer", customer_id)
    now = now_us()
    await tx.execute(
        "UPDATE invoices SET customer_id = $2, updated_at = $3, version = $4 WHERE id = $1",
        invoice_id,
        customer_id,
        now,
        invoice.version + 1,
    )
    await payments.set_waiting_terms(
        tx, invoice.transaction_id, amount=invoice.terms.amount, customer_id=customer_id, now=now
    )
    return msgspec.structs.replace(
        invoice,
        updated_at=now,
        version=invoice.version + 1,
        terms=msgspec.structs.replace(invoice.terms, customer_id=customer_id),
    )


async def delete_invoice(tx: Tx, scope: Scope, invoice_id: str) -> None:
    """Only an invoice nobody paid can be deleted; it leaves nothing behind."""
    invoice = await _unpaid(tx, scope, invoice_id, "deleted")
    await tx.execute("DELETE FROM invoice_lines WHERE invoice_id = $1", invoice_id)
    await tx.execute("DELETE FROM invoices WHERE id = $1", invoice_id)
    await payments.delete_transaction(tx, invoice.transaction_id)
