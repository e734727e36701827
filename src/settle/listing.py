"""Cursor pagination over a scoped table, shared by every resource and dialect.

Rows are ordered by ``seq`` (insertion order), or by the columns a listing gives (events on
PostgreSQL: their transaction's id, then ``seq``). A cursor is the public id of an object of
the same listing; the cursor itself is excluded. ``desc`` (newest first) is the default.

Deleted objects stay in their tables, marked (``deleted_at``), so a cursor keeps its place after
another client deletes the object it names: a client paging through a list must not be told
its cursor is invalid because of somebody else's delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, NamedTuple

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


class Page(NamedTuple):
    """One page of rows, in listing order."""

    rows: list[Row]
    has_more: bool
    # Committed rows beyond the horizon (see ``fetch_page``) would have been on this page: the
    # page is complete only once the horizon has passed them.
    held_back: bool = False


async def fetch_page(
    tx: Tx,
    *,
    table: str,
    columns: str,
    scope: Scope,
    query: PageQuery,
    live: str = "",
    match: dict[str, Any] | None = None,
    order_by: Sequence[str] = ("seq",),
    horizon: str = "",
) -> Page:
    """One page of ``table`` rows in ``scope``, in listing order, and whether more follow.

    One statement (one snapshot, one round trip), whatever the cursor: the cursor's own row is
    read with the page, deleted or not, and dropped from it; its absence means no such cursor.
    ``columns`` must include ``id``. ``live`` is the condition a listed row meets (e.g.
    ``deleted_at IS NULL``). ``match``: columns the listed rows (and the cursor) must equal,
    e.g. one customer's tokens; its values are parameters. ``order_by``: the columns of the
    listing's order, oldest first (a unique key; an index on the scope then these columns
    serves every page). ``horizon``: the condition a row meets once it can no longer be
    preceded by a row yet to appear (events on PostgreSQL); rows beyond it are not listed,
    except as a cursor, and ``held_back`` says whether committed ones would have been on the
    page. ``table``, ``columns``, ``live``, ``order_by``, ``horizon`` and the names in
    ``match`` are SQL from the code, never from input.
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
    # One column compares as itself, several as a row value (both backends): the index on the
    # scope then these columns serves the range and the order.
    key = order_by[0] if len(order_by) == 1 else f"({', '.join(order_by)})"
    scan = ", ".join(f"{c} {'DESC' if descending else 'ASC'}" for c in order_by)
    page = where  # the rows in range: the scope and the cursor's side
    listed = [live] if live else []  # ... of which these are listed
    beyond_cursor = ""
    limit = query.limit + 1
    if cursor_id:
        field = "start_after" if query.start_after else "end_before"
        if not could_exist(cursor_id):
            raise _bad_cursor(field, cursor_id)
        page += (
            f" AND {key} {'<=' if descending else '>='}"
            f" (SELECT {', '.join(order_by)} FROM {table} WHERE id = {cursor_mark} AND {where})"
        )
        # The cursor's own row is read whatever its state, to tell it from an unknown id.
        listed = [f"({c} OR id = {cursor_mark})" for c in listed]
        if horizon:
            listed.append(f"({horizon} OR id = {cursor_mark})")
            beyond_cursor = f" AND id <> {cursor_mark}"
        args.append(cursor_id)
        limit += 1
    elif horizon:
        listed.append(horizon)
    args.append(limit)
    rank = f", row_number() OVER (ORDER BY {scan}) AS _at" if horizon else ""
    select = (
        f"SELECT {columns}{rank} FROM {table} WHERE {' AND '.join([page, *listed])}"
        f" ORDER BY {scan} LIMIT ${len(args)}"
    )
    if not horizon:
        rows = await tx.fetch(select, *args)
        held = False
    else:
        # The page and whether committed rows in its range are beyond the horizon, in one
        # statement (one snapshot: a horizon read apart could have moved past rows the page
        # did not show). The flag's one row is joined to the page, so an empty page still
        # carries it; ``_at`` (the row's place in the page) keeps the order through the join.
        in_range = " AND ".join([page, *([live] if live else [])])
        found = await tx.fetch(
            "SELECT page.*, held.held_back FROM"
            f" (SELECT EXISTS (SELECT 1 FROM {table} WHERE {in_range}{beyond_cursor}"
            f" AND NOT ({horizon})) AS held_back) AS held"
            f" LEFT JOIN ({select}) AS page ON TRUE ORDER BY page._at",
            *args,
        )
        held = bool(found[0]["held_back"])
        rows = [r for r in found if r["_at"] is not None]
    if cursor_id:
        if not rows or rows[0]["id"] != cursor_id:
            raise _bad_cursor(field, cursor_id)
        rows = rows[1:]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not forward:
        rows.reverse()
    # Rows beyond the horizon sort after every row below it: a scan newest first (``desc``,
    # or ``end_before`` in ``asc``) meets them first; a scan oldest first, only after a page
    # that is not full.
    return Page(rows, has_more, held and (descending or not has_more))


def _bad_cursor(field: str, cursor_id: str) -> ValidationError:
    return ValidationError(
        f"{field}: {cursor_id!r} is not an object of this listing.",
        code=ErrorCode.INVALID_CURSOR,
        field=field,
    )
