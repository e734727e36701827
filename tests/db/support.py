"""A database of the tests' own on either backend, with their own tables: for tests of the
storage layer itself (no migrations, no Settle schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from settle.db.database import Database, connect
from tests.conftest import PG_URL
from tests.pgdb import fresh_database


async def scratch_database(
    backend: str, tmp_path: Path, name: str, ddl: Sequence[str]
) -> AsyncIterator[Database]:
    """A fresh database (SQLite: a file under ``tmp_path``; PostgreSQL: ``settle_<name>``,
    dropped after) with the tables ``ddl`` makes, open until the generator ends."""
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need SETTLE_TEST_DATABASE_URL")
        with fresh_database(PG_URL, f"settle_{name}") as url:
            async for database in _open(url, ddl):
                yield database
        return
    async for database in _open(f"sqlite:///{tmp_path / f'{name}.db'}", ddl):
        yield database


async def _open(url: str, ddl: Sequence[str]) -> AsyncIterator[Database]:
    database = await connect(url)
    async with database.write() as tx:
        for statement in ddl:
            await tx.execute(statement)
    yield database
    await database.close()
