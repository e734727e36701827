"""Cursor pagination over a scoped table, shared by every resource and dialect.

Rows are ordered by ``seq`` (insertion order). A cursor is the public id of an object of the
same listing; the cursor itself is excluded. ``desc`` (newest first) is the default.

Deleted objects stay in their tables, marked (``deleted_at``), so a cursor keeps its place after
another client deletes the object it names: a client paging through a list must not be told
its cursor is invalid because of somebody else's delete.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from settle.db.database import Row, Tx
from settle.errors import ErrorCode, ValidationError
from settle.ids import could_exist
from settle.projects.models import Scope

MAX_LIMIT: Final = 100
DEFAULT_LIMIT: Final = 10


class PageQuery(msgspec.Struct, frozen=True, kw_only=True):
    limit: int = DEFAULT_LIMIT
    start_after: str | None = None
    end_before: str | None = None
    order: Literal["asc", "desc"] = "desc"

    def __post_init__(self) -> None:
        if self.start_after and self.end_before:
            raise ValidationError(
                "start_after and end_before cannot be used together.",
                code=ErrorCode.CONFLICTING_CURSORS,
                field="start_after",
            )
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationError(
                f"limit: must be between 1 and {MAX_LIMIT} (0 means the default, {DEFAULT_LIMIT}).",
                code=ErrorCode.INVALID_LIMIT,
                field="limit",
            )


async def fetch_page(
    tx: Tx,
    *,
    table: str,
    columns: str,
    scope: Scope,
    query: PageQuery,
    live: str = "",
    match: dict[str, Any] | None = None,
) -> tuple[list[Row], bool]:
    """One page of ``table`` rows in ``scope``; returns (rows in listing order, has_more).

    One statement (one snapshot, one round trip), whatever the cursor: the cursor's own row is
    read with the page, deleted or not, and dropped from it; its absence means no such cursor.
    ``columns`` must include ``id``. ``live`` is the condition a listed row meets (e.g.
    ``deleted_at IS NULL``). ``match``: columns the listed rows (and the cursor) must equal,
    e.g. one customer's tokens; its values are parameters. ``table``, ``columns``, ``live`` and
    the names in ``match`` are SQL from the code, never from input.
    """
    args: list[Any] = [scope.project_id, scope.sandbox]
    where = "project_id = $1 AND sandbox = $2"
    for column, value in (match or {}).items():
        args.append(value)
        where += f" AND {column} = ${len(args)}"
    cursor_mark = f"${len(args) + 1}"
    cursor_id = query.start_after or query.end_before
    forward = not query.end_before  # walking in the listing's own direction
    descending = (query.order == "desc") == forward
    page = f"{where} AND {live}" if live else where
    limit = query.limit + 1
    if cursor_id:
        field = "start_after" if query.start_after else "end_before"
        if not could_exist(cursor_id):
            raise _bad_cursor(field, cursor_id)
        page = (
            f"{where} AND seq {'<=' if descending else '>='}"
            f" (SELECT seq FROM {table} WHERE id = {cursor_mark} AND {where})"
        )
        if live:
            page += f" AND ({live} OR id = {cursor_mark})"
        args.append(cursor_id)
        limit += 1
    args.append(limit)
    rows = await tx.fetch(
        f"SELECT {columns} FROM {table} WHERE {page}"
        f" ORDER BY seq {'DESC' if descending else 'ASC'} LIMIT ${len(args)}",
        *args,
    )
    if cursor_id:
        if not rows or rows[0]["id"] != cursor_id:
            raise _bad_cursor(field, cursor_id)
        rows = rows[1:]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not forward:
        rows.reverse()
    return rows, has_more


def _bad_cursor(field: str, cursor_id: str) -> ValidationError:
    return ValidationError(
        f"{field}: {cursor_id!r} is not an object of this listing.",
        code=ErrorCode.INVALID_CURSOR,
        field=field,
    )
