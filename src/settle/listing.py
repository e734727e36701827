"""Cursor pagination over a scoped table, shared by every resource and dialect.

Rows are ordered by ``seq`` (insertion order). A cursor is the public id of an object of the
same listing; the cursor itself is excluded. ``desc`` (newest first) is the default.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from settle.db.database import Row, Tx
from settle.errors import ValidationError
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
                code="request.validation.conflicting-cursors",
                field="start_after",
            )
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationError(
                f"limit: must be between 1 and {MAX_LIMIT} (0 means the default, {DEFAULT_LIMIT}).",
                code="request.validation.invalid-limit",
                field="limit",
            )


async def fetch_page(
    tx: Tx,
    *,
    table: str,
    columns: str,
    scope: Scope,
    query: PageQuery,
    live_only: str = "",
) -> tuple[list[Row], bool]:
    """One page of ``table`` rows in ``scope``; returns (rows in listing order, has_more).

    ``table``, ``columns`` and ``live_only`` are SQL fragments from the code, never from input.
    """
    where = f"project_id = $1 AND sandbox = $2{live_only}"
    args: list[Any] = [scope.project_id, scope.sandbox]
    cursor_id = query.start_after or query.end_before
    forward = query.end_before is None  # walking in the listing's own direction
    descending = (query.order == "desc") == forward
    page = where
    if cursor_id:
        field = "start_after" if query.start_after else "end_before"
        if not could_exist(cursor_id):
            raise _bad_cursor(field, cursor_id)
        # The cursor's position is looked up inside the page query (one round trip); only an
        # empty page needs a second look, to tell "nothing after it" from "no such cursor".
        page += (
            f" AND seq {'<' if descending else '>'}"
            f" (SELECT seq FROM {table} WHERE id = $3 AND {where})"
        )
        args.append(cursor_id)
    args.append(query.limit + 1)
    rows = await tx.fetch(
        f"SELECT {columns} FROM {table} WHERE {page}"
        f" ORDER BY seq {'DESC' if descending else 'ASC'} LIMIT ${len(args)}",
        *args,
    )
    if cursor_id and not rows:
        found = await tx.fetchval(
            f"SELECT 1 FROM {table} WHERE id = $3 AND {where}", *args[:2], cursor_id
        )
        if found is None:
            raise _bad_cursor(field, cursor_id)
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if not forward:
        rows.reverse()
    return rows, has_more


def _bad_cursor(field: str, cursor_id: str) -> ValidationError:
    return ValidationError(
        f"{field}: {cursor_id!r} is not an object of this listing.",
        code="request.validation.invalid-cursor",
        field=field,
    )
