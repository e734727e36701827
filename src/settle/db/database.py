"""What the domain needs from storage, whichever database is behind it.

SQL is written once, in PostgreSQL's ``$n`` parameter style; the SQLite backend rewrites it to
SQLite's equivalent ``?n`` once per statement text. Services receive a ``Tx`` and never commit:
the caller (a request, a CLI command) owns the transaction through ``Database.write()`` (or
``read()``). "Transaction" alone means a payment in this code base; a database transaction is
a ``Tx``, opened by ``write()`` or ``read()``.

The contract both backends keep (tests/db/test_database.py runs it on each):

- ``write()`` is one atomic, durable unit. A unique constraint that refuses a write raises
  ``UniqueViolation`` naming the constraint, whenever it surfaces: at the statement on SQLite,
  possibly only at commit on PostgreSQL (whose plain INSERTs are sent at commit).
- Row locks are asked for with ``lock=`` on a read, never written into the SQL: PostgreSQL
  appends ``FOR UPDATE`` (or ``FOR UPDATE SKIP LOCKED``); SQLite needs nothing, since its one
  writer per database already serialises every write transaction.
- ``read()`` sees one snapshot of committed data for all its statements: a response built from
  several queries never mixes two states of the database. ``read(one_statement=True)`` is for
  callers that run exactly one statement (one statement is one snapshot by itself); it spares
  PostgreSQL the BEGIN and COMMIT round trips, and a second statement in it is refused.
  ``write(one_statement=True)`` likewise: one statement is atomic by itself (it takes no row
  locks beyond its own statement's).
- ``require()`` is a share lock whose check may wait for the writes: a missing row raises the
  caller's error before anything is written, on both backends.
- ``guard()`` is a write on a condition (an optimistic lock): if it changes no row, the caller's
  error is raised and nothing of the transaction is written, on both backends.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


class UniqueViolation(Exception):
    """A unique constraint refused a write (e.g. a handle raced with another request).

    ``constraint`` is the constraint's or unique index's name as the schema declares it
    (``ix_customers_project_id_sandbox_handle``), the same on both backends, so the domain can
    say which rule was broken."""

    def __init__(self, message: str, constraint: str | None) -> None:
        super().__init__(message)
        self.constraint = constraint


class Lock(enum.Enum):
    """Row locks a read may take, held until its transaction ends."""

    NONE = ""
    # Guards a check-then-write: a concurrent writer of the row waits for this transaction.
    UPDATE = " FOR UPDATE"
    # Guards a reference to the row: a concurrent writer of the row (a delete) waits for this
    # transaction, and readers taking this lock do not wait for each other.
    SHARE = " FOR SHARE"
    # Claims work rows: rows another transaction holds are passed over, not waited for.
    UPDATE_SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or refused to work (disk full, connection lost)."""


class Tx(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchrow(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Row | None: ...

    async def fetch(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> list[Row]: ...

    async def fetchval(self, sql: str, *args: Any, lock: Lock = Lock.NONE) -> Any: ...

    async def require(self, sql: str, *args: Any, missing: Exception) -> None:
        """This transaction writes nothing unless ``sql`` (a SELECT of one table's rows,
        without a lock clause) finds a row; that row is held as ``Lock.SHARE`` would hold it
        until the transaction ends; otherwise ``missing`` is raised (at the latest at commit).

        A share-locked read made for a reference alone (the live customer an invoice points
        at), without its round trips on PostgreSQL: the check goes out with the transaction's
        queued writes, as one statement, instead of BEGIN, a locking SELECT, the writes and
        COMMIT (db/postgres.py). SQLite checks at once: its one writer holds every row."""
        ...

    async def guard(self, sql: str, *args: Any, conflict: Exception) -> None:
        """This transaction writes nothing unless ``sql`` (an UPDATE of one table whose WHERE
        states what must still hold, e.g. ``AND version = $3``) changes a row; otherwise
        ``conflict`` is raised (at the latest at commit). The row stays locked until the
        transaction ends, as an UPDATE's does.

        An optimistic lock: a caller that read without a lock writes only if what it read
        still holds, instead of taking the lock before it reads. On PostgreSQL the guard goes
        out with the queued writes as one statement and runs first (its row is locked before
        the others of the statement, the order a locking reader takes them in), so a step
        that read in autocommit writes in one round trip instead of BEGIN, a locking SELECT,
        the writes and COMMIT. SQLite runs it at once. The guarded row must not be written
        again by the same transaction."""
        ...


class Database(Protocol):
    backend: str  # "sqlite" or "postgresql" (an API face is a "dialect")

    def write(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction, durable when the context exits without error."""
        ...

    def read(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[Tx]:
        """Reads of committed data only, all from one snapshot; no writes."""
        ...

    async def close(self) -> None: ...


async def connect(url: str) -> Database:
    """Open the database named by ``url`` (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith("sqlite:"):
        from settle.db.sqlite import SQLiteDatabase, sqlite_path

        return SQLiteDatabase(sqlite_path(url))
    if url.startswith(("postgresql:", "postgres:", "postgresql+asyncpg:")):
        from settle.db.postgres import PostgresDatabase

        return await PostgresDatabase.open(url)
    raise ValueError("unsupported database URL: expected sqlite:///PATH or postgresql://...")
