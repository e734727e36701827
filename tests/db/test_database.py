"""The storage contract, run against both backends: what services rely on."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from settle.db.database import Database, Lock, UniqueViolation
from tests.db.support import scratch_database

DDL = [
    "CREATE TABLE parent (id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id),"
    " note TEXT)",
    # Named as the schema's naming convention names them (settle.db.schema).
    "CREATE TABLE handled (id TEXT, scope TEXT NOT NULL, handle TEXT NOT NULL,"
    " token TEXT NOT NULL, CONSTRAINT pk_handled PRIMARY KEY (id),"
    " CONSTRAINT uq_handled_token UNIQUE (token))",
    "CREATE UNIQUE INDEX ix_handled_scope_handle ON handled (scope, handle)",
]


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async for database in scratch_database(request.param, tmp_path, "dbtest", DDL):
        yield database


async def count(db: Database, table: str) -> int:
    async with db.read() as tx:
        return int(await tx.fetchval(f"SELECT count(*) FROM {table}"))


async def test_commit_makes_writes_visible(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
        await tx.executemany(
            "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)",
            [("c1", "p1", "a"), ("c2", "p1", "b")],
        )
    assert await count(db, "parent") == 1
    assert await count(db, "child") == 2


async def test_reads_inside_a_transaction_see_its_own_writes(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 7)
        row = await tx.fetchrow("SELECT n FROM parent WHERE id = $1", "p1")
        assert row is not None and row["n"] == 7
        await tx.execute("UPDATE parent SET n = n + 1 WHERE id = $1", "p1")
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1", lock=Lock.UPDATE) == 8


async def test_writes_after_a_lock_commit_together_and_in_order(db: Database) -> None:
    """PostgreSQL queues plain writes even inside a transaction and sends them as one
    statement at commit: the result must be as if each ran at its call."""
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    async with db.write() as tx:
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1", lock=Lock.UPDATE) == 1
        await tx.execute("UPDATE parent SET n = $2 WHERE id = $1", "p1", 2)
        await tx.execute("UPDATE parent SET n = n * 10 WHERE id = $1", "p1")
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p2", 5)
        await tx.execute("UPDATE parent SET n = n + 1 WHERE id = $1", "p2")
        await tx.execute(
            "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "p2", "x"
        )
    async with db.read() as tx:
        rows = await tx.fetch("SELECT id, n FROM parent ORDER BY id")
    assert [(r["id"], r["n"]) for r in rows] == [("p1", 20), ("p2", 6)]
    assert await count(db, "child") == 1


async def test_an_error_rolls_back_everything_of_that_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
            await tx.execute("UPDATE parent SET n = 2 WHERE id = $1", "p1")
            raise RuntimeError("validation failed late")
    assert await count(db, "parent") == 0


async def test_a_unique_violation_rejects_the_whole_transaction(db: Database) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    with pytest.raises(UniqueViolation):
        async with db.write() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p2", 1)
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    assert await count(db, "parent") == 1


async def test_a_foreign_key_violation_writes_nothing(db: Database) -> None:
    with pytest.raises(Exception):  # noqa: B017 - driver-specific integrity error
        async with db.write() as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "nope", None
            )
    assert await count(db, "parent") == 0


async def test_concurrent_transactions_each_commit_or_fail_alone(db: Database) -> None:
    async def one(i: int) -> None:
        async with db.write() as tx:
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
        async with db.write() as tx:
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


async def test_a_unique_violation_names_its_constraint_wherever_it_surfaces(db: Database) -> None:
    """On PostgreSQL the plain INSERT is sent at commit: the violation surfaces there, and
    carries the same name as SQLite's, which surfaces at the statement."""
    insert = "INSERT INTO handled (id, scope, handle, token) VALUES ($4, $1, $2, $3)"
    async with db.write() as tx:
        await tx.execute(insert, "s", "h", "t1", "a")
    for args, constraint in (
        (("s", "h", "t2", "b"), "ix_handled_scope_handle"),
        (("s", "other", "t1", "c"), "uq_handled_token"),
        (("s", "other", "t3", "a"), "pk_handled"),
    ):
        with pytest.raises(UniqueViolation) as caught:
            async with db.write() as tx:
                await tx.execute(insert, *args)
        assert caught.value.constraint == constraint
    assert await count(db, "handled") == 1


async def test_two_racing_inserts_of_one_unique_key_one_wins(db: Database) -> None:
    insert = "INSERT INTO handled (id, scope, handle, token) VALUES ($4, $1, $2, $3)"
    gate = asyncio.Event()

    async def one(token: str) -> str:
        async with db.write() as tx:
            await gate.wait()
            await tx.execute(insert, "s", "raced", token, token)
        return token

    tasks = [asyncio.create_task(one(f"t{i}")) for i in range(2)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    lost = [r for r in results if isinstance(r, UniqueViolation)]
    assert len(lost) == 1, results
    assert lost[0].constraint == "ix_handled_scope_handle"
    assert await count(db, "handled") == 1


async def test_a_row_lock_serialises_check_then_write(db: Database) -> None:
    """Read n under Lock.UPDATE, then write n + 1: concurrent increments never lose one."""
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 0)

    async def increment() -> None:
        async with db.write() as tx:
            n = await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1", lock=Lock.UPDATE)
            await asyncio.sleep(0)  # let the others run into the lock
            await tx.execute("UPDATE parent SET n = $2 WHERE id = $1", "p1", n + 1)

    await asyncio.gather(*(increment() for _ in range(12)))
    async with db.read() as tx:
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1") == 12


async def test_skip_locked_passes_over_rows_another_transaction_holds(db: Database) -> None:
    async with db.write() as tx:
        await tx.executemany(
            "INSERT INTO parent (id, n) VALUES ($1, $2)", [(f"p{i}", i) for i in range(4)]
        )
    holding, release = asyncio.Event(), asyncio.Event()
    claimed: list[list[str]] = []

    async def claim(wait: bool) -> None:
        async with db.write() as tx:
            rows = await tx.fetch(
                "SELECT id FROM parent ORDER BY n LIMIT 2", lock=Lock.UPDATE_SKIP_LOCKED
            )
            claimed.append([r["id"] for r in rows])
            if wait:
                holding.set()
                await release.wait()

    first = asyncio.create_task(claim(wait=True))
    await holding.wait()
    if db.backend == "postgresql":
        await claim(wait=False)  # runs beside the first: it gets the other two rows
        release.set()
        await first
        assert claimed == [["p0", "p1"], ["p2", "p3"]]
    else:
        # SQLite's single writer runs write transactions one after another: the second claim
        # starts when the first has ended, so no row is ever held by another transaction.
        second = asyncio.create_task(claim(wait=False))
        await asyncio.sleep(0.01)
        assert len(claimed) == 1
        release.set()
        await asyncio.gather(first, second)
        assert claimed == [["p0", "p1"], ["p0", "p1"]]


async def test_a_read_sees_one_snapshot_across_its_statements(db: Database) -> None:
    """A commit landing between two statements of one read is not seen by the second."""
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    async with db.read() as tx:
        before = await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1")
        async with db.write() as wtx:
            await wtx.execute("UPDATE parent SET n = 2 WHERE id = $1", "p1")
        after = await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1")
    assert before == after == 1
    async with db.read() as tx:
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1") == 2


async def test_a_one_statement_read_refuses_a_second_statement(db: Database) -> None:
    async with db.read(one_statement=True) as tx:
        assert await tx.fetchval("SELECT count(*) FROM parent") == 0
        with pytest.raises(RuntimeError, match="second statement"):
            await tx.fetchval("SELECT count(*) FROM parent")


async def test_a_one_statement_write_is_durable_and_refuses_a_second(db: Database) -> None:
    async with db.write(one_statement=True) as tx:
        assert (
            await tx.fetchval("INSERT INTO parent (id, n) VALUES ($1, $2) RETURNING n", "p1", 3)
            == 3
        )
    assert await count(db, "parent") == 1
    with pytest.raises(RuntimeError, match="second statement"):
        async with db.write(one_statement=True) as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p2", 1)
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p3", 1)
    with pytest.raises(UniqueViolation) as caught:
        async with db.write(one_statement=True) as tx:
            await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
    assert caught.value.constraint in ("pk_parent", "parent_pkey")  # inline: named by each


# --- Tx.require: a share lock taken for a reference, checked with the writes -------------------


class Missing(Exception):
    pass


LIVE_PARENT = "SELECT 1 FROM parent WHERE id = $1 AND n > 0"


async def _with_require_function(db: Database) -> None:
    if db.backend == "postgresql":
        migration = importlib.import_module("settle.db.migrations.versions.0013_require_function")
        async with db.write() as tx:
            await tx.execute(migration.REQUIRE_FUNCTION)
    async with db.write() as tx:
        await tx.executemany(
            "INSERT INTO parent (id, n) VALUES ($1, $2)", [("live", 1), ("gone", 0)]
        )


@pytest.mark.parametrize("locked_first", [False, True], ids=["queued", "in-a-transaction"])
async def test_require_writes_only_while_the_row_is_there(db: Database, locked_first: bool) -> None:
    """The writes go out only if every check finds its row; a failed check raises its own
    error and nothing of the transaction is written, whether the checks went out with the
    queued writes (PostgreSQL's one statement) or in a real transaction begun before them."""
    await _with_require_function(db)

    async def write(*checks: tuple[str, Exception], note: str) -> None:
        async with db.write() as tx:
            if locked_first:
                await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live", lock=Lock.UPDATE)
            for ref, missing in checks:
                await tx.require(LIVE_PARENT, ref, missing=missing)
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", note, "live", note
            )
            await tx.execute("UPDATE parent SET n = n + 1 WHERE id = $1", "live")

    await write(("live", Missing("live")), note="c1")
    first, second = Missing("first"), Missing("second")
    with pytest.raises(Missing) as caught:
        await write(("live", first), ("gone", second), note="c2")
    assert caught.value is second
    with pytest.raises(Missing) as caught:
        await write(("nobody", first), ("live", second), note="c3")
    assert caught.value is first
    async with db.read() as tx:
        notes = [r["note"] for r in await tx.fetch("SELECT note FROM child ORDER BY id")]
        n = await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live")
    assert (notes, n) == (["c1"], 2)


async def test_a_required_row_deleted_meanwhile_fails_the_write(db: Database) -> None:
    """A delete holding the row (FOR UPDATE) when the write goes out: the write waits for
    it, then sees the row gone, as if it had come after the delete (the serial order)."""
    await _with_require_function(db)
    holding, release = asyncio.Event(), asyncio.Event()

    async def delete() -> None:
        async with db.write() as tx:
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live", lock=Lock.UPDATE)
            await tx.execute("UPDATE parent SET n = 0 WHERE id = $1", "live")
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live")  # sent, not queued
            holding.set()
            await release.wait()

    async def write() -> None:
        async with db.write() as tx:
            await tx.require(LIVE_PARENT, "live", missing=Missing("live"))
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "live", "x"
            )

    deleting = asyncio.create_task(delete())
    await holding.wait()
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.2)  # the write reaches the row lock (or SQLite's write lock)
    waited = not writing.done()
    release.set()
    await deleting
    assert waited
    with pytest.raises(Missing):
        await writing
    assert await count(db, "child") == 0


async def test_a_held_row_makes_its_delete_wait_and_see_the_write(db: Database) -> None:
    """The other order: a transaction that required the row holds it until it ends, so a
    delete waits, and once it runs it sees what that transaction wrote."""
    await _with_require_function(db)
    holding, release = asyncio.Event(), asyncio.Event()
    seen: list[int] = []

    async def write() -> None:
        async with db.write() as tx:
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "gone", lock=Lock.UPDATE)
            await tx.require(LIVE_PARENT, "live", missing=Missing("live"))
            # Its parent is another row: the foreign key's own lock does not hold "live".
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "gone", "x"
            )
            await tx.fetchval("SELECT count(*) FROM child")  # the insert is sent
            holding.set()
            await release.wait()

    async def delete() -> None:
        async with db.write() as tx:
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live", lock=Lock.UPDATE)
            seen.append(int(await tx.fetchval("SELECT count(*) FROM child")))
            await tx.execute("UPDATE parent SET n = 0 WHERE id = $1", "live")

    writing = asyncio.create_task(write())
    await holding.wait()
    deleting = asyncio.create_task(delete())
    await asyncio.sleep(0.2)
    waited = not deleting.done()
    release.set()
    await asyncio.gather(writing, deleting)
    assert (waited, seen) == (True, [1])


async def test_a_read_cannot_require(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("SQLite's reads check at once; only PostgreSQL's snapshot refuses")
    async with db.read() as tx:
        with pytest.raises(RuntimeError, match="cannot hold rows"):
            await tx.require(LIVE_PARENT, "p1", missing=Missing("p1"))


@pytest.mark.parametrize("locked_first", [False, True], ids=["queued", "in-a-transaction"])
async def test_require_sees_a_row_its_own_transaction_wrote(
    db: Database, locked_first: bool
) -> None:
    """A customer and its first invoice in one transaction: the check of the row written just
    before must see it (the parts of one PostgreSQL statement would not)."""
    await _with_require_function(db)
    async with db.write() as tx:
        if locked_first:
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live", lock=Lock.UPDATE)
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "new", 1)
        await tx.require(LIVE_PARENT, "new", missing=Missing("new"))
        await tx.execute(
            "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", "c1", "new", "x"
        )
    assert await count(db, "child") == 1


# --- Tx.guard: a write on a condition (an optimistic lock) -----------------------------------


class Changed(Exception):
    pass


BUMP = "UPDATE parent SET n = $2 WHERE id = $1 AND n = $3"


@pytest.mark.parametrize("locked_first", [False, True], ids=["queued", "in-a-transaction"])
async def test_a_guard_writes_only_while_its_condition_holds(
    db: Database, locked_first: bool
) -> None:
    """The guarded row is written and the rest of the transaction with it while the
    condition holds; otherwise the caller's error, and nothing of the transaction (the writes
    queued before and after the guard included) is written."""
    await _with_require_function(db)

    async def write(seen: int, note: str) -> None:
        async with db.write() as tx:
            if locked_first:
                await tx.fetchval("SELECT n FROM parent WHERE id = $1", "gone", lock=Lock.UPDATE)
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", note, "live", note
            )
            await tx.guard(BUMP, "live", seen + 1, seen, conflict=Changed(note))
            await tx.execute(
                "INSERT INTO handled (id, scope, handle, token) VALUES ($1, $2, $3, $4)",
                note,
                "s",
                note,
                note,
            )

    await write(1, "c1")  # live: n 1 -> 2
    with pytest.raises(Changed) as caught:
        await write(1, "c2")  # read n = 1, but it is 2 now
    assert str(caught.value) == "c2"
    async with db.read() as tx:
        notes = [r["note"] for r in await tx.fetch("SELECT note FROM child ORDER BY id")]
        handles = [r["handle"] for r in await tx.fetch("SELECT handle FROM handled")]
        n = await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live")
    assert (notes, handles, n) == (["c1"], ["c1"], 2)


async def test_a_guard_waits_for_a_concurrent_writer_and_sees_its_change(db: Database) -> None:
    """A writer holding the row (FOR UPDATE) when the guard goes out: the guard waits for it,
    then checks its condition on the row as that writer left it: changed, so it fails and
    writes nothing, as if it had come after the writer (the serial order). A writer that left
    the condition true lets it through."""
    await _with_require_function(db)

    async def hold_then_set(n: int, holding: asyncio.Event, release: asyncio.Event) -> None:
        async with db.write() as tx:
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live", lock=Lock.UPDATE)
            await tx.execute("UPDATE parent SET n = $2 WHERE id = $1", "live", n)
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live")  # sent, not queued
            holding.set()
            await release.wait()

    async def guarded(note: str) -> None:
        async with db.write() as tx:
            await tx.execute(
                "INSERT INTO child (id, parent_id, note) VALUES ($1, $2, $3)", note, "live", note
            )
            await tx.guard(BUMP, "live", 10, 1, conflict=Changed(note))

    for n, note in ((2, "changed"), (1, "unchanged")):
        holding, release = asyncio.Event(), asyncio.Event()
        writer = asyncio.create_task(hold_then_set(n, holding, release))
        await holding.wait()
        writing = asyncio.create_task(guarded(note))
        await asyncio.sleep(0.2)  # the guard reaches the row lock (or SQLite's write lock)
        waited = not writing.done()
        release.set()
        await writer
        assert waited
        if note == "changed":
            with pytest.raises(Changed):
                await writing
            assert await count(db, "child") == 0
            async with db.write() as tx:
                await tx.execute("UPDATE parent SET n = 1 WHERE id = $1", "live")
        else:
            await writing
    async with db.read() as tx:
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live") == 10
        assert [r["note"] for r in await tx.fetch("SELECT note FROM child")] == ["unchanged"]


async def test_a_guard_beside_a_write_of_its_table_is_checked_one_by_one(db: Database) -> None:
    """Another write of the guarded table in the same transaction (PostgreSQL cannot chain
    them: the parts of one statement would not see each other): still all or nothing."""
    await _with_require_function(db)
    with pytest.raises(Changed):
        async with db.write() as tx:
            await tx.execute("UPDATE parent SET n = 7 WHERE id = $1", "gone")
            await tx.guard(BUMP, "live", 2, 99, conflict=Changed())
    async with db.write() as tx:
        await tx.execute("UPDATE parent SET n = 7 WHERE id = $1", "gone")
        await tx.guard(BUMP, "live", 2, 1, conflict=Changed())
    async with db.read() as tx:
        rows = {r["id"]: r["n"] for r in await tx.fetch("SELECT id, n FROM parent")}
    assert rows == {"live": 2, "gone": 7}


async def test_a_read_or_one_statement_cannot_guard(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("SQLite runs a guard at once; only PostgreSQL's read and one statement refuse")
    async with db.read() as tx:
        with pytest.raises(RuntimeError):
            await tx.guard(BUMP, "live", 2, 1, conflict=Changed())
    async with db.write(one_statement=True) as tx:
        with pytest.raises(RuntimeError):
            await tx.guard(BUMP, "live", 2, 1, conflict=Changed())


async def test_a_read_after_a_guard_sees_its_write(db: Database) -> None:
    """A guard is a write: a later read of the same transaction sees it (PostgreSQL sends
    the guard, in a transaction, before the read), and a failed one fails at once there."""
    await _with_require_function(db)
    async with db.write() as tx:
        await tx.guard(BUMP, "live", 2, 1, conflict=Changed())
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live") == 2
    with pytest.raises(Changed):
        async with db.write() as tx:
            await tx.guard(BUMP, "live", 3, 1, conflict=Changed())
            await tx.fetchval("SELECT n FROM parent WHERE id = $1", "live")
            pytest.fail("the read ran after a failed guard")
    assert await count(db, "child") == 0


@pytest.mark.parametrize("rows", [3, 40])
async def test_many_rows_of_one_insert_keep_their_order_values_and_conflicts(
    db: Database, rows: int
) -> None:
    """Rows queued under one INSERT text take their identity values in the order given, with
    every value as given (NULLs, booleans, 64-bit integers), and ``ON CONFLICT DO NOTHING``
    skips a repeated key, whether they go out as one VALUES list (few rows) or as arrays
    (``UNNEST_MIN_ROWS`` or more, on PostgreSQL); a row of another table beside them lands too."""
    identity = (
        "seq INTEGER PRIMARY KEY"
        if db.backend == "sqlite"
        else "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    async with db.write() as tx:
        await tx.execute(
            f"CREATE TABLE ordered ({identity}, key TEXT NOT NULL UNIQUE, big BIGINT,"
            " flag BOOLEAN NOT NULL, note TEXT)"
        )
    given = [
        (f"k{n:03}", 2**62 + n if n % 3 else None, n % 2 == 0, None if n % 5 == 0 else f"n{n}")
        for n in range(rows)
    ]
    async with db.write() as tx:
        await tx.execute("INSERT INTO parent (id, n) VALUES ($1, $2)", "p1", 1)
        await tx.executemany(
            "INSERT INTO ordered (key, big, flag, note) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (key) DO NOTHING",
            [*given, ("k000", 5, True, "repeated")],
        )
    async with db.read() as tx:
        found = await tx.fetch("SELECT seq, key, big, flag, note FROM ordered ORDER BY seq")
        assert await tx.fetchval("SELECT n FROM parent WHERE id = $1", "p1") == 1
    assert [(r["key"], r["big"], bool(r["flag"]), r["note"]) for r in found] == given
