"""PostgreSQL backend: asyncpg directly (no ORM on the hot path; see DESIGN.md measurements).

Each transaction holds one pooled connection; asyncpg prepares and caches every statement per
connection, so the SQL text written once in ``$n`` style is parsed by the server once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from settle.db.database import DatabaseUnavailable, Row, UniqueViolation


def asyncpg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.exceptions.PostgresConnectionError | asyncpg.InsufficientResourcesError
    ):
        return exc
    return DatabaseUnavailable(str(exc))


class PostgresTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self._conn.execute(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = await self._conn.fetchrow(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc
        return row

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._conn.fetch(sql, *args))
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc

    async def fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self._conn.fetchval(sql, *args)
        except (asyncpg.PostgresError, OSError) as exc:
            raise _translate(exc) from exc


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, min_size: int = 2, max_size: int = 16) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                asyncpg_dsn(url),
                min_size=min_size,
                max_size=max_size,
                # Durable commits whatever the server default says: a 200 means on disk.
                server_settings={"synchronous_commit": "on", "application_name": "settle"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        try:
            conn_cm = self._pool.acquire()
            conn = await conn_cm.__aenter__()
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            tr = conn.transaction()
            try:
                await tr.start()
            except (OSError, asyncpg.PostgresError) as exc:
                raise DatabaseUnavailable(str(exc)) from exc
            try:
                yield PostgresTx(conn)
            except BaseException:
                if not conn.is_closed():
                    await tr.rollback()
                raise
            try:
                await tr.commit()
            except (OSError, asyncpg.PostgresError) as exc:
                raise _translate(exc) from exc
        finally:
            await conn_cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresTx]:
        try:
            async with self._pool.acquire() as conn:
                yield PostgresTx(conn)
        except (OSError, asyncpg.exceptions.PostgresConnectionError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._pool.close()
