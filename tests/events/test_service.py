"""The events list as a feed polled with a cursor, on PostgreSQL, where transactions commit
out of seq order: a poller never skips an event, and a list waits briefly for the events
an older open transaction holds back (settle.events.service).

Transactions are held open by the test on connections of its own (asyncpg), beside the
Database the service reads through. SQLite commits in seq order (one writer): nothing to show
there, and its lists are covered by tests/events/test_changes.py and tests/test_listing.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from settle.customers import service as customers
from settle.customers.models import Customer, CustomerFields
from settle.db.database import Database, connect
from settle.db.migrate import upgrade
from settle.events import service as events
from settle.events.outbox import encode
from settle.events.service import SETTLE_WAIT
from settle.ids import new_id
from settle.listing import PageQuery
from settle.projects.models import Scope
from tests.dbcheck import pg_dsn
from tests.domain_fixtures import PG_URL, new_scope
from tests.pgdb import EVENTS_WAIT, fresh_database

pytestmark = pytest.mark.postgres

# The event an INSERT in a held transaction records: what outbox.record writes (a customer's
# change), by hand, so that the test chooses when each transaction commits.
_INSERT = (
    "INSERT INTO events (id, project_id, sandbox, type, object_type, object_id, order_key,"
    " customer_id, data, fired_at) VALUES ($1, $2, $3, 'customer.changed', 'customer', $4, $4,"
    " $4, $5, 1)"
)


@pytest.fixture(name="pg", scope="module")
async def pg_fixture() -> AsyncIterator[tuple[Database, str]]:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SETTLE_TEST_DATABASE_URL")
    with fresh_database(PG_URL, prefix="settle_feed") as url:
        upgrade(url)
        db = await connect(url)
        try:
            yield db, pg_dsn(url)
        finally:
            await db.close()


@asynccontextmanager
async def held(dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection of the test's own, for a transaction it holds open."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def begin_with_event(conn: asyncpg.Connection[Any], scope: Scope, of: Customer) -> str:
    """Begin a transaction on ``conn`` and insert an event of ``of`` in it (which gives the
    transaction its id)."""
    event_id = new_id("ev_")
    await conn.execute("BEGIN")
    await conn.execute(_INSERT, event_id, scope.project_id, scope.sandbox, of.id, encode(of))
    return event_id


async def poll(db: Database, scope: Scope, cursor: str | None) -> list[str]:
    """One poll of the feed, oldest first, after ``cursor``."""
    found, _ = await events.list_events(
        db, scope, PageQuery(limit=100, order="asc", start_after=cursor)
    )
    return [e.id for e in found]


async def test_a_poller_sees_every_event_of_transactions_committing_out_of_seq_order(
    pg: tuple[Database, str],
) -> None:
    """T1 inserts an event (the lower seq), T2 one after it; T2 commits first and the poller
    reads; T1 commits and the poller reads on from its cursor: it has seen both, once each,
    in the order the list gives."""
    db, dsn = pg
    scope = await new_scope(db)
    async with db.write() as tx:
        customer = await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
    await settled(db, scope, 1)
    (created,) = await poll(db, scope, None)
    async with held(dsn) as first, held(dsn) as second:
        early = await begin_with_event(first, scope, customer)
        late = await begin_with_event(second, scope, customer)
        await second.execute("COMMIT")
        seen = await poll(db, scope, created)  # before the fix: [late], the cursor past it
        await first.execute("COMMIT")
        # A transaction elsewhere on the server can hold the horizon back for a while: poll
        # as a client would, for a while (a skipped event would never come).
        deadline = time.monotonic() + EVENTS_WAIT
        while len(seen) < 2 and time.monotonic() < deadline:
            seen += await poll(db, scope, seen[-1] if seen else created)
        assert seen == [early, late]


async def settled(db: Database, scope: Scope, count: int) -> None:
    """Wait until the ``count`` events of ``scope`` are below the horizon (a transaction of
    another test run on the server may hold it back): a test's holding starts after them."""
    found, _ = await events.list_events(db, scope, PageQuery(limit=100), settle_wait=EVENTS_WAIT)
    assert len(found) == count


async def _create_customer(db: Database, scope: Scope) -> str:
    async with db.write() as tx:
        customer = await customers.create_customer(tx, scope, CustomerFields(first_name="Jo"))
    return customer.id


async def test_a_list_waits_for_an_older_transaction_that_ends_within_the_bound(
    pg: tuple[Database, str],
) -> None:
    """A client's own event, committed while an older transaction is open, is listed by the
    next GET once that transaction ends within the wait (here after 30 ms)."""
    db, dsn = pg
    scope = await new_scope(db)
    async with held(dsn) as old:
        await old.execute("BEGIN")
        await old.fetchval("SELECT pg_current_xact_id()")  # it now has a transaction id
        customer_id = await _create_customer(db, scope)

        async def end_soon() -> None:
            await asyncio.sleep(0.03)
            await old.execute("COMMIT")

        ending = asyncio.create_task(end_soon())
        for order in ("desc", "asc"):
            # The test's own bound: another test run's transaction on the server may hold the
            # horizon past the setting's 0.1 s (the bound itself: the test below).
            found, has_more = await events.list_events(
                db, scope, PageQuery(order=order), settle_wait=EVENTS_WAIT
            )
            assert [(e.object_id, has_more) for e in found] == [(customer_id, False)], order
        await ending


async def test_a_list_answers_without_what_a_transaction_open_past_the_bound_holds_back(
    pg: tuple[Database, str],
) -> None:
    """While an older transaction stays open, the list answers after its wait with the stable
    events only, not an error; once it ends, the held event is listed, though a reader's
    snapshot opened before is still open (the horizon is the oldest running transaction *id*,
    and a reader takes none)."""
    db, dsn = pg
    scope = await new_scope(db)
    before = await _create_customer(db, scope)
    await settled(db, scope, 1)
    async with held(dsn) as old, held(dsn) as reader:
        await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await reader.fetchval("SELECT count(*) FROM events")  # its snapshot is taken
        await old.execute("BEGIN")
        await old.fetchval("SELECT pg_current_xact_id()")  # it now has a transaction id
        after = await _create_customer(db, scope)
        for order in ("desc", "asc"):
            started = time.monotonic()
            found, has_more = await events.list_events(db, scope, PageQuery(order=order))
            waited = time.monotonic() - started
            assert ([e.object_id for e in found], has_more) == ([before], False), order
            assert SETTLE_WAIT <= waited < SETTLE_WAIT + 1, waited
        await old.execute("ROLLBACK")
        found, _ = await events.list_events(
            db, scope, PageQuery(order="asc"), settle_wait=EVENTS_WAIT
        )
        assert [e.object_id for e in found] == [before, after]
        await reader.execute("COMMIT")


async def test_a_cursor_beyond_the_horizon_anchors_a_page_of_stable_events(
    pg: tuple[Database, str],
) -> None:
    """An event id known from elsewhere (a webhook, GET /events/{id}) whose transaction is not
    yet below the horizon is a cursor like any other: nothing after it yet, and before it the
    stable events only (not the one committed beside it, which an event still to commit could
    yet precede)."""
    db, dsn = pg
    scope = await new_scope(db)
    before = await _create_customer(db, scope)
    await settled(db, scope, 1)
    async with held(dsn) as old:
        await old.execute("BEGIN")
        await old.fetchval("SELECT pg_current_xact_id()")
        await _create_customer(db, scope)
        await _create_customer(db, scope)
        async with db.read() as tx:
            newest = await tx.fetchval(
                "SELECT id FROM events WHERE project_id = $1 ORDER BY seq DESC LIMIT 1",
                scope.project_id,
            )
        asc = PageQuery(order="asc", start_after=newest)
        assert await events.list_events(db, scope, asc, settle_wait=0) == ([], False)
        for desc in (PageQuery(start_after=newest), PageQuery(order="asc", end_before=newest)):
            found, has_more = await events.list_events(db, scope, desc, settle_wait=0)
            assert ([e.object_id for e in found], has_more) == ([before], False)
        await old.execute("COMMIT")
