"""Webhook deliveries in the database: fan-out of events into delivery rows, claims, attempts,
redelivery (what the APIs show of them: ``settle.events.delivery_history``). Every function runs
inside the caller's database transaction; none sends anything (the worker,
``settle.events.worker``, sends between two of them, outside any transaction).

A delivery is one event for one URL of one dialect. Its row is ``pending`` until a 2xx answer
(``delivered``) or until its retry window closes (``failed``). A pending row holds back every
later row (higher event ``seq``) of the same ``(dialect, url, order_key)``: a receiver gets the
events of one object in the order they happened, and a failing one delays only that object's.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final, Protocol, cast

import msgspec

from settle.db.database import Lock, Row, Tx
from settle.db.queries import scoped_row
from settle.events import service as events
from settle.events.service import EndpointChanges
from settle.events.types import EventType
from settle.ids import new_id
from settle.projects.models import Dialect, Scope

DIALECTS: Final = ("processout", "reepay")
# Events fanned out per write transaction (one round of the worker: fan out, then claim).
# Rounds take 0.3-0.5 s on a loaded PostgreSQL, so a round must fan out more than a second's
# worth of creates' events: measured with 8 claims per slot, 200 per round delivered 170/s
# during 500 creates/s, 500 per round 423-467/s during 660-670 creates/s.
FAN_OUT_BATCH: Final = 500
# ... but on SQLite a round's statements run in the server's event loop, holding it (and the
# file's one write lock) until the round ends: measured in process, fanning out 500 events of
# an invoice whose URL rests (a parked delivery each, ~45 us) held it 29-37 ms, every request
# of the process waiting; 128 events held it 7-15 ms for 12 % more time in all (the rounds'
# own reads), 64 events 5-9 ms for 50 % more.
FAN_OUT_BATCH_SQLITE: Final = 128
# What a receiver's answer is kept of, for the merchant's debugging.
RESPONSE_KEPT_BYTES: Final = 1024


class Face(Protocol):
    """What a dialect says about its webhooks (``settle.api.<dialect>.webhooks``)."""

    dialect: str

    def event_name(self, type: EventType) -> str | None:
        """The dialect's name of ``type``, or None: its endpoints are not told of it."""
        ...

    def order_key(self, event: Row) -> str:
        """What this dialect's deliveries of ``event`` are ordered by (the event's
        ``order_key``, or e.g. its customer for a dialect that orders per customer)."""
        ...

    def request(self, due: Due, now_us: int) -> tuple[bytes, dict[str, str]]:
        """The body and headers of an attempt of ``due`` made now (signed afresh)."""
        ...


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed delivery and what sending it needs."""

    id: str
    project_id: str
    sandbox: bool
    dialect: str
    url: str
    attempts: int
    retry_until: int
    event_id: str
    event_seq: int
    event_type: str
    object_type: str
    object_id: str
    data: str
    fired_at: int
    invoice_id: str | None
    customer_id: str | None
    transaction_id: str | None
    invoice_handle: str | None
    customer_handle: str | None
    secret: str


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How an attempt went."""

    at: int
    status_code: int | None
    success: bool
    elapsed_ms: int
    error: str | None = None
    response_body: str | None = None


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Retry timing: the n-th retry waits about ``base * 2**(n-1)`` (at most ``cap``), with
    jitter (between half and all of it, so receivers coming back up are not hit by every
    delivery at the same instant); no retry after ``window`` from the delivery's start."""

    base_us: int
    cap_us: int
    window_us: int

    def delay_us(self, attempts: int, rng: random.Random) -> int:
        full = min(self.cap_us, self.base_us * 2 ** min(attempts - 1, 40))
        return int(full * (0.5 + rng.random() / 2))


# --- endpoints ------------------------------------------------------------------------------


async def endpoint_secret(tx: Tx, scope: Scope, dialect: Dialect) -> str:
    """The secret of the project's ``dialect`` endpoint, made (with no URLs) if it has none
    yet: an invoice's own ``webhook_url`` is signed with it too."""
    found = await events.get_endpoint(tx, scope, dialect)
    if found is None:
        found = await events.put_endpoint(tx, scope, dialect, EndpointChanges())
    return found.secret


# --- fan-out --------------------------------------------------------------------------------


def _marks(start: int, count: int) -> str:
    return ", ".join(f"${i}" for i in range(start, start + count))


async def _plan(
    tx: Tx, events: Sequence[Row], faces: Mapping[str, Face]
) -> list[tuple[Row, str, str]]:
    """(event, dialect, url) of every delivery ``events`` make with today's endpoints."""
    projects = sorted({e["project_id"] for e in events})
    endpoints: dict[tuple[str, bool, str], Row] = {}
    if projects:
        for row in await tx.fetch(
            "SELECT project_id, sandbox, dialect, urls, disabled, event_types"
            f" FROM webhook_endpoints WHERE project_id IN ({_marks(1, len(projects))})",
            *projects,
        ):
            endpoints[(row["project_id"], bool(row["sandbox"]), row["dialect"])] = row
    invoice_ids = sorted({e["invoice_id"] for e in events if e["invoice_id"]})
    invoice_urls: dict[str, str] = {}
    if invoice_ids and "processout" in faces:
        for row in await tx.fetch(
            "SELECT id, webhook_url FROM invoices WHERE webhook_url IS NOT NULL"
            f" AND id IN ({_marks(1, len(invoice_ids))})",
            *invoice_ids,
        ):
            invoice_urls[row["id"]] = row["webhook_url"]
    planned: list[tuple[Row, str, str]] = []
    for event in events:
        try:
            type_ = EventType(event["type"])
        except ValueError:
            continue  # a type this version does not know: nobody can be told of it
        for dialect, face in faces.items():
            name = face.event_name(type_)
            if name is None:
                continue
            urls: list[str] = []
            endpoint = endpoints.get((event["project_id"], bool(event["sandbox"]), dialect))
            if endpoint is not None and not endpoint["disabled"]:
                wanted = json.loads(endpoint["event_types"])
                if not wanted or name in wanted:
                    urls.extend(json.loads(endpoint["urls"]))
            own = invoice_urls.get(event["invoice_id"] or "") if dialect == "processout" else None
            if own:
                urls.append(own)
            planned.extend((event, dialect, url) for url in dict.fromkeys(urls))
    return planned


# Every value a parameter: on PostgreSQL the rows of a fan-out then go out as one multi-row
# INSERT (settle.db.postgres.multirow), not one statement each (measured under create load:
# 0.077 ms of the server per row, 1.08 s of a 10 s run at ~1,400 rows/s).
_INSERT_DELIVERY: Final = (
    "INSERT INTO deliveries (id, project_id, sandbox, event_seq, event_id, dialect, url,"
    " order_key, next_attempt_at, retry_until, created_at, leased_until, state, attempts,"
    " parked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    " ON CONFLICT (event_seq, dialect, url) DO NOTHING"
)
_EVENT_COLUMNS: Final = "seq, id, project_id, sandbox, type, order_key, invoice_id, customer_id"


def _rows(
    planned: Iterable[tuple[Row, str, str]],
    faces: Mapping[str, Face],
    now_us: int,
    window_us: int,
    resting: Collection[str] = (),
) -> list[list[object]]:
    """The delivery rows (``_INSERT_DELIVERY``'s arguments) of ``planned``, in its order. A
    row for a ``resting`` URL is parked: due only when its retry window ends, unless the URL
    answers again first (``record_many``)."""
    return [
        [
            new_id("whk_"),
            e["project_id"],
            bool(e["sandbox"]),
            e["seq"],
            e["id"],
            dialect,
            url,
            faces[dialect].order_key(e),
            now_us + window_us if url in resting else now_us,
            now_us + window_us,
            now_us,
            None,  # leased_until: see _take
            "pending",
            0,
            url in resting,
        ]
        for e, dialect, url in planned
    ]


async def _insert(
    tx: Tx,
    planned: Iterable[tuple[Row, str, str]],
    faces: Mapping[str, Face],
    now_us: int,
    window_us: int,
) -> int:
    rows = _rows(planned, faces, now_us, window_us)
    if rows:
        await tx.executemany(_INSERT_DELIVERY, rows)
    return len(rows)


class Slots(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker can take on now (see ``claim``): at most ``limit`` deliveries, at most
    ``per_url`` in flight per URL but for the ``healthy`` URLs, none for the ``busy`` ones."""

    limit: int
    lease_us: int
    per_url: int
    in_flight: Mapping[str, int]
    busy: frozenset[str]
    healthy: frozenset[str]


# Columns 1, 2, 5, 6, 7 of a delivery row: its project, mode, dialect, URL and order key.
def _order_of(row: Sequence[object]) -> tuple[object, ...]:
    return (row[1], row[2], row[5], row[6], row[7])


async def _take(tx: Tx, rows: list[list[object]], slots: Slots, now_us: int) -> list[str]:
    """Lease, before they are inserted, the new delivery rows that ``claim`` would take now;
    their ids. Those are the first of their (dialect, URL, order key) in ``rows`` (oldest
    event first) with no pending row of that key in the table (an earlier event's, not
    delivered yet: it holds them back), due now, within ``slots``.

    Why: a claim ranks every due row (its cost grows with them), and its lease is a second
    write of each row; taking a fresh row as it is made costs one read of the pending rows of
    the batch's keys. Measured on PostgreSQL, 6,886 webhooks to one local receiver drained
    from a backlog: the claims' ranking took 979 ms of the server's 2.9 s."""
    if slots.limit <= 0:
        return []
    candidates: dict[tuple[object, ...], list[object]] = {}
    for row in rows:
        candidates.setdefault(_order_of(row), row)  # the key's first row only
    wanted = [
        row
        for row in candidates.values()
        if row[6] not in slots.busy and cast(int, row[8]) <= now_us
    ]
    if not wanted:
        return []
    keys = sorted({cast(str, row[7]) for row in wanted})
    held = {
        (r["project_id"], bool(r["sandbox"]), r["dialect"], r["url"], r["order_key"])
        for r in await tx.fetch(
            "SELECT DISTINCT project_id, sandbox, dialect, url, order_key FROM deliveries"
            f" WHERE state = 'pending' AND order_key IN ({_marks(1, len(keys))})",
            *keys,
        )
    }
    in_flight = Counter(slots.in_flight)
    taken: list[str] = []
    for row in wanted:
        url = cast(str, row[6])
        if _order_of(row) in held:
            continue
        if url not in slots.healthy and in_flight[url] >= slots.per_url:
            continue
        in_flight[url] += 1
        row[11] = now_us + slots.lease_us
        taken.append(cast(str, row[0]))
        if len(taken) >= slots.limit:
            break
    return taken


async def fan_out(
    tx: Tx,
    faces: Mapping[str, Face],
    *,
    now_us: int,
    window_us: int,
    limit: int = FAN_OUT_BATCH,
    resting: Collection[str] = (),
) -> tuple[int, int]:
    """Make the delivery rows of up to ``limit`` events not fanned out yet, oldest first, and
    mark them fanned out. Returns (events, deliveries). Several workers take disjoint events
    (claimed with SKIP LOCKED on PostgreSQL). ``resting``: URLs that gave no answer lately,
    whose new deliveries are parked (see ``_rows``)."""
    events, made, _ = await fan_out_and_claim(
        tx, faces, now_us=now_us, window_us=window_us, limit=limit, resting=resting
    )
    return events, made


async def fan_out_and_claim(
    tx: Tx,
    faces: Mapping[str, Face],
    *,
    now_us: int,
    window_us: int,
    limit: int = FAN_OUT_BATCH,
    resting: Collection[str] = (),
    slots: Slots | None = None,
) -> tuple[int, int, list[Due]]:
    """``fan_out``, and the new deliveries that ``claim`` would take now claimed as they are
    made (within ``slots``; see ``_take``). Returns (events, deliveries, claimed)."""
    queued = await tx.fetch(
        "SELECT seq, event_id FROM unfanned_events ORDER BY seq LIMIT $1",
        limit,
        lock=Lock.UPDATE_SKIP_LOCKED,
    )
    if not queued:
        return 0, 0, []
    found = {
        e["id"]: e
        for e in await tx.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id IN ({_marks(1, len(queued))})",
            *(q["event_id"] for q in queued),
        )
    }
    events = [found[q["event_id"]] for q in queued if q["event_id"] in found]
    rows = _rows(await _plan(tx, events, faces), faces, now_us, window_us, resting)
    taken = await _take(tx, rows, slots, now_us) if slots is not None and rows else []
    if rows:
        await tx.executemany(_INSERT_DELIVERY, rows)
    seqs = [q["seq"] for q in queued]
    await tx.execute(f"DELETE FROM unfanned_events WHERE seq IN ({_marks(1, len(seqs))})", *seqs)
    return len(queued), len(rows), await _due(tx, taken)


# --- claims and attempts --------------------------------------------------------------------

# Whether there is work, for a loop's cheap look before it takes a write transaction.
ANY_UNFANNED: Final = "SELECT seq FROM unfanned_events LIMIT 1"
# A row is due once ``next_attempt_at`` has come and no claim holds it (``leased_until``:
# the claim's lease, set while an attempt is under way, cleared as the attempt is recorded).
_UNLEASED: Final = "(leased_until IS NULL OR leased_until <= $1)"
ANY_DUE: Final = (
    "SELECT seq FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1"
    f" AND {_UNLEASED} LIMIT 1"
)


# Due rows whose (dialect, url, order_key) has no earlier pending row, at most ``$3`` per URL
# (the oldest due first) except for the URLs known to answer fast (``healthy``), and none of
# the URLs this worker already has its share in flight for (``busy``): a dead or slow
# receiver holds a few slots, never all of them, while a healthy one may use them all. Rows
# another worker is claiming right now are passed over (SKIP LOCKED), not waited for.
# (PostgreSQL refuses FOR UPDATE beside a window function, so the ranking is a subquery.)
# It ranks every due row: its cost grows with them, which is why a URL that does not answer
# takes its other due rows out of the way (see ``record_many``).
def _claim_sql(busy: int, healthy: int) -> str:
    excluded = f" AND d.url NOT IN ({_marks(4, busy)})" if busy else ""
    unlimited = f" OR url IN ({_marks(4 + busy, healthy)})" if healthy else ""
    return (
        "SELECT id FROM deliveries WHERE id IN (SELECT id FROM (SELECT d.id, d.url,"
        " d.next_attempt_at, d.event_seq,"
        " row_number() OVER (PARTITION BY d.url ORDER BY d.next_attempt_at, d.event_seq) AS n"
        " FROM deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= $1"
        " AND (d.leased_until IS NULL OR d.leased_until <= $1)"
        f"{excluded} AND NOT EXISTS (SELECT 1 FROM deliveries e"
        " WHERE e.order_key = d.order_key AND e.url = d.url AND e.event_seq < d.event_seq"
        " AND e.state = 'pending' AND e.dialect = d.dialect AND e.project_id = d.project_id"
        f" AND e.sandbox = d.sandbox)) ranked WHERE n <= $3{unlimited}"
        # At most ``limit`` of them: without this PostgreSQL, with no statistics on a young
        # table, joined every due row against every ranked one (measured: 1.1 s for a claim
        # among 800 due rows, 243,000 rows compared; 6 ms with it).
        " ORDER BY next_attempt_at, event_seq LIMIT $2)"
        # Again on the row itself: the subquery saw the statement's snapshot, and a row that
        # another worker claimed (and committed) meanwhile is rechecked against these only
        # (PostgreSQL re-evaluates the locking query's own WHERE on the row's newest
        # version). Without them it was claimed twice: two workers sent 2 of 40 events twice.
        f" AND state = 'pending' AND next_attempt_at <= $1 AND {_UNLEASED}"
        " ORDER BY next_attempt_at, event_seq LIMIT $2"
    )


_DUE: Final = (
    "SELECT d.id, d.project_id, d.sandbox, d.dialect, d.url, d.attempts, d.retry_until,"
    " ev.id AS event_id, ev.seq AS event_seq, ev.type AS event_type, ev.object_type,"
    " ev.object_id, ev.data, ev.fired_at, ev.invoice_id, ev.customer_id, ev.transaction_id,"
    " i.handle AS invoice_handle, c.handle AS customer_handle, w.secret"
    " FROM deliveries d JOIN events ev ON ev.seq = d.event_seq"
    " LEFT JOIN invoices i ON i.id = ev.invoice_id"
    " LEFT JOIN customers c ON c.id = ev.customer_id"
    " LEFT JOIN webhook_endpoints w ON w.project_id = d.project_id AND w.sandbox = d.sandbox"
    " AND w.dialect = d.dialect"
)


async def claim(
    tx: Tx,
    *,
    now_us: int,
    lease_us: int,
    limit: int,
    per_url: int = 1_000_000,
    busy: Sequence[str] = (),
    healthy: Sequence[str] = (),
) -> list[Due]:
    """Claim up to ``limit`` due deliveries, at most ``per_url`` per URL (but the
    ``healthy`` ones) and none for the ``busy`` URLs: each is leased for ``lease_us``, so no
    other worker takes it while this one sends; if this one dies, it is due again then."""
    found = await tx.fetch(
        _claim_sql(len(busy), len(healthy)),
        now_us,
        limit,
        per_url,
        *busy,
        *healthy,
        lock=Lock.UPDATE_SKIP_LOCKED,
    )
    ids = [r["id"] for r in found]
    if not ids:
        return []
    marks = _marks(2, len(ids))
    # The lease is a column no index holds: on PostgreSQL a HOT update, no index entry
    # (moving next_attempt_at, as claims did before migration 0015, wrote one in each of the
    # table's 7 indexes).
    await tx.execute(
        f"UPDATE deliveries SET leased_until = $1 WHERE id IN ({marks})",
        now_us + lease_us,
        *ids,
    )
    return await _due(tx, ids)


async def _due(tx: Tx, ids: Sequence[str]) -> list[Due]:
    """What sending the deliveries ``ids`` needs, oldest event first."""
    if not ids:
        return []
    rows = await tx.fetch(
        f"{_DUE} WHERE d.id IN ({_marks(1, len(ids))}) ORDER BY d.event_seq", *ids
    )
    due: list[Due] = []
    for row in rows:
        values = {name: row[name] for name in Due.__struct_fields__}
        values["sandbox"] = bool(values["sandbox"])
        if values["secret"] is None:  # the endpoint row was deleted behind our back
            values["secret"] = await endpoint_secret(
                tx, Scope(values["project_id"], values["sandbox"]), values["dialect"]
            )
        due.append(msgspec.convert(values, Due))
    return due


_INSERT_ATTEMPT: Final = (
    "INSERT INTO delivery_attempts (id, project_id, sandbox, delivery_id, at, status_code,"
    " success, error, elapsed_ms, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
    " $9, $10)"
)
# A row redelivered while its attempt was in flight (its ``retry_until`` is no longer the one
# the claim read: redelivery gives a fresh window) keeps the state and due time redelivery gave
# it: the attempt is recorded, but its outcome (a failure's backoff, a failure for good, even a
# success sent before the redelivery was asked for) does not undo the request to send again.
# Its lease ends with the attempt, so it is sent again at once.
_UPDATE_AFTER_ATTEMPT: Final = (
    "UPDATE deliveries SET state = CASE WHEN retry_until = $9 THEN $2 ELSE state END,"
    " attempts = $3,"
    " next_attempt_at = CASE WHEN retry_until = $9 THEN $4 ELSE next_attempt_at END,"
    " delivered_at = $5, last_attempt_at = $6, last_status = $7, last_error = $8,"
    " leased_until = NULL"
    # Still pending (not marked failed or redelivered meanwhile), said so that the partial
    # indexes (WHERE state = 'pending') cannot serve it: on a young table without statistics
    # PostgreSQL chose one of them (a full scan of the pending rows, filtered by id) over the
    # id's unique index, and kept that plan (a prepared statement): measured 1.1 ms per
    # recorded attempt with 6,000 pending rows of a dead URL, against 0.03 ms.
    " WHERE id = $1 AND state <> 'delivered' AND state <> 'failed'"
)
# A URL that gave no answer at all (refused, unreachable, timed out) takes its other due rows
# out of the due set until that attempt's retry: they would fail alike, and every due row is
# ranked by each claim (measured on PostgreSQL: 29 ms per claim with 4,674 due rows, most of
# them for a URL that never answered; under create load the claim then fell further behind at
# each round, lag p99 33 s). They stay pending and keep their attempts and retry window: only
# when they are next tried moves. Rows in flight (leased) are left alone.
_DEFER_URL: Final = (
    "UPDATE deliveries SET next_attempt_at = $5 WHERE state = 'pending'"
    " AND next_attempt_at <= $4 AND (leased_until IS NULL OR leased_until <= $4)"
    " AND project_id = $1 AND sandbox = $2 AND url = $3"
)


# A URL that answers (whatever the status) is up again: the deliveries parked while it rested
# are due now, oldest first, ``UNPARK_BATCH`` at a time (through ix_deliveries_parked, which
# holds parked rows only: for a URL with none, one probe of an empty index). Each answer the
# URL gives makes the next batch due, so a backlog drains as fast as the receiver answers,
# while no one statement moves all of a long outage's rows: a URL dead for a day under load
# parks hundreds of thousands, and on SQLite one UPDATE of them all would hold the server's
# event loop and the file's write lock for seconds.
UNPARK_BATCH: Final = 500
_UNPARK: Final = (
    "UPDATE deliveries SET parked = FALSE, next_attempt_at = $4 WHERE id IN (SELECT id FROM"
    " deliveries WHERE state = 'pending' AND parked AND project_id = $1 AND sandbox = $2"
    " AND url = $3 ORDER BY seq LIMIT $5)"
)


# A URL's rows that were due when it stopped answering keep probing it with their backoff;
# when one fails for good (its window closed without an answer), its oldest parked row takes
# over as a probe, so a URL that gets no new events is still tried until its backlog's windows
# close (through the same index, in seq order).
_NEXT_PROBE: Final = (
    "UPDATE deliveries SET parked = FALSE, next_attempt_at = $4 WHERE id = (SELECT id FROM"
    " deliveries WHERE state = 'pending' AND parked AND project_id = $1 AND sandbox = $2"
    " AND url = $3 ORDER BY seq LIMIT 1)"
)


def _after(due: Due, outcome: Outcome, backoff: Backoff, rng: random.Random) -> tuple[str, int]:
    """The delivery's state after ``outcome``, and when it is next due."""
    if outcome.success:
        return "delivered", outcome.at
    if outcome.at >= due.retry_until:
        return "failed", outcome.at
    attempts = due.attempts + 1
    return "pending", min(outcome.at + backoff.delay_us(attempts, rng), due.retry_until)


async def record(tx: Tx, due: Due, outcome: Outcome, backoff: Backoff, rng: random.Random) -> str:
    """Write the attempt and what follows from it; returns the delivery's new state."""
    (state,) = await record_many(tx, [(due, outcome)], backoff, rng)
    return state


async def record_many(
    tx: Tx, done: Sequence[tuple[Due, Outcome]], backoff: Backoff, rng: random.Random
) -> list[str]:
    """``record`` for several attempts at once: the same few statements whatever their number.
    Returns each delivery's new state, in order."""
    attempts, updates, states = [], [], []
    deferred: dict[tuple[str, bool, str], tuple[int, int]] = {}
    answered: dict[tuple[str, bool, str], int] = {}
    gave_up: dict[tuple[str, bool, str], int] = {}
    for due, outcome in done:
        state, next_at = _after(due, outcome, backoff, rng)
        states.append(state)
        if state == "pending" and outcome.status_code is None:
            key = (due.project_id, due.sandbox, due.url)
            ended = outcome.at + outcome.elapsed_ms * 1000
            at, until = deferred.get(key, (ended, next_at))
            deferred[key] = (max(at, ended), min(until, next_at))
        elif outcome.status_code is not None:
            key = (due.project_id, due.sandbox, due.url)
            answered[key] = max(answered.get(key, 0), outcome.at)
        elif state == "failed":
            gave_up[(due.project_id, due.sandbox, due.url)] = outcome.at
        attempts.append(
            (
                new_id("wha_"),
                due.project_id,
                due.sandbox,
                due.id,
                outcome.at,
                outcome.status_code,
                outcome.success,
                outcome.error,
                outcome.elapsed_ms,
                outcome.response_body,
            )
        )
        updates.append(
            (
                due.id,
                state,
                due.attempts + 1,
                next_at,
                outcome.at if outcome.success else None,
                outcome.at,
                outcome.status_code,
                outcome.error,
                due.retry_until,
            )
        )
    if done:
        await tx.executemany(_INSERT_ATTEMPT, attempts)
        await tx.executemany(_UPDATE_AFTER_ATTEMPT, updates)
    gone = [i for i, state in enumerate(states) if state == "failed"]
    if gone:
        # A redelivery asked for while the attempt was in flight keeps the row pending
        # (``_UPDATE_AFTER_ATTEMPT``'s CASE): the state said is then the row's, so the worker
        # does not log it failed for good. Read for failures only, which are rare; a success
        # is a success of that attempt whatever follows, and costs no read.
        ids = [done[i][0].id for i in gone]
        now = {
            r["id"]: r["state"]
            for r in await tx.fetch(
                f"SELECT id, state FROM deliveries WHERE id IN ({_marks(1, len(ids))})", *ids
            )
        }
        for i in gone:
            states[i] = now.get(done[i][0].id, states[i])
    if deferred:
        await tx.executemany(
            _DEFER_URL, [(*key, at, until) for key, (at, until) in deferred.items()]
        )
    if answered:
        batch = UNPARK_BATCH
        await tx.executemany(_UNPARK, [(*key, at, batch) for key, at in answered.items()])
    probes = [(*key, at) for key, at in gave_up.items() if key not in answered]
    if probes:
        await tx.executemany(_NEXT_PROBE, probes)
    return states


# --- redelivery -------------------------------------------------------------------


async def redeliver(
    tx: Tx,
    scope: Scope,
    event_id: str,
    faces: Mapping[str, Face],
    *,
    now_us: int,
    window_us: int,
    dialect: str | None = None,
) -> int | None:
    """Send the event again to every URL it goes to today (those it was sent to before, and any
    added since), from now on with a fresh retry window. None if no such event in ``scope``;
    else how many deliveries are now pending. ``dialect``: only that dialect's."""
    event = await scoped_row(tx, "events", _EVENT_COLUMNS, scope, event_id)
    if event is None:
        return None
    # (No index on event_id: the table holds what the worker has not got to yet, little.)
    if await tx.fetchval("SELECT seq FROM unfanned_events WHERE event_id = $1", event_id):
        return 0  # the worker has not got to it yet: it will be sent anyway
    chosen = {d: f for d, f in faces.items() if dialect is None or d == dialect}
    await _insert(tx, await _plan(tx, [event], chosen), chosen, now_us, window_us)
    dialects = list(chosen)
    which = f"event_seq = $1 AND dialect IN ({_marks(2, len(dialects))})"
    await tx.execute(
        "UPDATE deliveries SET state = 'pending', parked = FALSE,"
        f" next_attempt_at = ${len(dialects) + 2}, retry_until = ${len(dialects) + 3}"
        f" WHERE {which}",
        event["seq"],
        *dialects,
        now_us,
        now_us + window_us,
    )
    count: int = await tx.fetchval(
        f"SELECT count(*) FROM deliveries WHERE {which}", event["seq"], *dialects
    )
    return count
