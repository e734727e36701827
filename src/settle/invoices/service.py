"""Invoice persistence and the invoice's own rules. Validate everything, then mutate; never
commit (the caller does). Operations that move the payment side too (creating an invoice with
its transaction, changing what an unpaid invoice asks for) are ``settle.billing``'s: this
package knows nothing of payments."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from settle.clock import now_us
from settle.customers.service import customer_exists, hold_customer
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.db.queries import Part, scoped_row, scoped_rows, token_of_customer
from settle.errors import ConflictError, ErrorCode, NotFoundError
from settle.ids import new_id
from settle.invoices import rules
from settle.invoices.models import (
    SCALAR_FIELDS,
    Invoice,
    InvoiceChanges,
    InvoiceInput,
    InvoiceLine,
    InvoiceState,
    InvoiceTerms,
    LineInput,
)
from settle.listing import PageQuery, fetch_page
from settle.projects.models import Scope

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
_STORED: Final = (
    *_HEAD,
    *SCALAR_FIELDS,
    "tax_amount",
    "tax_rate",
    "metadata",
    "attributes",
    "lines",
)
_COLUMNS: Final = ", ".join(_STORED)
_INSERT: Final = (
    f"INSERT INTO invoices ({_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(_STORED) + 1))})"
)
# Deleted invoices keep their row (marked) so that list cursors naming them stay valid.
_ALIVE: Final = "deleted_at IS NULL"
# An invoice's lines are a JSON array in its row (migration 0017): one row per invoice to
# write and to read, however many lines it has.
_LINES: Final = msgspec.json.Decoder(list[InvoiceLine])


def _from_row(row: Row) -> Invoice:
    values = dict(row)  # type: ignore[call-overload]
    values["metadata"] = load_json(values["metadata"]) or {}
    values["attributes"] = load_json(values["attributes"]) or {}
    lines = _LINES.decode(values.pop("lines"))
    if values["tax_amount"] is not None or values["tax_rate"] is not None:
        values["tax"] = {"amount": values["tax_amount"], "rate": values["tax_rate"]}
    terms = msgspec.convert(values, InvoiceTerms, strict=False)
    return Invoice(
        id=values["id"],
        project_id=values["project_id"],
        sandbox=bool(values["sandbox"]),
        transaction_id=values["transaction_id"],
        state=InvoiceState(values["state"]),
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
        invoice.state.value,
        invoice.created_at,
        invoice.updated_at,
        invoice.version,
        *(getattr(t, f) for f in SCALAR_FIELDS),
        t.tax.amount if t.tax else None,
        t.tax.rate if t.tax else None,
        dump_json(t.metadata),
        dump_json(t.attributes),
        dump_json(invoice.lines),
    )


def _with_ids(lines: list[LineInput]) -> list[InvoiceLine]:
    return [InvoiceLine(id=new_id("iv_det_"), **msgspec.structs.asdict(line)) for line in lines]


async def check_references(
    tx: Tx, scope: Scope, terms: InvoiceTerms, *, customer_held: bool = False
) -> None:
    """The objects ``terms`` names exist in ``scope``. ``customer_held``: the caller has read
    the customer live and holds it (a share lock), so it is not looked up again."""
    customer_id = terms.customer_id
    if customer_id is not None and not customer_held:
        # Held until the invoice is written: a concurrent delete of the customer waits, so no
        # invoice points at a customer deleted first, and the delete's answer counts it.
        if terms.token_id is None:
            await hold_customer(
                tx, scope, customer_id, missing=NotFoundError("customer", customer_id)
            )
        elif not await customer_exists(tx, scope, customer_id, lock=Lock.SHARE):
            # Checked first: a missing customer is the answer, not its token's.
            raise NotFoundError("customer", customer_id)
    if terms.token_id is not None and not await token_of_customer(
        tx, scope, terms.token_id, terms.customer_id
    ):
        # Another customer's token is as unknown as a token of another project.
        raise NotFoundError("token", terms.token_id)


def new_invoice(
    scope: Scope, data: InvoiceInput, *, invoice_id: str, transaction_id: str, now: int
) -> Invoice:
    rules.check_tax_within(data.amount, data.tax)
    terms_fields = {f: getattr(data, f) for f in InvoiceTerms.__struct_fields__}
    return Invoice(
        id=invoice_id,
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        transaction_id=transaction_id,
        state=InvoiceState.PENDING,
        version=1,
        created_at=now,
        updated_at=now,
        terms=InvoiceTerms(**terms_fields),
        lines=_with_ids(data.lines),
    )


async def insert_invoice(tx: Tx, invoice: Invoice) -> None:
    # A taken handle surfaces as a UniqueViolation here or at commit: settle.unique says which.
    await tx.execute(_INSERT, *_invoice_values(invoice))


def invoice_part(where: str) -> Part:
    """The invoice that ``where`` finds (a condition on ``invoices i``), as a part of a
    ``settle.db.queries.union_of`` statement (read back with ``from_part``): for a caller that
    reads the invoice beside other things in one statement."""
    return Part(
        _STORED, tuple(f"i.{c}" for c in _STORED), ("invoices i",), f"FROM invoices i WHERE {where}"
    )


def from_part(rows: list[dict[str, Any]]) -> Invoice | None:
    """The invoice of ``invoice_part``'s rows (None: none was found)."""
    return _from_row(rows[0]) if rows else None


async def get_invoice(
    tx: Tx,
    scope: Scope,
    ref: str,
    *,
    by: Literal["id", "handle"] = "id",
    lock: Lock = Lock.NONE,
) -> Invoice:
    """The invoice whose id (or, ``by="handle"``, handle) is ``ref``, in ``scope``, with its
    lines. ``lock`` holds the row until the transaction ends, for a check-then-write."""
    row = await scoped_row(
        tx, "invoices", _COLUMNS, scope, ref, by=by, where=f" AND {_ALIVE}", lock=lock
    )
    if row is None:
        raise NotFoundError("invoice", ref)
    return _from_row(row)


async def lock_version(tx: Tx, scope: Scope, invoice_id: str) -> int | None:
    """The invoice's version, its row locked until the transaction ends (None: no such live
    invoice). For a caller that kept what it read under an earlier lock and needs to know only
    whether anything was written since (see ``touch``)."""
    row = await scoped_row(
        tx, "invoices", "version", scope, invoice_id, where=f" AND {_ALIVE}", lock=Lock.UPDATE
    )
    return None if row is None else int(row["version"])


async def list_invoices(tx: Tx, scope: Scope, query: PageQuery) -> tuple[list[Invoice], bool]:
    rows, has_more, _ = await fetch_page(
        tx, table="invoices", columns=_COLUMNS, scope=scope, query=query, live=_ALIVE
    )
    return [_from_row(r) for r in rows], has_more


async def list_invoice_versions(
    tx: Tx, scope: Scope, query: PageQuery
) -> tuple[list[tuple[str, int]], bool]:
    """One page as (id, version) pairs only: for callers that cache what they render."""
    rows, has_more, _ = await fetch_page(
        tx, table="invoices", columns="id, version", scope=scope, query=query, live=_ALIVE
    )
    return [(r["id"], r["version"]) for r in rows], has_more


async def get_invoices(tx: Tx, scope: Scope, invoice_ids: list[str]) -> dict[str, Invoice]:
    """Batch load with lines, in one statement, scoped; ids of other projects are absent."""
    rows = await scoped_rows(tx, "invoices", _COLUMNS, scope, invoice_ids, f" AND {_ALIVE}")
    return {r["id"]: _from_row(r) for r in rows}


async def lock_unpaid(tx: Tx, scope: Scope, invoice_id: str, action: str) -> Invoice:
    """The invoice, locked until the transaction ends, if it may still change (nobody paid or
    authorized it); a ConflictError naming ``action`` otherwise."""
    invoice = await get_invoice(tx, scope, invoice_id, lock=Lock.UPDATE)
    if not invoice.is_open:
        raise ConflictError(
            f"The invoice {invoice_id!r} cannot be {action}: it is {invoice.state}.",
            code=ErrorCode.INVOICE_ALREADY_USED,
        )
    return invoice


async def apply_changes(tx: Tx, invoice: Invoice, changes: InvoiceChanges) -> Invoice:
    """Write ``changes`` to ``invoice`` (locked by the caller); returns the new version."""
    terms = invoice.terms
    rules.check_changes(changes, terms)
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
    updated = msgspec.structs.replace(
        invoice,
        updated_at=now_us(),
        version=invoice.version + 1,
        terms=msgspec.structs.replace(terms, **updates),
        lines=lines,
    )
    rules.check_vat_within(updated)
    if changes.tax is not None:
        # Lines carrying VAT rates are the tax both dialects show (vat.stated_tax): another
        # one stored beside them would be shown by neither.
        rules.check_tax_of_lines(changes.tax, lines)
    t = updated.terms
    await tx.execute(
        "UPDATE invoices SET amount = $2, tax_amount = $3, tax_rate = $4, shipping_amount = $5,"
        " attributes = $6, updated_at = $7, version = $8, lines = $9 WHERE id = $1",
        invoice.id,
        t.amount,
        t.tax.amount if t.tax else None,
        t.tax.rate if t.tax else None,
        t.shipping_amount,
        dump_json(t.attributes),
        updated.updated_at,
        updated.version,
        dump_json(lines),
    )
    return updated


async def set_customer(tx: Tx, scope: Scope, invoice: Invoice, customer_id: str) -> Invoice:
    """Point ``invoice`` (locked by the caller) at another customer of its scope."""
    if not await customer_exists(tx, scope, customer_id, lock=Lock.SHARE):
        raise NotFoundError("customer", customer_id)
    updated = msgspec.structs.replace(
        invoice,
        updated_at=now_us(),
        version=invoice.version + 1,
        terms=msgspec.structs.replace(invoice.terms, customer_id=customer_id),
    )
    await tx.execute(
        "UPDATE invoices SET customer_id = $2, updated_at = $3, version = $4 WHERE id = $1",
        invoice.id,
        customer_id,
        updated.updated_at,
        updated.version,
    )
    return updated


_SET_STATE: Final = "UPDATE invoices SET state = $2, updated_at = $3, version = $4 WHERE id = $1"
_TOUCH: Final = "UPDATE invoices SET version = $2 WHERE id = $1"


async def _bump(tx: Tx, sql: str, args: tuple[Any, ...], conflict: Exception | None) -> None:
    """Write a new version of an invoice (its new version is the last of ``args``); with a
    ``conflict``, only if the row's version is still the one before it (``Tx.guard``)."""
    if conflict is None:
        await tx.execute(sql, *args)
        return
    await tx.guard(f"{sql} AND version = ${len(args) + 1}", *args, args[-1] - 1, conflict=conflict)


async def set_state(
    tx: Tx, invoice: Invoice, state: InvoiceState, *, conflict: Exception | None = None
) -> Invoice:
    """Move ``invoice`` (locked by the caller) to ``state``: its payment moved it.
    ``conflict``: the caller read ``invoice`` without its lock; raised (nothing written) if its
    version is no longer ``invoice.version`` (``Tx.guard``)."""
    updated = msgspec.structs.replace(
        invoice, state=state, updated_at=now_us(), version=invoice.version + 1
    )
    args = (invoice.id, state.value, updated.updated_at, updated.version)
    await _bump(tx, _SET_STATE, args, conflict)
    return updated


async def touch(tx: Tx, invoice: Invoice, *, conflict: Exception | None = None) -> Invoice:
    """A new version of ``invoice`` (locked by the caller) whose own columns stay: its payment
    (transaction or operations log) changed. Every writer of the payment bumps the version so,
    and a payment's last step trusts what its first step read when the version is unchanged
    (settle.billing.payments). ``conflict``: as ``set_state``'s."""
    updated = msgspec.structs.replace(invoice, version=invoice.version + 1)
    await _bump(tx, _TOUCH, (invoice.id, updated.version), conflict)
    return updated


async def mark_deleted(tx: Tx, invoice: Invoice) -> None:
    """Delete ``invoice`` (locked by the caller): its lines go; its row stays, marked, as the
    place of any list cursor that names it."""
    now = now_us()
    await tx.execute(
        "UPDATE invoices SET deleted_at = $2, updated_at = $2, version = $3, lines = '[]'"
        " WHERE id = $1",
        invoice.id,
        now,
        invoice.version + 1,
    )


async def _set_json(tx: Tx, invoice: Invoice, column: str, value: Any, **terms: Any) -> Invoice:
    updated = msgspec.structs.replace(
        invoice,
        updated_at=now_us(),
        version=invoice.version + 1,
        terms=msgspec.structs.replace(invoice.terms, **terms),
    )
    # ``column`` is one of the two below, never input.
    await tx.execute(
        f"UPDATE invoices SET {column} = $2, updated_at = $3, version = $4 WHERE id = $1",
        invoice.id,
        dump_json(value),
        updated.updated_at,
        updated.version,
    )
    return updated


async def set_metadata(tx: Tx, invoice: Invoice, metadata: dict[str, str]) -> Invoice:
    """Replace the metadata of ``invoice`` (locked by the caller). Metadata describes: it may
    change in any state of the invoice."""
    return await _set_json(tx, invoice, "metadata", metadata, metadata=metadata)


async def set_attribute(tx: Tx, invoice: Invoice, name: str, value: Any) -> Invoice:
    """Set one descriptive attribute (an address, ...) of ``invoice`` (locked by the caller),
    in any state."""
    attributes = {**invoice.terms.attributes, name: value}
    return await _set_json(tx, invoice, "attributes", attributes, attributes=attributes)
