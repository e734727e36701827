"""``union_of`` / ``split_parts``: several reads of different shapes in one statement, on both
backends (a payment step reads its invoice, lines, transaction, log and card this way)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from settle.db.database import Database
from settle.db.queries import Part, split_parts, union_of
from tests.db.support import scratch_database

DDL = [
    "CREATE TABLE shelf (id TEXT PRIMARY KEY, name TEXT NOT NULL, size BIGINT NOT NULL)",
    "CREATE TABLE book (id TEXT PRIMARY KEY, shelf_id TEXT NOT NULL, position INTEGER NOT NULL,"
    " title TEXT NOT NULL, pages BIGINT)",
    "CREATE TABLE flag (id TEXT PRIMARY KEY, shelf_id TEXT NOT NULL, seq BIGINT NOT NULL,"
    " up BOOLEAN NOT NULL)",
]

SHELF = Part(
    ("id", "name", "size"),
    ("s.id", "s.name", "s.size"),
    ("shelf s",),
    "FROM shelf s WHERE s.id = $1",
)
BOOKS = Part(
    ("id", "title", "pages"),
    ("b.id", "b.title", "b.pages"),
    ("book b",),
    "FROM book b WHERE b.shelf_id = $1",
    order="b.position",
)
# A boolean column that is NULL in the two branches before its own: PostgreSQL typed such a
# column `text` (the UNION of two NULLs) and refused the boolean ("UNION types text and
# boolean cannot be matched") until the first branch named every part's own expressions.
FLAGS = Part(
    ("id", "up"),
    ("f.id", "f.up"),
    ("flag f",),
    "FROM flag f WHERE f.shelf_id = $1 AND f.seq >= $2",
    order="f.seq",
)
PARTS = (SHELF, BOOKS, FLAGS)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async for database in scratch_database(request.param, tmp_path, "querytest", DDL):
        async with database.write() as tx:
            await tx.execute("INSERT INTO shelf VALUES ($1, $2, $3)", "s1", "left", 2**40)
            await tx.execute("INSERT INTO shelf VALUES ($1, $2, $3)", "s2", "right", 1)
            # Inserted out of order: each part comes back in its own order.
            for book, position, pages in (("b3", 3, None), ("b1", 1, 120), ("b2", 2, 7)):
                await tx.execute(
                    "INSERT INTO book VALUES ($1, $2, $3, $4, $5)",
                    book,
                    "s1",
                    position,
                    book.upper(),
                    pages,
                )
            await tx.execute("INSERT INTO book VALUES ($1, $2, $3, $4, $5)", "x", "s2", 1, "X", 1)
            for flag, seq, up in (("f2", 20, False), ("f1", 10, True), ("f0", 0, True)):
                await tx.execute("INSERT INTO flag VALUES ($1, $2, $3, $4)", flag, "s1", seq, up)
        yield database


async def test_each_part_reads_back_its_own_rows_in_its_own_order(db: Database) -> None:
    async with db.read() as tx:
        rows = await tx.fetch(union_of(PARTS), "s1", 5)
    shelves, books, flags = split_parts(rows, PARTS)
    assert shelves == [{"id": "s1", "name": "left", "size": 2**40}]
    assert books == [
        {"id": "b1", "title": "B1", "pages": 120},
        {"id": "b2", "title": "B2", "pages": 7},
        {"id": "b3", "title": "B3", "pages": None},
    ]
    # SQLite hands booleans back as 0/1.
    assert [(f["id"], bool(f["up"])) for f in flags] == [("f1", True), ("f2", False)]


async def test_a_part_that_finds_nothing_is_empty(db: Database) -> None:
    async with db.read() as tx:
        rows = await tx.fetch(union_of(PARTS), "s2", 0)
        none = await tx.fetch(union_of(PARTS), "nowhere", 0)
    shelves, books, flags = split_parts(rows, PARTS)
    assert [s["id"] for s in shelves] == ["s2"]
    assert [b["id"] for b in books] == ["x"]
    assert flags == []
    assert split_parts(none, PARTS) == [[], [], []]


def test_a_part_needs_an_expression_per_column() -> None:
    with pytest.raises(ValueError, match="one expression per column"):
        union_of((Part(("a", "b"), ("x.a",), ("x x",), "FROM x x"),))
