"""What the domain needs from storage, whichever database is behind it.

SQL is written once, in PostgreSQL's ``$n`` parameter style; the SQLite backend rewrites it to
SQLite's equivalent ``?n`` once per statement text. Services receive a ``Tx`` and never commit:
the caller (a request, a CLI command) owns the transaction through ``Database.transaction()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


class UniqueViolation(Exception):
    """A unique constraint refused a write (e.g. a handle raced with another request)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or refused to work (disk full, connection lost)."""


class Tx(Protocol):
    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class Database(Protocol):
    dialect: str

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction, durable when the context exits without error."""
        ...

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """Reads of committed data only; no writes."""
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
