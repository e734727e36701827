"""The key ring: cached, single-flight lookups of hashed secrets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from settle.db.database import Database, Tx, connect
from settle.db.migrate import upgrade
from settle.errors import AuthenticationError
from settle.projects import service as projects
from settle.projects.service import KeyRing


class CountingReads:
    """The real database, with its reads counted (and slowed, so lookups overlap)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.reads = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        self.reads += 1
        await asyncio.sleep(0.05)
        async with self.db.read() as tx:
            yield tx


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    database = await connect(url)
    yield database
    await database.close()


async def test_concurrent_misses_share_one_lookup(db: Database) -> None:
    async with db.write() as tx:
        keys = await projects.create_project(tx, "p")
    counting = CountingReads(db)
    ring = KeyRing(counting, ttl=30)  # type: ignore[arg-type]
    scopes = await asyncio.gather(
        *(ring.processout(keys.processout_username, keys.processout_password) for _ in range(50))
    )
    assert {s.project_id for s in scopes} == {keys.project.id}
    assert counting.reads == 1
    await ring.processout(keys.processout_username, keys.processout_password)
    assert counting.reads == 1  # cached


async def test_wrong_secrets_are_refused_every_time(db: Database) -> None:
    async with db.write() as tx:
        keys = await projects.create_project(tx, "p")
    counting = CountingReads(db)
    ring = KeyRing(counting, ttl=30)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await ring.processout(keys.processout_username, keys.processout_password + "x")
    with pytest.raises(AuthenticationError):  # right secret, another project's name
        await ring.processout("test-proj_other", keys.processout_password)
    assert counting.reads == 3  # misses are not cached: a key created later works at once


async def test_a_failed_lookup_fails_every_waiter_and_the_next_try_runs_again(
    db: Database,
) -> None:
    async with db.write() as tx:
        keys = await projects.create_project(tx, "p")
    counting = CountingReads(db)
    ring = KeyRing(counting, ttl=30)  # type: ignore[arg-type]
    await db.close()  # the database goes away
    results = await asyncio.gather(
        *(ring.processout(keys.processout_username, keys.processout_password) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results)
    assert counting.reads == 1
