"""What the APIs show of webhook deliveries: a delivery's state and every attempt of it (each
dialect renders them in its own form), and sending one delivery again. Every function runs
inside the caller's database transaction; the rows are made and moved by
``settle.events.deliveries``."""

from __future__ import annotations

from typing import Final

import msgspec

from settle.db.database import Row, Tx
from settle.db.queries import scoped_row
from settle.events.deliveries import DIALECTS
from settle.projects.models import Scope


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt, with its delivery's particulars (what the APIs show)."""

    id: str
    delivery_id: str
    event_id: str
    url: str
    at: int
    status_code: int | None
    success: bool
    elapsed_ms: int
    error: str | None
    response_body: str | None


async def attempts_of_event(tx: Tx, scope: Scope, event_id: str, dialect: str) -> list[Attempt]:
    """Every attempt to deliver the event through ``dialect``, oldest first."""
    rows = await tx.fetch(
        # By the event's seq: the deliveries' unique (event_seq, dialect, url) index finds
        # them (migration 0020 dropped the index on their event_id). The event is looked up
        # in the scope; its deliveries are of its project and mode (the fan-out copies them),
        # and filtering them by scope again made both planners walk the project's deliveries
        # instead. (A scalar subquery: joined, PostgreSQL walked the project's events.)
        "SELECT a.id, a.delivery_id, d.event_id, d.url, a.at, a.status_code, a.success,"
        " a.elapsed_ms, a.error, a.response_body FROM deliveries d"
        " JOIN delivery_attempts a ON a.delivery_id = d.id"
        " WHERE d.event_seq = (SELECT seq FROM events"
        " WHERE id = $1 AND project_id = $2 AND sandbox = $3) AND d.dialect = $4"
        " ORDER BY a.seq",
        event_id,
        scope.project_id,
        scope.sandbox,
        dialect,
    )
    return [_attempt(r) for r in rows]


def _attempt(row: Row) -> Attempt:
    return Attempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        event_id=row["event_id"],
        url=row["url"],
        at=row["at"],
        status_code=row["status_code"],
        success=bool(row["success"]),
        elapsed_ms=row["elapsed_ms"],
        error=row["error"],
        response_body=row["response_body"],
    )


async def attempts_of_delivery(tx: Tx, scope: Scope, delivery_id: str) -> list[Attempt]:
    rows = await tx.fetch(
        "SELECT a.id, a.delivery_id, d.event_id, d.url, a.at, a.status_code, a.success,"
        " a.elapsed_ms, a.error, a.response_body FROM delivery_attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE a.delivery_id = $1 AND a.project_id = $2 AND a.sandbox = $3 ORDER BY a.seq",
        delivery_id,
        scope.project_id,
        scope.sandbox,
    )
    return [_attempt(r) for r in rows]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery as the APIs show it."""

    id: str
    event_id: str
    event_type: str
    dialect: str
    url: str
    state: str
    attempts: int
    next_attempt_at: int
    created_at: int
    delivered_at: int | None
    last_attempt_at: int | None
    last_status: int | None
    last_error: str | None
    first_failed_at: int | None


DELIVERY_COLUMNS: Final = (
    "id, event_id, dialect, url, state, attempts, next_attempt_at, created_at, delivered_at,"
    " last_attempt_at, last_status, last_error,"
    " (SELECT type FROM events WHERE events.seq = deliveries.event_seq) AS event_type,"
    " (SELECT min(at) FROM delivery_attempts a WHERE a.delivery_id = deliveries.id"
    " AND NOT a.success) AS first_failed_at"
)


def delivery_of(row: Row) -> Delivery:
    return Delivery(**{name: row[name] for name in Delivery.__struct_fields__})


async def get_delivery(tx: Tx, scope: Scope, delivery_id: str, dialect: str) -> Delivery | None:
    row = (
        await scoped_row(
            tx,
            "deliveries",
            DELIVERY_COLUMNS,
            scope,
            delivery_id,
            where=f" AND dialect = '{dialect}'",
        )
        if dialect in DIALECTS
        else None
    )
    return None if row is None else delivery_of(row)


async def resend(
    tx: Tx, scope: Scope, delivery_id: str, dialect: str, *, now_us: int, window_us: int
) -> bool:
    """Send one delivery again from now on, with a fresh retry window (whatever its state).
    False if there is no such delivery in ``scope``."""
    if await get_delivery(tx, scope, delivery_id, dialect) is None:
        return False
    await tx.execute(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $2, retry_until = $3"
        " WHERE id = $1",
        delivery_id,
        now_us,
        now_us + window_us,
    )
    return True
