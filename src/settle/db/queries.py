"""SQL shapes shared by the services, valid on SQLite and PostgreSQL alike, and the two scoped
lookups every resource makes: one object by id (or handle), and many by ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal, NamedTuple

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


class Part(NamedTuple):
    """One SELECT of a ``union_of`` statement. ``columns``: the names its rows are read back
    by (``split_parts``); ``exprs``: the SQL giving each, in that order; ``tables``: the
    tables those name, with their aliases (``"invoices i"``; aliases unique among a
    statement's parts); ``source``: its ``FROM ... WHERE ...``, parameters numbered as in the
    whole statement; ``order``: the SQL its rows are ordered by within the part."""

    columns: tuple[str, ...]
    exprs: tuple[str, ...]
    tables: tuple[str, ...]
    source: str
    order: str = "0"


@lru_cache(maxsize=64)
def union_of(parts: tuple[Part, ...]) -> str:
    """Several SELECTs of different shapes as one statement: one round trip and, on
    PostgreSQL, one snapshot. A part's rows carry NULL in the other parts' columns (UNION
    ALL), ``part`` says whose a row is, and the rows come part by part, each part in its own
    ``order``; ``split_parts`` reads them back. (A read round trip costs the server ~45 us of
    CPU and PostgreSQL 25-45 us: bench/README.md, "What bounds it".)

    The first branch returns no row (``WHERE FALSE``, which the planner folds away): it names
    the statement's columns with every part's own expressions, so that PostgreSQL types each
    column by its table's column. Otherwise a column that is NULL in the first two branches is
    typed ``text`` by their UNION, and the branch that fills it fails to match ("UNION types
    text and boolean cannot be matched")."""
    exprs = [e for p in parts for e in p.exprs]
    tables = [t for p in parts for t in p.tables]
    if any(len(p.exprs) != len(p.columns) for p in parts):
        raise ValueError("a part needs one expression per column")
    branches = [
        "SELECT -1 AS part, 0 AS part_order, "
        + ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
        + f" FROM {', '.join(tables)} WHERE FALSE"
    ]
    at = 0
    for k, part in enumerate(parts):
        values = ["NULL"] * len(exprs)
        values[at : at + len(part.exprs)] = part.exprs
        branches.append(f"SELECT {k}, {part.order}, {', '.join(values)} {part.source}")
        at += len(part.exprs)
    return " UNION ALL ".join(branches) + " ORDER BY part, part_order"


def split_parts(rows: Sequence[Row], parts: Sequence[Part]) -> list[list[dict[str, Any]]]:
    """The rows of a ``union_of(parts)`` statement, as each part's own rows (dicts by its
    ``columns``), in order."""
    keys: list[list[tuple[str, str]]] = []
    at = 0
    for part in parts:
        keys.append([(name, f"c{at + i}") for i, name in enumerate(part.columns)])
        at += len(part.columns)
    found: list[list[dict[str, Any]]] = [[] for _ in parts]
    for row in rows:
        k = row["part"]
        found[k].append({name: row[column] for name, column in keys[k]})
    return found
