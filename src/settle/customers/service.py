"""Customer operations. Services never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

import msgspec

from settle import validation
from settle.clock import now_us
from settle.customers.models import FIELD_NAMES, Customer, CustomerFields, Phone
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.db.queries import scoped_row, scoped_rows, token_of_customer
from settle.errors import DuplicateError, ErrorCode, NotFoundError, invalid
from settle.events.outbox import record
from settle.events.types import EventType
from settle.ids import could_exist, new_id
from settle.listing import PageQuery, fetch_page
from settle.money import currency_code
from settle.projects.models import Scope

_JSON_FIELDS: Final = frozenset({"phone", "metadata"})
_COLUMNS: Final = ", ".join(
    ("id", "project_id", "sandbox", "created_at", "updated_at", *FIELD_NAMES)
)
_ALIVE: Final = "deleted_at IS NULL"
_LIVE: Final = f" AND {_ALIVE}"
_INSERT: Final = (
    f"INSERT INTO customers ({_COLUMNS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, 6 + len(FIELD_NAMES)))})"
)


def _from_row(row: Row) -> Customer:
    values: dict[str, Any] = {name: row[name] for name in FIELD_NAMES}
    phone = load_json(values["phone"])
    values["phone"] = Phone(**phone) if phone is not None else None
    values["metadata"] = load_json(values["metadata"]) or {}
    if values["is_business"] is not None:
        values["is_business"] = bool(values["is_business"])
    return Customer(
        id=row["id"],
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **values,
    )


def _column_value(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS and value is not None:
        return dump_json(value)
    return value


def check_fields(fields: CustomerFields) -> CustomerFields:
    """Validate and normalise; returns a copy with normalised values."""
    changes: dict[str, Any] = {}
    if fields.email is not None:
        changes["email"] = validation.email(fields.email, "email")
    if fields.country_code is not None:
        changes["country_code"] = validation.country_code(fields.country_code, "country_code")
    if fields.ip_address is not None:
        changes["ip_address"] = validation.ip_address(fields.ip_address, "ip_address")
    if fields.currency is not None:
        changes["currency"] = currency_code(fields.currency)
    return msgspec.structs.replace(fields, **changes) if changes else fields


async def create_customer(tx: Tx, scope: Scope, fields: CustomerFields) -> Customer:
    fields = check_fields(fields)
    now = now_us()
    values = msgspec.structs.asdict(fields)
    if values["metadata"] is None:
        values["metadata"] = {}
    customer = Customer(
        id=new_id("cust_"),
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        created_at=now,
        updated_at=now,
        **values,
    )
    if customer.default_token_id is not None:
        # A new customer has no tokens yet: no token id can be its default.
        raise NotFoundError("token", customer.default_token_id)
    if customer.handle is not None:
        await _ensure_handle_free(tx, scope, customer.handle)
    # A handle taken concurrently surfaces as a UniqueViolation here or at commit:
    # settle.unique turns it into the same DuplicateError as the check above.
    await tx.execute(
        _INSERT,
        customer.id,
        scope.project_id,
        scope.sandbox,
        now,
        now,
        *(_column_value(n, getattr(customer, n)) for n in FIELD_NAMES),
    )
    await record(tx, scope, EventType.CUSTOMER_CREATED, of=customer)
    return customer


async def _ensure_handle_free(tx: Tx, scope: Scope, handle: str) -> None:
    taken = await tx.fetchval(
        "SELECT 1 FROM customers WHERE project_id = $1 AND sandbox = $2 AND handle = $3",
        scope.project_id,
        scope.sandbox,
        handle,
    )
    if taken:
        raise DuplicateError(
            f"handle: a customer with handle {handle!r} already exists.",
            code=ErrorCode.CUSTOMER_DUPLICATE_HANDLE,
            field="handle",
        )


async def get_customer(
    tx: Tx,
    scope: Scope,
    ref: str,
    *,
    by: Literal["id", "handle"] = "id",
    lock: Lock = Lock.NONE,
) -> Customer:
    """The live customer whose id (or, ``by="handle"``, handle) is ``ref``, in ``scope``.
    ``lock``: hold the row until the transaction ends, for a check-then-write."""
    row = await scoped_row(tx, "customers", _COLUMNS, scope, ref, by=by, where=_LIVE, lock=lock)
    if row is None:
        raise NotFoundError("customer", ref)
    return _from_row(row)


async def get_customers(tx: Tx, scope: Scope, ids: Iterable[str]) -> dict[str, Customer]:
    """Batch load for ``expand`` on lists: one query, however many ids."""
    rows = await scoped_rows(tx, "customers", _COLUMNS, scope, ids, _LIVE)
    return {row["id"]: _from_row(row) for row in rows}


async def customer_exists(
    tx: Tx, scope: Scope, customer_id: str, *, lock: Lock = Lock.NONE
) -> bool:
    """Whether the customer is live. ``Lock.SHARE`` keeps it so until the transaction ends."""
    row = await scoped_row(tx, "customers", "1", scope, customer_id, where=_LIVE, lock=lock)
    return row is not None


_LIVE_ROW: Final = (
    f"SELECT 1 FROM customers WHERE id = $1 AND project_id = $2 AND sandbox = $3{_LIVE}"
)


async def hold_customer(
    tx: Tx, scope: Scope, customer_id: str, *, missing: Exception, handle: str | None = None
) -> None:
    """What the transaction writes needs the customer live: it writes nothing, and raises
    ``missing``, unless the customer is live, and a concurrent delete waits for it to end (so
    the delete's answer counts what this wrote). Like ``customer_exists(lock=Lock.SHARE)``,
    but on PostgreSQL checked with the writes, in their one statement: an invoice for a
    customer is then one round trip, not four (``Tx.require``). ``handle``: and it still has
    this handle (for a ``HandleHints`` hint: no API changes a handle today, and a hint must
    not outlive such a change if one ever comes)."""
    if not could_exist(customer_id):
        raise missing
    if handle is None:
        await tx.require(_LIVE_ROW, customer_id, scope.project_id, scope.sandbox, missing=missing)
        return
    await tx.require(
        _LIVE_ROW + " AND handle = $4",
        customer_id,
        scope.project_id,
        scope.sandbox,
        handle,
        missing=missing,
    )


async def list_customers(tx: Tx, scope: Scope, query: PageQuery) -> tuple[list[Customer], bool]:
    rows, has_more, _ = await fetch_page(
        tx, table="customers", columns=_COLUMNS, scope=scope, query=query, live=_ALIVE
    )
    return [_from_row(r) for r in rows], has_more


async def update_customer(
    tx: Tx, scope: Scope, customer_id: str, fields: CustomerFields
) -> Customer:
    # Locked: the checks below read the stored currency and balance, and a concurrent update
    # must not change them between the check and the write.
    current = await get_customer(tx, scope, customer_id, lock=Lock.UPDATE)
    fields = check_fields(fields)
    changes = {k: v for k, v in msgspec.structs.asdict(fields).items() if v is not None}
    token_id = changes.get("default_token_id")
    if token_id is not None and not await token_of_customer(tx, scope, token_id, customer_id):
        raise NotFoundError("token", token_id)
    if "handle" in changes and changes["handle"] != current.handle:
        await _ensure_handle_free(tx, scope, changes["handle"])
    if (
        changes.get("currency", current.currency) != current.currency
        and current.balance is not None
        and "balance" not in changes
    ):
        # The balance is stored in minor units of its currency: never reinterpret it.
        raise invalid(
            "balance", f"is required to change the currency of a balance in {current.currency}."
        )
    if not changes:
        return current
    updated = msgspec.structs.replace(current, updated_at=now_us(), **changes)
    names = sorted(changes)
    assignments = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=3))
    await tx.execute(
        f"UPDATE customers SET updated_at = $2, {assignments} WHERE id = $1",
        customer_id,
        updated.updated_at,
        *(_column_value(n, changes[n]) for n in names),
    )
    await record(tx, scope, EventType.CUSTOMER_CHANGED, of=updated)
    return updated


async def set_default_token(
    tx: Tx, scope: Scope, customer_id: str, token_id: str | None
) -> Customer:
    """Make ``token_id`` (a live token of the customer, checked by the caller) the customer's
    default, or none."""
    await tx.execute(
        "UPDATE customers SET default_token_id = $2, updated_at = $3 WHERE id = $1",
        customer_id,
        token_id,
        now_us(),
    )
    updated = await get_customer(tx, scope, customer_id)
    await record(tx, scope, EventType.CUSTOMER_CHANGED, of=updated)
    return updated


async def delete_customer(tx: Tx, scope: Scope, customer_id: str) -> None:
    """Soft delete: invoices and transactions keep pointing at the customer's id."""
    customer = await get_customer(tx, scope, customer_id, lock=Lock.UPDATE)
    await tx.execute(
        "UPDATE customers SET deleted_at = $2, updated_at = $2 WHERE id = $1",
        customer_id,
        now_us(),
    )
    # The customer as it was last: a deleted customer can no longer be read.
    await record(tx, scope, EventType.CUSTOMER_DELETED, of=customer)


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


class HandleHints:
    """Which live customer a handle named when last looked up, per project and mode: a hint
    that spares an invoice for a customer its lookup by handle (on PostgreSQL a round trip of
    its own before the writes; bench/README.md, "Reepay").

    Only a hint: its user still holds the customer (``hold_customer``) with the writes, and
    the check fails if that customer is gone; the hint is then dropped and the request runs
    again with a lookup. That suffices because ids are never reused and a customer's handle
    never changes: a live customer with the id a handle named is still the one it names.
    Bounded (cleared when full); one per running app, for its one database."""

    __slots__ = ("_ids", "_limit")

    def __init__(self, limit: int = 100_000) -> None:
        self._ids: dict[tuple[str, bool, str], str] = {}
        self._limit = limit

    def get(self, scope: Scope, handle: str) -> str | None:
        return self._ids.get((scope.project_id, scope.sandbox, handle))

    def put(self, scope: Scope, handle: str, customer_id: str) -> None:
        if len(self._ids) >= self._limit:
            self._ids.clear()
        self._ids[(scope.project_id, scope.sandbox, handle)] = customer_id

    def drop(self, scope: Scope, handle: str) -> None:
        self._ids.pop((scope.project_id, scope.sandbox, handle), None)
