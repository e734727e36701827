"""Fixtures for unit tests of the domain services: services called on a bare transaction
(``db.write()``, ``db.read()``, ``settle.unique.atomic``), no web app in between.

A test module imports the two fixtures it uses::

    from tests.domain_fixtures import domain_db_fixture, scope_fixture  # noqa: F401

and asks for them by their names, ``domain_db`` and ``scope``. (Declared with ``name=`` so the
imported object does not share its name with the test's parameter.)

- ``domain_db``: a freshly migrated database per backend, opened, for the module: SQLite always,
  PostgreSQL when SETTLE_TEST_DATABASE_URL is set (otherwise its variants are reported as
  skipped, with the reason). Module-scoped on purpose: pytest registers an imported fixture
  once per importing module, so a session scope would not be shared between modules anyway;
  a fresh database costs about half a second.
- ``scope``: a fresh sandbox project per test. Every query is scoped to a project and mode,
  so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from settle.db.database import Database, Tx, connect
from settle.db.migrate import upgrade
from settle.payments import cards
from settle.payments.gateway import CardData, Gateway
from settle.payments.models import Card
from settle.payments.sandbox import SandboxGateway
from settle.projects import service as projects
from settle.projects.models import Scope
from settle.unique import atomic
from tests.pgdb import fresh_database

PG_URL = os.environ.get("SETTLE_TEST_DATABASE_URL")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(name="domain_db", scope="module", params=BACKENDS)
async def domain_db_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(
                "PostgreSQL tests need SETTLE_TEST_DATABASE_URL (e.g. "
                "postgresql://postgres@127.0.0.1:5432/test)"
            )
        with fresh_database(PG_URL, prefix="settle_domain") as url:
            async for db in _migrated(url):
                yield db
        return
    path: Path = tmp_path_factory.mktemp("domain") / "settle.db"
    async for db in _migrated(f"sqlite:///{path}"):
        yield db


async def _migrated(url: str) -> AsyncIterator[Database]:
    upgrade(url)
    db = await connect(url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture(name="scope")
async def scope_fixture(domain_db: Database) -> Scope:
    return await new_scope(domain_db)


async def new_scope(db: Database, *, sandbox: bool = True) -> Scope:
    """A new project, and its scope in the mode asked for."""
    async with db.write() as tx:
        keys = await projects.create_project(tx, "domain tests", sandbox=sandbox)
    return Scope(project_id=keys.project.id, sandbox=sandbox)


def other_mode(scope: Scope) -> Scope:
    """The same project in the other mode (live for sandbox): a scope of its own."""
    return Scope(project_id=scope.project_id, sandbox=not scope.sandbox)


async def execute(db: Database, sql: str, *args: Any) -> None:
    """One write behind the services' back (e.g. a state no service sets yet), committed."""
    async with db.write() as tx:
        await tx.execute(sql, *args)


async def fetchval(db: Database, sql: str, *args: Any) -> Any:
    async with db.read() as tx:
        return await tx.fetchval(sql, *args)


async def race(
    db: Database,
    work: Callable[[Tx], Awaitable[object]],
    copies: int = 2,
    *,
    meet_before_commit: bool = True,
) -> list[BaseException | None]:
    """Run ``work`` in ``copies`` concurrent ``atomic(db)`` transactions; the outcome of each,
    in order: None for a commit, the exception otherwise.

    ``meet_before_commit``: on PostgreSQL every copy finishes its work before any of them
    commits (they meet at a barrier inside the transaction). For work that only INSERTs, the
    INSERTs are then all pending, so a unique violation can only surface at commit, the case
    ``atomic`` exists for. (Not for work whose statements run at once: an UPDATE that waits
    for another copy's row would wait for ever at the barrier.) SQLite runs the write
    transactions of a process one after another (the next body starts when the previous one
    ended), so there the copies queue, and no barrier is used.
    """
    inside = asyncio.Barrier(copies)

    async def one() -> None:
        async with atomic(db) as tx:
            await work(tx)
            if meet_before_commit and db.backend == "postgresql":
                await inside.wait()

    async with asyncio.timeout(30):
        outcomes = await asyncio.gather(*(one() for _ in range(copies)), return_exceptions=True)
    return [o if isinstance(o, BaseException) else None for o in outcomes]


# --- payments ---------------------------------------------------------------------------------

SANDBOX_BASE_URL = "http://settle.test"


@pytest.fixture(name="gateway")
async def gateway_fixture(domain_db: Database) -> SandboxGateway:
    """The sandbox gateway, keeping its vault and outcomes in ``domain_db`` (as the app's)."""
    return SandboxGateway(domain_db, SANDBOX_BASE_URL)


async def add_card(
    db: Database,
    scope: Scope,
    gateway: Gateway,
    number: str = "4242424242424242",
    *,
    cvc: str | None = "123",
    name: str | None = "Jane Doe",
) -> Card:
    """A card as POST /cards makes one: checked, vaulted at ``gateway``, kept without its
    number, committed."""
    checked = cards.check_card(
        CardData(
            number=number,
            exp_month=12,
            exp_year=datetime.now(UTC).year + 3,
            cvc=cvc,
            name=name,
        )
    )
    vaulted = await gateway.vault(checked)
    card = cards.new_card(
        scope,
        checked,
        gateway_name=gateway.name,
        gateway_reference=vaulted.reference,
        metadata={},
    )
    async with db.write() as tx:
        await cards.insert_card(tx, card)
    return card
