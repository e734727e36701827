"""The domain's unique rules, known by the name of the constraint that enforces each, and the
transaction every caller (a request, a CLI command, a worker step) runs its work in.

A rule such as "one customer per handle in a project and mode" is checked by the database, not
by a read before the write: a read cannot see a concurrent request's uncommitted row, and the
constraint can. The violation may surface at a statement (SQLite) or only at commit
(PostgreSQL, whose INSERTs are sent then): so it is translated here, where the transaction
ends, into the same domain error on both backends, and never reaches a client as a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from settle.db.database import Database, Tx, UniqueViolation
from settle.errors import DuplicateError, ErrorCode, SettleError

# constraint name -> (the object, the field whose value is taken, the error code)
RULES: Final[dict[str, tuple[str, str, ErrorCode]]] = {
    "ix_customers_project_id_sandbox_handle": (
        "customer",
        "handle",
        ErrorCode.CUSTOMER_DUPLICATE_HANDLE,
    ),
    "ix_invoices_project_id_sandbox_handle": (
        "invoice",
        "handle",
        ErrorCode.INVOICE_DUPLICATE_HANDLE,
    ),
}


def duplicate_error(violation: UniqueViolation) -> SettleError | None:
    """The domain error for a broken unique rule; None for a constraint no client can break
    (a random id colliding, an idempotency key claimed twice): those stay internal."""
    rule = RULES.get(violation.constraint or "")
    if rule is None:
        return None
    kind, field, code = rule
    article = "an" if kind[0] in "aeiou" else "a"
    return DuplicateError(
        f"{field}: {article} {kind} with this {field} already exists.",
        code=code,
        field=field,
    )


@asynccontextmanager
async def atomic(db: Database) -> AsyncIterator[Tx]:
    """``db.write()``, with a broken unique rule raised as its domain error."""
    try:
        async with db.write() as tx:
            yield tx
    except UniqueViolation as exc:
        error = duplicate_error(exc)
        if error is None:
            raise
        raise error from None
