"""Several writers on one SQLite file (``settle serve --workers N``): they queue on the
writer lock file, not in SQLite's sleeping busy handler."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from settle.db.sqlite import SQLiteDatabase


def lock_is_free(path: Path) -> bool:
    fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


async def test_the_writer_lock_is_held_exactly_while_a_batch_is_open(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    db = SQLiteDatabase(str(path))
    try:
        async with db.write() as tx:
            await tx.execute("CREATE TABLE t (n INTEGER NOT NULL)")
        assert lock_is_free(path)
        async with db.write() as tx:
            await tx.execute("INSERT INTO t (n) VALUES (1)")
            assert not lock_is_free(path)
        assert lock_is_free(path)

        # A failed request alone in its batch ends the batch and lets the lock go too.
        try:
            async with db.write() as tx:
                await tx.execute("INSERT INTO t (n) VALUES (2)")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert lock_is_free(path)
        async with db.read() as tx:
            assert await tx.fetchval("SELECT count(*) FROM t") == 1
    finally:
        await db.close()


async def test_two_writers_never_meet_in_sqlites_busy_handler(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    first, second = SQLiteDatabase(str(path)), SQLiteDatabase(str(path))
    # No busy wait at all: without the lock file, the second BEGIN IMMEDIATE would fail at once
    # with "database is locked".
    for db in (first, second):
        db._writer.execute("PRAGMA busy_timeout = 0")
    try:
        async with first.write() as tx:
            await tx.execute("CREATE TABLE t (writer TEXT NOT NULL, n INTEGER NOT NULL)")

        async def write(db: SQLiteDatabase, name: str, n: int) -> None:
            async with db.write() as tx:
                await tx.execute("INSERT INTO t (writer, n) VALUES ($1, $2)", name, n)

        await asyncio.gather(
            *(write(first, "first", n) for n in range(200)),
            *(write(second, "second", n) for n in range(200)),
        )
        async with first.read() as tx:
            rows = await tx.fetch("SELECT writer, count(*) AS c FROM t GROUP BY writer")
        assert {r["writer"]: r["c"] for r in rows} == {"first": 200, "second": 200}
        assert lock_is_free(path)
    finally:
        await first.close()
        await second.close()
