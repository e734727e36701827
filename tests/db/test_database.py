"""The storage contract, run against both backends: what services rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from settle.db.database import Database, UniqueViolation, connect
from tests.conftest import PG_URL
from tests.pgdb import fresh_database

DDL = [
    "CREATE TABLE parent (id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id),"
    " note TEXT)",
]


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need SETTLE_TEST_DATABASE_URL")
        with fresh_database(PG_URL, "settle_dbtest") as url:
            async for database in _open(url):
                yield database
        return
    async for database in _open(f"sqlite:///{tmp_path / 'contract.db'}"):
        yield database


async def _open(url: str) -> AsyncIterator[Database]:
    database = await connect(url)
    async with database.transaction() as tx:
        for statement in DDL:
            await tx.execute(statement)
    yield database
    await database.close()


async def count(db: Database, table: str) -> int:
    async with db.read() as tx:
        return int(await tx.fetchval(f"SELECT count(*) FROM {table}"))


async def test_commit_makes_writes_visible(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
        await tx.executemany(
            "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)",
            [("c1", "p1", "a"), ("c2", "p1", "b")],
        )
    assert await count(db, "parent") == 1
    assert await count(db, "child") == 2


async def test_reads_inside_a_transaction_see_its_own_writes(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 7)
        row = await tx.fetchrow("SELECT n FROM parent WHERE id = $1", "p1")
        assert row is not None and row["n"] == 7
        await tx.execute("UPDATE parent SET n = n + 1 WHERE id = $1", "p1")
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1 FOR UPDATE", "p1") == 8


async def test_an_error_rolls_back_everything_of_that_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
            await tx.execute("UPDATE parent SET n = 2 WHERE id = $1", "p1")
            raise RuntimeError("validation failed late")
    assert await count(db, "parent") == 0


async def test_a_unique_violation_rejects_the_whole_transaction(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    with pytest.raises(UniqueViolation):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p2", 1)
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    assert await count(db, "parent") == 1


async def test_a_foreign_key_violation_writes_nothing(db: Database) -> None:
    with pytest.raises(Exception):  # noqa: B017 - driver-specific integrity error
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "nope", None
            )
    assert await count(db, "parent") == 0


async def test_concurrent_transactions_each_commit_or_fail_alone(db: Database) -> None:
    async def one(i: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", f"p{i}", i)
            if i % 5 == 0:
                raise ValueError(i)
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", f"c{i}", f"p{i}", "x"
            )

    results = await asyncio.gather(*(one(i) for i in range(1, 101)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, ValueError)]
    assert len(failed) == 20
    assert all(r is None for r in results if not isinstance(r, ValueError))
    assert await count(db, "parent") == 80
    assert await count(db, "child") == 80
    async with db.read() as tx:
        orphans = await tx.fetchval(
            "SELECT count(*) FROM parent WHERE id NOT IN (SELECT parent_id FROM child)"
        )
    assert orphans == 0


async def test_reads_never_see_uncommitted_writes(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
            await tx.execute("UPDATE parent SET n = 2 WHERE id = $1", "p1")
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    assert await count(db, "parent") == 0
    release.set()
    await task
    assert await count(db, "parent") == 1
