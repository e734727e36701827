"""SQL shapes shared by the services, valid on SQLite and PostgreSQL alike, and the two scoped
lookups every resource makes: one object by id (or handle), and many by ids."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from settle.db.database import Lock, Row, Tx
from settle.ids import could_exist
from settle.projects.models import Scope


@lru_cache(maxsize=512)
def rows_by_ids(table: str, columns: str, count: int, where: str = "") -> str:
    """Rows of ``table`` whose id is one of ``$3 .. $(count+2)``, in the scope ``$1`` (project)
    and ``$2`` (sandbox), plus an optional extra ``where`` condition.

    The id lookup is forced to run first (a MATERIALIZED CTE): without statistics SQLite's
    planner prefers the (project_id, sandbox, seq) index and tests every row of the project
    against the id list, milliseconds per call at 10,000 rows and far worse at a million.
    ``table``, ``columns`` and ``where`` are SQL from the code, never from input.
    """
    marks = ", ".join(f"${i}" for i in range(3, 3 + count))
    return (
        f"WITH wanted AS MATERIALIZED (SELECT * FROM {table} WHERE id IN ({marks}))"
        f" SELECT {columns} FROM wanted WHERE project_id = $1 AND sandbox = $2{where}"
    )


async def scoped_row(
    tx: Tx,
    table: str,
    columns: str,
    scope: Scope,
    ref: str,
    *,
    by: Literal["id", "handle"] = "id",
    where: str = "",
    lock: Lock = Lock.NONE,
) -> Row | None:
    """The row of ``table`` whose ``by`` column is ``ref``, in ``scope`` only (another
    project's or mode's row is as absent as a row that never was). An id that cannot be one
    of ours is answered without a query. ``where``: an extra condition, " AND ..."."""
    if by == "id" and not could_exist(ref):
        return None
    return await tx.fetchrow(
        f"SELECT {columns} FROM {table} WHERE {by} = $1 AND project_id = $2 AND sandbox = $3"
        f"{where}",
        ref,
        scope.project_id,
        scope.sandbox,
        lock=lock,
    )


async def scoped_rows(
    tx: Tx, table: str, columns: str, scope: Scope, ids: Iterable[str], where: str = ""
) -> list[Row]:
    """Rows of ``table`` with these ids, in ``scope`` only, in one statement."""
    wanted = sorted({i for i in ids if could_exist(i)})
    if not wanted:
        return []
    return await tx.fetch(
        rows_by_ids(table, columns, len(wanted), where), scope.project_id, scope.sandbox, *wanted
    )


async def token_of_customer(tx: Tx, scope: Scope, token_id: str, customer_id: str | None) -> bool:
    """Whether ``token_id`` is a live token of ``customer_id`` in ``scope``: the one rule by
    which an invoice or a customer may name a token (tokens belong to payments; invoices and
    customers only point at them)."""
    if customer_id is None or not could_exist(token_id):
        return False
    found = await tx.fetchval(
        "SELECT 1 FROM tokens WHERE id = $1 AND customer_id = $2 AND project_id = $3"
        " AND sandbox = $4 AND deleted_at IS NULL",
        token_id,
        customer_id,
        scope.project_id,
        scope.sandbox,
    )
    return found is not None
