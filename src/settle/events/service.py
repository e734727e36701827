"""Reading the events a project's changes recorded (``settle.events.outbox`` writes them), and
the project's webhook endpoints. Services never commit: the caller owns the transaction (the
events list, which may read more than once, opens its own reads)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import Final

import msgspec

from settle.clock import now_us
from settle.db.codec import dump_json, load_json
from settle.db.database import Database, Row, Tx
from settle.db.queries import scoped_row
from settle.errors import NotFoundError
from settle.events.outbox import ObjectType, Subject, snapshot
from settle.events.types import EventType
from settle.ids import random_token
from settle.listing import PageQuery, fetch_page
from settle.projects.models import Dialect, Scope

_COLUMNS: Final = (
    "id, project_id, sandbox, type, object_type, object_id, invoice_id, customer_id,"
    " transaction_id, data, fired_at"
)


class Event(msgspec.Struct, kw_only=True):
    """What happened (``type``) to which object, and that object as it was then (``data``)."""

    id: str
    project_id: str
    sandbox: bool
    type: EventType
    object_type: ObjectType
    object_id: str
    invoice_id: str | None
    customer_id: str | None
    transaction_id: str | None
    data: Subject
    fired_at: int


def _from_row(row: Row) -> Event:
    object_type: ObjectType = row["object_type"]
    return Event(
        id=row["id"],
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        type=EventType(row["type"]),
        object_type=object_type,
        object_id=row["object_id"],
        invoice_id=row["invoice_id"],
        customer_id=row["customer_id"],
        transaction_id=row["transaction_id"],
        data=snapshot(object_type, row["data"]),
        fired_at=row["fired_at"],
    )


def _only(types: Collection[EventType] | None) -> str:
    """The SQL condition "one of these types" (values from the EventType enum, never input)."""
    if types is None:
        return ""
    names = ", ".join(f"'{EventType(t).value}'" for t in sorted(types))
    return f"type IN ({names})" if names else "1 = 0"


async def get_event(
    tx: Tx, scope: Scope, event_id: str, *, types: Collection[EventType] | None = None
) -> Event:
    """The event ``event_id`` of ``scope``; ``types``: only if it is one of these (a dialect
    shows only the events it has names for)."""
    where = _only(types)
    row = await scoped_row(
        tx, "events", _COLUMNS, scope, event_id, where=f" AND {where}" if where else ""
    )
    if row is None:
        raise NotFoundError("event", event_id)
    return _from_row(row)


# On PostgreSQL an event's ``seq`` is taken at its INSERT, its visibility comes at its
# transaction's COMMIT: two transactions can commit in the opposite order of their seqs, and a
# poller that had read seq 11 and moved its cursor past it would never see seq 10 committed
# after. So the list is in (xid, seq) order and shows an event only once its transaction id
# (``xid``, set at its INSERT, migration 0021) is below the horizon of the reading snapshot:
# every transaction with an id below ``pg_snapshot_xmin`` has ended, and any transaction still
# to commit an event has an id at or above it, so nothing can later appear before a row shown.
# (SQLite has one writer at a time: seq order is commit order there.)
_HORIZON: Final = "xid < pg_snapshot_xmin(pg_current_snapshot())"
# How long a list waits by default (Settings.events_settle_seconds) for the horizon to pass
# committed events that belong on its page (held back because an older transaction anywhere
# on the server was still open), re-reading a fresh snapshot after each pause; then it answers
# with what is stable. A client that wrote then lists sees its own events in practice: the
# usual holder is another request or the delivery worker's fan-out, open for milliseconds
# (in the API and events tests on PostgreSQL, with the worker running, a list that waited
# at all waited 2-60 ms).
SETTLE_WAIT: Final = 0.1  # seconds
_FIRST_PAUSE: Final = 0.001
_LONGEST_PAUSE: Final = 0.02


async def list_events(
    db: Database,
    scope: Scope,
    query: PageQuery,
    *,
    types: Collection[EventType] | None = None,
    settle_wait: float = SETTLE_WAIT,
) -> tuple[list[Event], bool]:
    """A page of the events of ``scope`` in the order they happened (newest first by default);
    ``types``: only these.

    A gap-free feed for cursor polling: a client that pages with ``order=asc`` and
    ``start_after=<the last id it saw>`` sees every event once, even on PostgreSQL where
    transactions commit out of seq order; a page lists an event only once no event can appear
    before it any more (see ``_HORIZON``), waiting up to ``settle_wait`` seconds for events
    already committed (a request's own, just made) to become so. Each attempt is a read of
    its own, one statement in autocommit: no transaction is held open while waiting (a
    read-only one takes no transaction id, so it would not hold back the horizon either, but
    its snapshot would not move)."""
    ordered = db.backend == "postgresql"
    deadline = time.monotonic() + settle_wait
    pause = _FIRST_PAUSE
    while True:
        async with db.read(one_statement=True) as tx:
            page = await fetch_page(
                tx,
                table="events",
                columns=_COLUMNS,
                scope=scope,
                query=query,
                live=_only(types),
                order_by=("xid", "seq") if ordered else ("seq",),
                horizon=_HORIZON if ordered else "",
            )
        left = deadline - time.monotonic()
        if not page.held_back or left <= 0:
            return [_from_row(r) for r in page.rows], page.has_more
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)


# --- webhook endpoints -----------------------------------------------------------------------


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    """Where a project's events are sent in one mode and one dialect. ``event_types`` are the
    dialect's own names; empty means every type."""

    project_id: str
    sandbox: bool
    dialect: Dialect
    urls: list[str]
    secret: str
    disabled: bool
    event_types: list[str]
    updated_at: int


class EndpointChanges(msgspec.Struct, kw_only=True):
    """What PUT may change; ``None`` leaves a part as it is."""

    urls: list[str] | None = None
    secret: str | None = None
    disabled: bool | None = None
    event_types: list[str] | None = None


_ENDPOINT_COLUMNS: Final = (
    "project_id, sandbox, dialect, urls, secret, disabled, event_types, updated_at"
)


def new_secret() -> str:
    """A signing secret for a project that set none: 32 characters of a CSPRNG (190 bits)."""
    return random_token(32)


def _endpoint_from_row(row: Row) -> WebhookEndpoint:
    return WebhookEndpoint(
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        dialect=row["dialect"],
        urls=load_json(row["urls"]),
        secret=row["secret"],
        disabled=bool(row["disabled"]),
        event_types=load_json(row["event_types"]),
        updated_at=row["updated_at"],
    )


async def get_endpoint(tx: Tx, scope: Scope, dialect: Dialect) -> WebhookEndpoint | None:
    """The project's endpoint for ``dialect`` in this mode; None if it never set one."""
    row = await tx.fetchrow(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints"
        " WHERE project_id = $1 AND sandbox = $2 AND dialect = $3",
        scope.project_id,
        scope.sandbox,
        dialect,
    )
    return None if row is None else _endpoint_from_row(row)


def unset_endpoint(scope: Scope, dialect: Dialect) -> WebhookEndpoint:
    """How an endpoint reads before it is first set: no URLs, nothing sent, every type."""
    return WebhookEndpoint(
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        dialect=dialect,
        urls=[],
        secret="",
        disabled=False,
        event_types=[],
        updated_at=0,
    )


async def put_endpoint(
    tx: Tx, scope: Scope, dialect: Dialect, changes: EndpointChanges
) -> WebhookEndpoint:
    """Set the parts of the endpoint that ``changes`` gives; the others stay (the first time:
    no URLs, enabled, every type, and a new secret unless one is given). One statement, an
    upsert merging column by column: two concurrent PUTs of different parts both land, and
    neither fails on the primary key."""
    row = await tx.fetchrow(
        f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLUMNS})"
        " VALUES ($1, $2, $3, COALESCE($4, '[]'), COALESCE($5, $9), COALESCE($6, FALSE),"
        " COALESCE($7, '[]'), $8)"
        " ON CONFLICT (project_id, sandbox, dialect) DO UPDATE SET"
        " urls = COALESCE($4, webhook_endpoints.urls),"
        " secret = COALESCE($5, webhook_endpoints.secret),"
        " disabled = COALESCE($6, webhook_endpoints.disabled),"
        " event_types = COALESCE($7, webhook_endpoints.event_types),"
        " updated_at = $8"
        f" RETURNING {_ENDPOINT_COLUMNS}",
        scope.project_id,
        scope.sandbox,
        dialect,
        None if changes.urls is None else dump_json(changes.urls),
        changes.secret,
        changes.disabled,
        None if changes.event_types is None else dump_json(changes.event_types),
        now_us(),
        new_secret(),
    )
    assert row is not None  # an upsert with RETURNING always returns its row
    return _endpoint_from_row(row)
