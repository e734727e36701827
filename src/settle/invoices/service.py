"""Invoice persistence and the invoice's own rules. Validate everything, then mutate; never
commit (the caller does). Operations that move the payment side too (creating an invoice with
its transaction, changing what an unpaid invoice asks for) are ``settle.billing``'s: this
package knows nothing of payments."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final, Literal

import msgspec

from settle.clock import now_us
from settle.customers.service import customer_exists, hold_customer
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.db.queries import Part, rows_by_ids, scoped_row, token_of_customer
from settle.errors import ConflictError, ErrorCode, NotFoundError
from settle.ids import could_exist, new_id
from settle.invoices import rules
from settle.invoices.models import (
    LINE_FIELDS,
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
# Deleted invoices keep their row (marked) so that list cursors naming them stay valid.
_ALIVE: Final = "deleted_at IS NULL"
_SCOPED: Final = f"project_id = $2 AND sandbox = $3 AND {_ALIVE}"
_LINE_ONLY: Final = ("id", "position", *LINE_FIELDS)
# Invoices with their lines in one statement (one statement is one snapshot, and one round
# trip): the invoice rows, then the line rows, each padded with NULLs in the other's columns.
# Not a JOIN: that repeats the invoice (metadata of up to ~400 KB) on every line's row, and
# reading one large invoice of 200 lines cost a worker 90 MiB.
_LINE_HEAD: Final = ("invoice_id", *_LINE_ONLY)
_WITH_LINES: Final = (
    "SELECT 0 AS part, "
    + ", ".join(f"i.{c}" for c in _STORED)
    + ", "
    + ", ".join(f"NULL AS line_{c}" for c in _LINE_HEAD)
    + " FROM {source} WHERE {where}"
    + " UNION ALL SELECT 1, "
    + ", ".join("NULL" for _ in _STORED)
    + ", "
    + ", ".join(f"l.{c}" for c in _LINE_HEAD)
    + " FROM invoice_lines l WHERE l.invoice_id IN (SELECT i.id FROM {source} WHERE {where})"
    + " ORDER BY part, line_invoice_id, line_position"
)


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
    if invoice.lines:
        await tx.executemany(
            _INSERT_LINE, [_line_row(invoice.id, i, line) for i, line in enumerate(invoice.lines)]
        )


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


def _joined(rows: list[Row]) -> dict[str, Invoice]:
    """Invoices from ``_WITH_LINES`` rows (invoices first, then lines by position)."""
    heads: dict[str, Row] = {}
    lines: dict[str, list[InvoiceLine]] = defaultdict(list)
    for row in rows:
        if row["part"] == 0:
            heads[row["id"]] = row
        else:
            lines[row["line_invoice_id"]].append(
                _line_from_row({c: row[f"line_{c}"] for c in _LINE_ONLY if c != "position"})
            )
    return {i: _from_row(row, lines.get(i, [])) for i, row in heads.items()}


def invoice_parts(where: str) -> tuple[Part, Part]:
    """The invoice that ``where`` finds (a condition on ``invoices i``) and its lines, as two
    parts of a ``settle.db.queries.union_of`` statement (read back with ``from_parts``): for
    a caller that reads the invoice beside other things in one statement."""
    return (
        Part(
            _STORED,
            tuple(f"i.{c}" for c in _STORED),
            ("invoices i",),
            f"FROM invoices i WHERE {where}",
        ),
        Part(
            _LINE_ONLY,
            tuple(f"l.{c}" for c in _LINE_ONLY),
            ("invoice_lines l",),
            "FROM invoice_lines l WHERE l.invoice_id IN"
            f" (SELECT i.id FROM invoices i WHERE {where})",
            order="l.position",
        ),
    )


def from_parts(heads: list[dict[str, Any]], lines: list[dict[str, Any]]) -> Invoice | None:
    """The invoice of ``invoice_parts``' rows (None: none was found)."""
    if not heads:
        return None
    return _from_row(
        heads[0], [_line_from_row({c: r[c] for c in _LINE_ONLY if c != "position"}) for r in lines]
    )


async def get_invoice(
    tx: Tx,
    scope: Scope,
    ref: str,
    *,
    by: Literal["id", "handle"] = "id",
    lock: Lock = Lock.NONE,
    lines: bool = True,
) -> Invoice:
    """The invoice whose id (or, ``by="handle"``, handle) is ``ref``, in ``scope``.

    One statement without a lock; ``lock`` holds the row until the transaction ends, for a
    check-then-write (then the lines, which only a holder of that lock changes, follow, unless
    ``lines`` is False: payments lock the invoice but need no lines)."""
    if by == "id" and not could_exist(ref):
        raise NotFoundError("invoice", ref)
    if lock is Lock.NONE:
        found = _joined(
            await tx.fetch(
                _WITH_LINES.format(
                    source="invoices i",
                    where=f"i.{by} = $1 AND i.project_id = $2 AND i.sandbox = $3"
                    " AND i.deleted_at IS NULL",
                ),
                ref,
                scope.project_id,
                scope.sandbox,
            )
        )
        if not found:
            raise NotFoundError("invoice", ref)
        return next(iter(found.values()))
    row = await scoped_row(
        tx, "invoices", _COLUMNS, scope, ref, by=by, where=f" AND {_ALIVE}", lock=lock
    )
    if row is None:
        raise NotFoundError("invoice", ref)
    if not lines:
        return _from_row(row, [])
    by_invoice = await _lines_for(tx, [row["id"]])
    return _from_row(row, by_invoice.get(row["id"], []))


async def lock_version(tx: Tx, scope: Scope, invoice_id: str) -> int | None:
    """The invoice's version, its row locked until the transaction ends (None: no such live
    invoice). For a caller that kept what it read under an earlier lock and needs to know only
    whether anything was written since (see ``touch``)."""
    row = await scoped_row(
        tx, "invoices", "version", scope, invoice_id, where=f" AND {_ALIVE}", lock=Lock.UPDATE
    )
    return None if row is None else int(row["version"])


async def lines_of(tx: Tx, invoice_id: str) -> list[InvoiceLine]:
    return (await _lines_for(tx, [invoice_id])).get(invoice_id, [])


async def list_invoices(tx: Tx, scope: Scope, query: PageQuery) -> tuple[list[Invoice], bool]:
    rows, has_more = await fetch_page(
        tx, table="invoices", columns=_COLUMNS, scope=scope, query=query, live=_ALIVE
    )
    lines = await _lines_for(tx, [r["id"] for r in rows])
    return [_from_row(r, lines.get(r["id"], [])) for r in rows], has_more


async def list_invoice_versions(
    tx: Tx, scope: Scope, query: PageQuery
) -> tuple[list[tuple[str, int]], bool]:
    """One page as (id, version) pairs only: for callers that cache what they render."""
    rows, has_more = await fetch_page(
        tx, table="invoices", columns="id, version", scope=scope, query=query, live=_ALIVE
    )
    return [(r["id"], r["version"]) for r in rows], has_more


async def get_invoices(tx: Tx, scope: Scope, invoice_ids: list[str]) -> dict[str, Invoice]:
    """Batch load with lines, in one statement, scoped; ids of other projects are absent."""
    wanted = sorted({i for i in invoice_ids if could_exist(i)})
    if not wanted:
        return {}
    page = rows_by_ids("invoices", "*", len(wanted), f" AND {_ALIVE}")
    return _joined(
        await tx.fetch(
            _WITH_LINES.format(source=f"({page}) i", where="TRUE"),
            scope.project_id,
            scope.sandbox,
            *wanted,
        )
    )


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
    t = updated.terms
    await tx.execute(
        "UPDATE invoices SET amount = $2, tax_amount = $3, tax_rate = $4, shipping_amount = $5,"
        " attributes = $6, updated_at = $7, version = $8 WHERE id = $1",
        invoice.id,
        t.amount,
        t.tax.amount if t.tax else None,
        t.tax.rate if t.tax else None,
        t.shipping_amount,
        dump_json(t.attributes),
        updated.updated_at,
        updated.version,
    )
    if changes.lines is not None:
        await tx.execute("DELETE FROM invoice_lines WHERE invoice_id = $1", invoice.id)
        if lines:
            await tx.executemany(
                _INSERT_LINE, [_line_row(invoice.id, i, line) for i, line in enumerate(lines)]
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
    await tx.execute("DELETE FROM invoice_lines WHERE invoice_id = $1", invoice.id)
    now = now_us()
    await tx.execute(
        "UPDATE invoices SET deleted_at = $2, updated_at = $2, version = $3 WHERE id = $1",
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
