"""``settle.listing`` directly, on each backend, over a small table of its own: the order, the
cursors both ways, ``has_more`` at every page boundary, unknown and deleted cursors, and the
limits of ``PageQuery``. Every page is read in ``read(one_statement=True)``, which also holds
``fetch_page`` to its promise of one statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from settle.db.database import Database
from settle.errors import ValidationError
from settle.ids import new_id
from settle.listing import DEFAULT_LIMIT, MAX_LIMIT, PageQuery, fetch_page
from settle.projects.models import Scope
from tests.domain_fixtures import domain_db_fixture, execute, other_mode  # noqa: F401

TABLE = "listing_items"
LIVE = "deleted_at IS NULL"
# The shape of every listed table (settle.db.schema): seq in insertion order, a public id,
# the scope, a deletion mark.
DDL = {
    "sqlite": "seq INTEGER PRIMARY KEY",
    "postgresql": "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
}


@pytest.fixture(name="db", scope="module")
async def db_fixture(domain_db: Database) -> AsyncIterator[Database]:
    await execute(
        domain_db,
        f"CREATE TABLE {TABLE} ({DDL[domain_db.backend]}, id TEXT NOT NULL UNIQUE,"
        " project_id TEXT NOT NULL, sandbox BOOLEAN NOT NULL, deleted_at BIGINT,"
        " pending BOOLEAN NOT NULL DEFAULT FALSE)",
    )
    yield domain_db


def fresh_scope() -> Scope:
    return Scope(project_id=new_id("proj_"), sandbox=True)


async def add(db: Database, scope: Scope, count: int) -> list[str]:
    """``count`` rows in ``scope``, oldest first, in one statement (one row per VALUES tuple,
    numbered in their order on both backends)."""
    ids = [new_id("it_") for _ in range(count)]
    if ids:
        values = ", ".join(f"(${3 * i + 1}, ${3 * i + 2}, ${3 * i + 3})" for i in range(count))
        args = [a for i in ids for a in (i, scope.project_id, scope.sandbox)]
        await execute(db, f"INSERT INTO {TABLE} (id, project_id, sandbox) VALUES {values}", *args)
    return ids


async def delete(db: Database, *ids: str) -> None:
    for row_id in ids:
        await execute(db, f"UPDATE {TABLE} SET deleted_at = 1 WHERE id = $1", row_id)


async def page(
    db: Database, scope: Scope, *, live: str = LIVE, **query: Any
) -> tuple[list[str], bool]:
    async with db.read(one_statement=True) as tx:
        rows, has_more, _ = await fetch_page(
            tx, table=TABLE, columns="id, seq", scope=scope, query=PageQuery(**query), live=live
        )
    return [r["id"] for r in rows], has_more


async def stable_page(db: Database, scope: Scope, **query: Any) -> tuple[list[str], bool, bool]:
    """A page of the rows below a horizon: here, those not ``pending``."""
    async with db.read(one_statement=True) as tx:
        rows, has_more, held_back = await fetch_page(
            tx,
            table=TABLE,
            columns="id",
            scope=scope,
            query=PageQuery(**query),
            live=LIVE,
            horizon="NOT pending",
        )
    return [r["id"] for r in rows], has_more, held_back


# --- order and cursors ----------------------------------------------------------------------


async def test_pages_in_both_orders_with_cursors_both_ways(db: Database) -> None:
    scope = fresh_scope()
    a, b, c, d, e = await add(db, scope, 5)
    await add(db, fresh_scope(), 2)  # never listed here
    await add(db, other_mode(scope), 2)

    assert await page(db, scope) == ([e, d, c, b, a], False)
    assert await page(db, scope, order="asc") == ([a, b, c, d, e], False)

    assert await page(db, scope, limit=2) == ([e, d], True)
    assert await page(db, scope, limit=2, start_after=d) == ([c, b], True)
    assert await page(db, scope, limit=2, start_after=b) == ([a], False)
    assert await page(db, scope, limit=2, end_before=a) == ([c, b], True)
    assert await page(db, scope, limit=2, end_before=c) == ([e, d], False)
    assert await page(db, scope, start_after=a) == ([], False)
    assert await page(db, scope, end_before=e) == ([], False)

    assert await page(db, scope, limit=2, order="asc") == ([a, b], True)
    assert await page(db, scope, limit=2, order="asc", start_after=b) == ([c, d], True)
    assert await page(db, scope, limit=2, order="asc", start_after=d) == ([e], False)
    assert await page(db, scope, limit=2, order="asc", end_before=e) == ([c, d], True)
    assert await page(db, scope, limit=2, order="asc", end_before=c) == ([a, b], False)
    assert await page(db, scope, order="asc", start_after=e) == ([], False)
    assert await page(db, scope, order="asc", end_before=a) == ([], False)


async def test_has_more_is_false_on_a_last_page_that_is_exactly_full(db: Database) -> None:
    scope = fresh_scope()
    a, b, c, d = await add(db, scope, 4)
    assert await page(db, scope, limit=4) == ([d, c, b, a], False)
    assert await page(db, scope, limit=3) == ([d, c, b], True)
    assert await page(db, scope, limit=2) == ([d, c], True)
    assert await page(db, scope, limit=2, start_after=c) == ([b, a], False)
    assert await page(db, scope, limit=2, end_before=b) == ([d, c], False)
    assert await page(db, scope, limit=3, start_after=d) == ([c, b, a], False)
    assert await page(db, scope, limit=3, end_before=a) == ([d, c, b], False)


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_walking_every_page_both_ways_visits_each_row_once(
    db: Database, order: str, limit: int
) -> None:
    for count in range(7):
        scope = fresh_scope()
        ids = await add(db, scope, count)
        listing = ids if order == "asc" else ids[::-1]
        assert await page(db, scope, order=order, limit=MAX_LIMIT) == (listing, False)

        seen: list[str] = []  # forward, from the start
        cursor: dict[str, str] = {}
        while True:
            got, has_more = await page(db, scope, order=order, limit=limit, **cursor)
            seen += got
            if not has_more:
                assert 0 < len(got) <= limit or not listing
                break
            assert len(got) == limit
            cursor = {"start_after": got[-1]}
        assert seen == listing, (count, limit)

        if not listing:
            continue
        back: list[str] = []  # backward, from the last row
        cursor = {"end_before": listing[-1]}
        while True:
            got, has_more = await page(db, scope, order=order, limit=limit, **cursor)
            back = got + back
            if not has_more:
                assert len(got) <= limit
                break
            assert len(got) == limit
            cursor = {"end_before": got[0]}
        assert back == listing[:-1], (count, limit)


async def test_the_largest_page_and_its_boundary(db: Database) -> None:
    scope = fresh_scope()
    ids = await add(db, scope, MAX_LIMIT + 1)
    got, has_more = await page(db, scope, order="asc", limit=MAX_LIMIT)
    assert (got, has_more) == (ids[:MAX_LIMIT], True)
    assert await page(db, scope, order="asc", limit=MAX_LIMIT, start_after=got[-1]) == (
        ids[MAX_LIMIT:],
        False,
    )
    assert await page(db, scope) == (ids[::-1][:DEFAULT_LIMIT], True)


async def test_rows_inserted_in_one_transaction_list_in_insertion_order(db: Database) -> None:
    """``seq`` is insertion order (settle.listing), also within one transaction: several objects
    made by one request must list as they were made, on both backends."""
    scope = fresh_scope()
    ids = [new_id("it_") for _ in range(4)]
    async with db.write() as tx:
        for row_id in ids:
            await tx.execute(
                f"INSERT INTO {TABLE} (id, project_id, sandbox) VALUES ($1, $2, $3)",
                row_id,
                scope.project_id,
                scope.sandbox,
            )
    assert await page(db, scope, order="asc") == (ids, False)


# --- a horizon ------------------------------------------------------------------------------


async def test_rows_beyond_a_horizon_are_held_back_and_said_to_be_when_on_the_page(
    db: Database,
) -> None:
    """Rows beyond the horizon (the newest, as a transaction id horizon leaves them) are not
    listed; ``held_back`` says whether they would have been on the page: walking towards them
    always, walking away only on a page that is not full. A row beyond it still anchors a
    page as a cursor. Deleted rows beyond it hold nothing back."""
    scope = fresh_scope()
    a, b, c, d, e, f = await add(db, scope, 6)
    await execute(db, f"UPDATE {TABLE} SET pending = TRUE WHERE id IN ($1, $2, $3)", d, e, f)
    await delete(db, f)

    assert await stable_page(db, scope) == ([c, b, a], False, True)
    assert await stable_page(db, scope, limit=2) == ([c, b], True, True)
    assert await stable_page(db, scope, order="asc") == ([a, b, c], False, True)
    assert await stable_page(db, scope, order="asc", limit=2) == ([a, b], True, False)
    assert await stable_page(db, scope, order="asc", limit=3) == ([a, b, c], False, True)
    assert await stable_page(db, scope, order="asc", start_after=b) == ([c], False, True)
    assert await stable_page(db, scope, order="asc", start_after=d) == ([], False, True)
    assert await stable_page(db, scope, order="asc", start_after=e) == ([], False, False)
    assert await stable_page(db, scope, start_after=e) == ([c, b, a], False, True)
    assert await stable_page(db, scope, start_after=d, limit=1) == ([c], True, False)
    assert await stable_page(db, scope, end_before=b) == ([c], False, True)
    assert await stable_page(db, scope, order="asc", end_before=e) == ([a, b, c], False, True)
    assert await stable_page(db, scope, order="asc", end_before=c, limit=1) == ([b], True, False)

    await execute(db, f"UPDATE {TABLE} SET pending = FALSE WHERE id IN ($1, $2)", d, e)
    assert await stable_page(db, scope) == ([e, d, c, b, a], False, False)
    assert await stable_page(db, scope, order="asc", start_after=c) == ([d, e], False, False)


# --- refused cursors ------------------------------------------------------------------------


async def test_a_cursor_that_is_not_a_row_of_this_listing_is_refused(db: Database) -> None:
    scope = fresh_scope()
    await add(db, scope, 3)
    (theirs,) = await add(db, fresh_scope(), 1)
    (other_modes,) = await add(db, other_mode(scope), 1)
    (deleted_theirs,) = await add(db, fresh_scope(), 1)
    await delete(db, deleted_theirs)
    for cursor in (theirs, other_modes, deleted_theirs, "it_unknown", "it_\x00", "x" * 200):
        for field in ("start_after", "end_before"):
            for order in ("asc", "desc"):
                with pytest.raises(ValidationError) as info:
                    await page(db, scope, order=order, **{field: cursor})
                assert info.value.code == "request.validation.invalid-cursor"
                assert info.value.field == field
                assert info.value.message.startswith(f"{field}: ")


async def test_a_cursor_in_an_empty_listing_is_refused(db: Database) -> None:
    with pytest.raises(ValidationError) as info:
        await page(db, fresh_scope(), start_after="it_unknown")
    assert info.value.code == "request.validation.invalid-cursor"


# --- deleted rows ---------------------------------------------------------------------------


async def test_a_deleted_cursor_row_still_anchors_the_page(db: Database) -> None:
    scope = fresh_scope()
    a, b, c, d, e = await add(db, scope, 5)
    await delete(db, c)

    assert await page(db, scope) == ([e, d, b, a], False)
    assert await page(db, scope, live="") == ([e, d, c, b, a], False)
    assert await page(db, scope, limit=2, start_after=c) == ([b, a], False)
    assert await page(db, scope, limit=1, start_after=c) == ([b], True)
    assert await page(db, scope, limit=2, end_before=c) == ([e, d], False)
    assert await page(db, scope, limit=1, end_before=c) == ([d], True)
    assert await page(db, scope, order="asc", start_after=c) == ([d, e], False)
    assert await page(db, scope, order="asc", end_before=c) == ([a, b], False)


async def test_deleted_rows_are_skipped_and_not_counted_against_the_limit(db: Database) -> None:
    scope = fresh_scope()
    a, b, c, d, e = await add(db, scope, 5)
    await delete(db, b, d)
    assert await page(db, scope, limit=2) == ([e, c], True)
    assert await page(db, scope, limit=2, start_after=c) == ([a], False)
    assert await page(db, scope, limit=2, start_after=e) == ([c, a], False)
    assert await page(db, scope, limit=2, end_before=a) == ([e, c], False)
    assert await page(db, scope, limit=1, end_before=a) == ([c], True)


async def test_a_deleted_cursor_with_nothing_live_beyond_it(db: Database) -> None:
    scope = fresh_scope()
    a, b, c = await add(db, scope, 3)
    await delete(db, a, b)
    assert await page(db, scope, start_after=b) == ([], False)
    assert await page(db, scope, end_before=b) == ([c], False)
    await delete(db, c)
    assert await page(db, scope) == ([], False)
    assert await page(db, scope, end_before=b) == ([], False)


# --- PageQuery ------------------------------------------------------------------------------


def test_page_query_defaults() -> None:
    query = PageQuery()
    assert (query.limit, query.order, query.start_after, query.end_before) == (
        DEFAULT_LIMIT,
        "desc",
        None,
        None,
    )


@pytest.mark.parametrize("limit", [1, 2, MAX_LIMIT])
def test_page_query_accepts_limits_within_bounds(limit: int) -> None:
    assert PageQuery(limit=limit).limit == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, 10**9])
def test_page_query_refuses_limits_out_of_bounds(limit: int) -> None:
    with pytest.raises(ValidationError) as info:
        PageQuery(limit=limit)
    assert (info.value.code, info.value.field) == ("request.validation.invalid-limit", "limit")


def test_page_query_refuses_both_cursors_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        PageQuery(start_after="it_a", end_before="it_b")
    assert info.value.code == "request.validation.conflicting-cursors"
    assert info.value.field == "start_after"
